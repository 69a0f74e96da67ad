package ai.fluxbatch.jobs.quantize;

import ai.fluxbatch.jobs.SerializableConfiguration;
import ai.fluxbatch.model.safetensors.TensorSource;
import ai.fluxbatch.model.snapshot.DiffusersNames;
import ai.fluxbatch.model.snapshot.DiffusersTensorSource;
import ai.fluxbatch.model.snapshot.FluxSnapshot;
import java.io.IOException;
import java.io.PrintWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.SortedSet;
import java.util.TreeSet;
import org.apache.spark.SparkEnv;
import org.apache.spark.TaskContext;
import org.apache.spark.api.java.JavaSparkContext;
import org.apache.spark.api.java.function.Function;
import org.apache.spark.sql.SparkSession;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * {@code fluxbatch quantize --master}: the shards of the quantized checkpoint ({@link ShardPlan}, one per block) in
 * one partition each, each written by a task ({@link ShardWriter}) into the staging folder of the output snapshot,
 * then checked and indexed by the driver ({@link ShardIndex}). Nothing but the shard list and small reports travel
 * between the driver and the executors: weights and statistics are read by each task from the shared file system.
 */
public final class QuantizeJob {
    /**
     * Test hook: when this system property is true, the first attempt of partition 0 writes its shard, leaves a
     * half-written temporary shard beside it, as a task killed while writing does, and fails; its retry must leave
     * the same output as a clean run.
     */
    public static final String FAIL_FIRST_ATTEMPT = "fluxbatch.test.quantizeFailFirstAttempt";

    /** How long a failed job's driver waits for its other tasks to stop before it removes the staging folder. */
    static final long WAIT_FOR_TASKS_MILLIS = 60_000;
    /** How long a finished job waits for Spark's listener bus to bring the last shards' progress lines. */
    static final long WAIT_FOR_LINES_MILLIS = 10_000;

    private static final String JOB_GROUP = "fluxbatch-quantize";
    private static final Logger LOG = LoggerFactory.getLogger(QuantizeJob.class);

    private QuantizeJob() {}

    /**
     * Writes the quantized transformer as shards beside {@code target} (the one-file checkpoint's path in the staging
     * folder, {@code .../flux1-dev.safetensors}) and their index {@code target.index.json}; returns the index.
     *
     * @param metadata the quantized checkpoint's metadata as the driver computed it; each shard must carry it
     */
    public static Path write(
            SparkSession spark, QuantizeSettings settings, Map<String, String> metadata, Path target, PrintWriter err)
            throws IOException {
        Path folder = target.toAbsolutePath().getParent();
        String name = target.getFileName().toString();
        SortedSet<String> names;
        DiffusersNames.NameMap diffusers = null; // how the shards' tensors are named when the source is diffusers'
        try (TensorSource source = FluxSnapshot.openTransformer(
                settings.transformerFile(spark.sparkContext().hadoopConfiguration()))) {
            names = new TreeSet<>(source.names());
            if (source instanceof DiffusersTensorSource view) {
                diffusers = view.nameMap();
            }
        }
        List<QuantizeShard> shards = ShardPlan.of(names, name);
        JavaSparkContext sc = JavaSparkContext.fromSparkContext(spark.sparkContext());
        err.printf("quantize: %d shards (one per block) over %s, written to %s%n", shards.size(), sc.master(), folder);
        ShardProgress progress = new ShardProgress(shards, err);
        spark.sparkContext().addSparkListener(progress);
        List<ShardWriter.Written> written;
        sc.setJobGroup(JOB_GROUP, "fluxbatch quantize: " + shards.size() + " shards", true);
        try {
            written = sc.parallelize(shards, shards.size())
                    .map(new WriteShard(
                            settings, new SerializableConfiguration(sc.hadoopConfiguration()), folder.toString()))
                    .collect();
            awaitProgressLines(progress);
        } catch (RuntimeException e) {
            letRunningTasksEnd(progress, err);
            throw e;
        } catch (Exception e) { // Spark's checked SparkException, thrown undeclared
            letRunningTasksEnd(progress, err);
            throw new IllegalStateException("the quantize job failed: " + e.getMessage(), e);
        } finally {
            sc.clearJobGroup();
            spark.sparkContext().removeSparkListener(progress);
        }
        if (written.size() != shards.size()) {
            throw new IllegalStateException(written.size() + " shards reported, expected " + shards.size());
        }
        return ShardIndex.write(folder, name, shards, metadata, names, diffusers);
    }

    /** Lets the listener print the lines of the last shards before it is removed (they come on Spark's bus). */
    private static void awaitProgressLines(ShardProgress progress) {
        try {
            progress.awaitAllReported(WAIT_FOR_LINES_MILLIS);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    /**
     * After a failure, Spark kills the job's other tasks (interrupting their writes) but does not wait for them: wait
     * a while, so that none writes into the staging folder while the caller removes it.
     */
    private static void letRunningTasksEnd(ShardProgress progress, PrintWriter err) {
        try {
            if (!progress.awaitIdle(WAIT_FOR_TASKS_MILLIS)) {
                err.printf(
                        "quantize: tasks still running %d s after the job failed; removing the staging folder"
                                + " anyway%n",
                        WAIT_FOR_TASKS_MILLIS / 1000);
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    /** One shard per call, on an executor. */
    static final class WriteShard implements Function<QuantizeShard, ShardWriter.Written> {
        private final QuantizeSettings settings;
        private final SerializableConfiguration hadoop;
        private final String folder;

        WriteShard(QuantizeSettings settings, SerializableConfiguration hadoop, String folder) {
            this.settings = settings;
            this.hadoop = hadoop;
            this.folder = folder;
        }

        @Override
        public ShardWriter.Written call(QuantizeShard shard) throws IOException {
            String executor = SparkEnv.get() == null ? "?" : SparkEnv.get().executorId();
            LOG.info("quantize: shard {} on executor {}", shard.label(), executor);
            ShardWriter.Written w = ShardWriter.write(
                    settings,
                    hadoop.get(),
                    shard,
                    Path.of(folder),
                    (group, done, total, seconds) -> LOG.info(
                            "quantize: shard {}: {} done ({} of {} bytes)", shard.number(), group, done, total));
            failFirstAttemptIfAsked(Path.of(folder), shard);
            return w;
        }
    }

    private static void failFirstAttemptIfAsked(Path folder, QuantizeShard shard) throws IOException {
        TaskContext task = TaskContext.get();
        if (Boolean.getBoolean(FAIL_FIRST_ATTEMPT)
                && task != null
                && task.partitionId() == 0
                && task.attemptNumber() == 0) {
            Files.write(folder.resolve("." + shard.file() + ".tmp-0dead"), new byte[] {1, 2, 3});
            throw new IllegalStateException(FAIL_FIRST_ATTEMPT + ": the first attempt of partition 0 fails on purpose");
        }
    }
}
