package ai.fluxbatch.jobs.generate;

import java.io.IOException;
import java.io.PrintWriter;
import java.io.UncheckedIOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.apache.hadoop.fs.FSError;
import org.apache.spark.api.java.JavaRDD;
import org.apache.spark.api.java.JavaSparkContext;
import org.apache.spark.sql.SparkSession;

/**
 * The generate job: image tasks in partitions of a few images each (a few minutes of work at real sizes, so a lost
 * executor costs little and progress is visible), each partition run by {@link GeneratePartition}, then the metadata
 * table. Tasks are partitioned in dataset order, so a prompt's images tend to share a partition and its embedding.
 * Each output file is made by one task: a row that repeats an earlier one (same source, prompt and seed, so the same
 * id and image) is made and listed once, and reported in one line; a different image that the layout would put in
 * the same file (t2i-compbench names files by category, prompt and image index only) is an error row. When writing
 * to the output fails (a full disk), the metadata table of what was done is still written where possible, and the
 * job fails with one message naming the output and the cause.
 */
public final class GenerateJob {
    /** Repeated rows named in the one line that reports them; the rest are counted. */
    private static final int REPEATS_NAMED = 5;

    private GenerateJob() {}

    public static List<ImageResult> run(
            SparkSession spark,
            List<ImageTask> tasks,
            GenerateSettings settings,
            int imagesPerPartition,
            PrintWriter progressOut) {
        List<ImageTask> todo = oneTaskPerFile(tasks, settings.layout(), progressOut);
        JavaSparkContext sc = JavaSparkContext.fromSparkContext(spark.sparkContext());
        int partitions = Math.max(1, (todo.size() + imagesPerPartition - 1) / imagesPerPartition);
        GenerateProgress.Counters counters = GenerateProgress.Counters.register(spark.sparkContext());
        GenerateProgress progress = new GenerateProgress(counters, todo.size(), progressOut);
        spark.sparkContext().addSparkListener(progress);
        ImageStore store = new ImageStore(settings.output(), sc.hadoopConfiguration());
        List<ImageResult> results;
        String tmpFailure = null;
        try {
            // --format webdataset: one partition per shard, shard k = tasks [k N, (k + 1) N)
            if (settings.format() == OutputFormat.WEBDATASET) {
                List<ShardPartition.Shard> shards = ShardPartition.shards(todo, settings.imagesPerShard());
                results = sc.parallelize(shards, Math.max(1, shards.size()))
                        .mapPartitions(new ShardPartition(settings, sc.hadoopConfiguration(), counters))
                        .collect();
            } else {
                JavaRDD<ImageTask> rdd = sc.parallelize(todo, partitions);
                results = rdd.mapPartitions(new GeneratePartition(settings, sc.hadoopConfiguration(), counters))
                        .collect();
            }
        } finally {
            spark.sparkContext().removeSparkListener(progress);
            try {
                store.removeTemporaries();
            } catch (IOException e) {
                tmpFailure = e.getMessage();
            }
        }
        String writeFailure = counters.writeFailures().value().isEmpty()
                ? null
                : counters.writeFailures().value().get(0);
        String metadata = settings.output().replaceAll("/$", "") + "/metadata/";
        try {
            MetadataTable.write(spark, results, settings.output());
        } catch (Exception | FSError e) { // a SparkException (checked, from Scala) around the file system's error
            String why = ImageStore.cause(e) + keptLocally(spark, results);
            throw failure(
                    writeFailure != null
                            ? "cannot write " + settings.output() + ": " + writeFailure + " (" + written(results)
                                    + "; the metadata table could not be written either: " + why + ")"
                            : "cannot write the metadata table to " + metadata + ": " + why,
                    e);
        }
        if (settings.format() == OutputFormat.WEBDATASET) {
            int shards = (todo.size() + settings.imagesPerShard() - 1) / settings.imagesPerShard();
            String index = settings.output().replaceAll("/$", "") + "/" + ShardIndex.INDEX;
            try {
                ShardIndex.write(spark, settings.output(), shards);
            } catch (Exception | FSError e) {
                throw failure("cannot write the shard index " + index + ": " + ImageStore.cause(e), e);
            }
        }
        if (writeFailure != null) {
            throw failure(
                    "cannot write " + settings.output() + ": " + writeFailure + " (" + written(results)
                            + "; the metadata table of the run is in " + metadata + ")",
                    null);
        }
        if (tmpFailure != null) {
            throw failure("cannot remove the temporary folder under " + settings.output() + ": " + tmpFailure, null);
        }
        return results;
    }

    /** Where the rows went when the output could not take them (the driver's temporary folder), as a clause. */
    private static String keptLocally(SparkSession spark, List<ImageResult> results) {
        try {
            return "; its rows are in "
                    + MetadataTable.writeLocally(spark, results, Path.of(System.getProperty("java.io.tmpdir")));
        } catch (IOException | RuntimeException e) {
            return "; nor could its rows be kept in " + System.getProperty("java.io.tmpdir") + ": " + e.getMessage();
        }
    }

    private static String written(List<ImageResult> results) {
        long ok =
                results.stream().filter(r -> r.status().equals(ImageResult.OK)).count();
        return ok + " of " + results.size() + " images written";
    }

    private static UncheckedIOException failure(String message, Throwable cause) {
        return new UncheckedIOException(
                message, cause instanceof IOException io ? io : new IOException(message, cause));
    }

    /**
     * {@code tasks} with one task per output file: a later task with the same file and the same image (same id and
     * seed: a repeated row) is dropped and reported in one line on {@code out}; one with the same file but another
     * image becomes an error row.
     */
    static List<ImageTask> oneTaskPerFile(List<ImageTask> tasks, OutputLayout layout, PrintWriter out) {
        Map<String, ImageTask> byFile = new HashMap<>();
        Map<String, String> repeats = new LinkedHashMap<>(); // "source row r" -> "row r0" (once per row)
        List<ImageTask> todo = new ArrayList<>();
        for (ImageTask t : tasks) {
            if (t.error() != null) {
                todo.add(t);
                continue;
            }
            String file = layout.path(t);
            ImageTask first = byFile.putIfAbsent(file, t);
            if (first == null) {
                todo.add(t);
            } else if (first.id().equals(t.id()) && first.seed() == t.seed()) {
                repeats.putIfAbsent(t.source() + " row " + t.row(), "row " + first.row());
            } else {
                todo.add(t.withError("the " + layout.optionValue() + " layout puts this image in " + file
                        + ", the file of " + first.source() + " row " + first.row() + " (seed " + first.seed() + ")"));
            }
        }
        if (!repeats.isEmpty()) {
            List<String> named = repeats.entrySet().stream()
                    .limit(REPEATS_NAMED)
                    .map(e -> e.getKey() + " (as " + e.getValue() + ")")
                    .toList();
            out.printf(
                    "generate: %d rows repeat an earlier row (same source, prompt and seed), so their images are"
                            + " made and listed once: %s%s%n",
                    repeats.size(), String.join(", ", named), repeats.size() > REPEATS_NAMED ? ", ..." : "");
        }
        return todo;
    }
}
