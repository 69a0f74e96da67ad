package ai.fluxbatch.jobs.quantize;

import java.io.PrintWriter;
import java.util.HashSet;
import java.util.List;
import java.util.Locale;
import java.util.Set;
import org.apache.spark.scheduler.SparkListener;
import org.apache.spark.scheduler.SparkListenerTaskEnd;
import org.apache.spark.scheduler.SparkListenerTaskStart;
import org.apache.spark.scheduler.TaskInfo;

/**
 * The driver's progress lines: one per shard as its task succeeds (a retried or speculative duplicate counts once),
 * with the executor that wrote it, how long it took, shards done / total and the ETA. It also counts the tasks still
 * running, so that the driver of a failed job can let them end before it removes the folder they write into.
 */
final class ShardProgress extends SparkListener {
    private final List<QuantizeShard> shards;
    private final PrintWriter out;
    private final long start = System.nanoTime();
    private final Set<Integer> done = new HashSet<>();
    private final Set<Long> running = new HashSet<>();

    ShardProgress(List<QuantizeShard> shards, PrintWriter out) {
        this.shards = shards;
        this.out = out;
    }

    @Override
    public synchronized void onTaskStart(SparkListenerTaskStart taskStart) {
        running.add(taskStart.taskInfo().taskId());
    }

    /** Waits until no task of the job runs any more, at most {@code millis}; whether none does. */
    synchronized boolean awaitIdle(long millis) throws InterruptedException {
        long deadline = System.currentTimeMillis() + millis;
        for (long left = millis; !running.isEmpty() && left > 0; left = deadline - System.currentTimeMillis()) {
            wait(left);
        }
        return running.isEmpty();
    }

    /**
     * Waits until every shard's line is printed, at most {@code millis}: Spark posts task ends to its listeners on
     * another thread, so the job can return before the last ones arrive. Whether all did.
     */
    synchronized boolean awaitAllReported(long millis) throws InterruptedException {
        long deadline = System.currentTimeMillis() + millis;
        for (long left = millis;
                done.size() < shards.size() && left > 0;
                left = deadline - System.currentTimeMillis()) {
            wait(left);
        }
        return done.size() == shards.size();
    }

    @Override
    public synchronized void onTaskEnd(SparkListenerTaskEnd taskEnd) {
        TaskInfo info = taskEnd.taskInfo();
        running.remove(info.taskId());
        notifyAll();
        if (!info.successful() || info.index() >= shards.size() || !done.add(info.index())) {
            return;
        }
        double seconds = (System.nanoTime() - start) / 1e9;
        double eta = seconds / done.size() * (shards.size() - done.size());
        out.println(String.format(
                Locale.ROOT,
                "quantize: shard %s written by executor %s in %.1f s; %d/%d shards, ETA %.0f s",
                shards.get(info.index()).label(),
                info.executorId(),
                info.duration() / 1e3,
                done.size(),
                shards.size(),
                eta));
    }
}
