package ai.fluxbatch.jobs.generate;

import java.io.IOException;
import java.io.PrintWriter;
import java.io.UncheckedIOException;
import java.util.List;
import org.apache.spark.api.java.JavaRDD;
import org.apache.spark.api.java.JavaSparkContext;
import org.apache.spark.sql.SparkSession;

/**
 * The generate job: image tasks in partitions of a few images each (a few minutes of work at real sizes, so a lost
 * executor costs little and progress is visible), each partition run by {@link GeneratePartition}, then the metadata
 * table. Tasks are partitioned in dataset order, so a prompt's images tend to share a partition and its embedding.
 */
public final class GenerateJob {
    private GenerateJob() {
    }

    public static List<ImageResult> run(SparkSession spark, List<ImageTask> tasks, GenerateSettings settings,
                                        int imagesPerPartition, PrintWriter progressOut) {
        JavaSparkContext sc = JavaSparkContext.fromSparkContext(spark.sparkContext());
        int partitions = Math.max(1, (tasks.size() + imagesPerPartition - 1) / imagesPerPartition);
        GenerateProgress.Counters counters = GenerateProgress.Counters.register(spark.sparkContext());
        GenerateProgress progress = new GenerateProgress(counters, tasks.size(), progressOut);
        spark.sparkContext().addSparkListener(progress);
        List<ImageResult> results;
        try {
            JavaRDD<ImageTask> rdd = sc.parallelize(tasks, partitions);
            results = rdd.mapPartitions(new GeneratePartition(settings, sc.hadoopConfiguration(), counters)).collect();
        } finally {
            spark.sparkContext().removeSparkListener(progress);
        }
        try {
            new ImageStore(settings.output(), sc.hadoopConfiguration()).removeTemporaries();
        } catch (IOException e) {
            throw new UncheckedIOException("cannot remove the temporary folder under " + settings.output(), e);
        }
        MetadataTable.write(spark, results, settings.output());
        return results;
    }
}
