package ai.fluxbatch.jobs.distill;

import ai.fluxbatch.jobs.SerializableConfiguration;
import ai.fluxbatch.model.distill.DistillTraining;
import ai.fluxbatch.model.distill.GradientSums;
import ai.fluxbatch.model.distill.TrainableParameters;
import org.apache.spark.api.java.JavaSparkContext;
import org.apache.spark.broadcast.Broadcast;
import org.apache.spark.sql.SparkSession;

/**
 * The distill job's step, data parallel: the driver broadcasts the current parameters, the step's samples are spread
 * over as many partitions as tasks can run at once (capped at the batch size), each partition returns the gradient
 * sums of its samples ({@link DistillPartition}), and {@code treeAggregate} adds them up for the driver, which then
 * takes the Adam step ({@link DistillTraining}).
 */
public final class DistillJob {
    static final int AGGREGATION_DEPTH = 2;

    private DistillJob() {}

    /** Gradient sums of a step's batch, computed by the executors of {@code spark}. */
    public static DistillTraining.Gradients gradients(SparkSession spark, DistillJobSettings settings) {
        JavaSparkContext sc = JavaSparkContext.fromSparkContext(spark.sparkContext());
        int slots = slots(sc);
        SerializableConfiguration hadoop = new SerializableConfiguration(sc.hadoopConfiguration());
        return (step, current, batch) -> {
            Broadcast<TrainableParameters> parameters = sc.broadcast(current);
            try {
                return sc.parallelize(batch, Math.min(slots, batch.size()))
                        .mapPartitions(new DistillPartition(settings, hadoop, parameters))
                        .treeAggregate(GradientSums.empty(), GradientSums::plus, GradientSums::plus, AGGREGATION_DEPTH);
            } finally {
                parameters.destroy();
            }
        };
    }

    /** How many tasks the cluster runs at once: its cores over the cores each task takes. */
    static int slots(JavaSparkContext sc) {
        int cpusPerTask = Math.max(1, sc.getConf().getInt("spark.task.cpus", 1));
        return Math.max(1, sc.defaultParallelism() / cpusPerTask);
    }
}
