package ai.fluxbatch.jobs.generate;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.util.List;
import org.apache.spark.api.java.JavaRDD;
import org.apache.spark.api.java.JavaSparkContext;
import org.apache.spark.sql.SparkSession;

/** The generate job: image tasks spread over partitions, each partition run by {@link GeneratePartition}. */
public final class GenerateJob {
    private GenerateJob() {
    }

    public static List<ImageResult> run(SparkSession spark, List<ImageTask> tasks, GenerateSettings settings,
                                        int partitions) {
        JavaSparkContext sc = JavaSparkContext.fromSparkContext(spark.sparkContext());
        JavaRDD<ImageTask> rdd = sc.parallelize(tasks, Math.max(1, Math.min(partitions, tasks.size())));
        List<ImageResult> results = rdd.mapPartitions(new GeneratePartition(settings, sc.hadoopConfiguration()))
                .collect();
        try {
            new ImageStore(settings.output(), sc.hadoopConfiguration()).removeTemporaries();
        } catch (IOException e) {
            throw new UncheckedIOException("cannot remove the temporary folder under " + settings.output(), e);
        }
        return results;
    }
}
