package ai.fluxbatch.jobs.calibrate;

import java.io.PrintWriter;
import java.util.List;
import org.apache.spark.api.java.JavaRDD;
import org.apache.spark.api.java.JavaSparkContext;
import org.apache.spark.sql.SparkSession;
import org.apache.spark.util.LongAccumulator;

/**
 * The calibrate job: prompts in partitions of a few each, each partition run by {@link CalibratePartition} into one
 * partial result, merged by {@code treeAggregate} (depth 2) into the statistics the driver writes. The last merge runs
 * on an executor, so the driver receives one partial result, not one per partition of the last level: with Gram
 * matrices a partial result weighs up to gigabytes (spark.driver.maxResultSize).
 */
public final class CalibrateJob {
    static final int AGGREGATION_DEPTH = 2;

    private CalibrateJob() {}

    public static CalibrationPartial run(
            SparkSession spark,
            List<CalibratePrompt> prompts,
            CalibrateSettings settings,
            int promptsPerPartition,
            PrintWriter progressOut) {
        JavaSparkContext sc = JavaSparkContext.fromSparkContext(spark.sparkContext());
        int partitions = Math.max(1, (prompts.size() + promptsPerPartition - 1) / promptsPerPartition);
        LongAccumulator done = spark.sparkContext().longAccumulator("prompts calibrated");
        CalibrateProgress progress = new CalibrateProgress(done, prompts.size(), progressOut);
        spark.sparkContext().addSparkListener(progress);
        try {
            JavaRDD<CalibrationPartial> partials = sc.parallelize(prompts, partitions)
                    .mapPartitions(new CalibratePartition(settings, sc.hadoopConfiguration(), done));
            return partials.treeAggregate(
                    new CalibrationPartial(),
                    CalibrationPartial::merge,
                    CalibrationPartial::merge,
                    AGGREGATION_DEPTH,
                    true);
        } finally {
            spark.sparkContext().removeSparkListener(progress);
        }
    }
}
