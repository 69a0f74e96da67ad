package ai.fluxbatch.jobs.quantize;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.PrintWriter;
import java.io.StringWriter;
import java.util.List;
import org.apache.spark.Success$;
import org.apache.spark.TaskState;
import org.apache.spark.scheduler.SparkListenerTaskEnd;
import org.apache.spark.scheduler.TaskInfo;
import org.apache.spark.scheduler.TaskLocality;
import org.junit.jupiter.api.Test;

class ShardProgressTest {
    private static final List<QuantizeShard> SHARDS = List.of(
            new QuantizeShard(1, 3, "a-00001-of-00003.safetensors", List.of("double_blocks.0"), List.of("x")),
            new QuantizeShard(2, 3, "a-00002-of-00003.safetensors", List.of("single_blocks.0"), List.of("y")),
            new QuantizeShard(3, 3, "a-00003-of-00003.safetensors", List.of("other"), List.of("z")));

    /** Spark posts task ends on its bus thread, after the job may have returned: the driver waits for the lines. */
    @Test
    void waitsForTheLinesOfShardsThatEndOnAnotherThread() throws Exception {
        StringWriter text = new StringWriter();
        ShardProgress progress = new ShardProgress(SHARDS, new PrintWriter(text, true));
        Thread bus = new Thread(() -> {
            for (int i = 0; i < SHARDS.size(); i++) {
                sleep(50);
                progress.onTaskEnd(ended(i, i, "exec-" + i));
            }
            progress.onTaskEnd(ended(9, 1, "exec-9")); // a retried duplicate of shard 2 prints nothing
        });
        bus.start();
        assertTrue(progress.awaitAllReported(10_000));
        bus.join();
        String[] lines = text.toString().split("\n");
        assertEquals(3, lines.length, text.toString());
        assertTrue(lines[2].startsWith("quantize: shard 3/3 (other) written by executor exec-2 in"), lines[2]);
        assertTrue(lines[2].contains("3/3 shards"), lines[2]);
    }

    @Test
    void givesUpAfterTheWaitWhenAShardNeverReports() throws Exception {
        ShardProgress progress = new ShardProgress(SHARDS, new PrintWriter(new StringWriter()));
        progress.onTaskEnd(ended(0, 0, "1"));
        long start = System.nanoTime();
        assertFalse(progress.awaitAllReported(200));
        assertTrue(System.nanoTime() - start >= 150_000_000L);
    }

    private static SparkListenerTaskEnd ended(long taskId, int index, String executor) {
        TaskInfo info =
                new TaskInfo(taskId, index, 0, index, 1_000L, executor, "host", TaskLocality.PROCESS_LOCAL(), false);
        info.markFinished(TaskState.FINISHED(), 1_500L);
        return new SparkListenerTaskEnd(0, 0, "ResultTask", Success$.MODULE$, info, null, null);
    }

    private static void sleep(long millis) {
        try {
            Thread.sleep(millis);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }
}
