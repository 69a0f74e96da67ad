package ai.fluxbatch.jobs.generate;

import org.apache.spark.SparkEnv;

/** The Spark executor this code runs in ("driver" in local mode). */
final class Executors {
    private Executors() {}

    static String id() {
        SparkEnv env = SparkEnv.get();
        return env == null ? "none" : env.executorId();
    }
}
