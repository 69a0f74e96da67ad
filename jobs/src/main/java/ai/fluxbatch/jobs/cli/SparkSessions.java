package ai.fluxbatch.jobs.cli;

import org.apache.spark.SparkConf;
import org.apache.spark.sql.SparkSession;

/**
 * The Spark session of a command: the master spark-submit set, else {@code --master}, else local mode with one task
 * at a time (spark.task.cpus = all cores), because the CPU backend itself uses every core for each image. S3A
 * settings for S3-compatible stores come from {@link S3aDefaults} where the user has not set them.
 */
final class SparkSessions {
    private SparkSessions() {}

    static SparkSession create(String appName, String master) {
        return create(appName, master, java.util.Map.of());
    }

    /** {@link #create(String, String)} with {@code settings} set over what the user set. */
    static SparkSession create(String appName, String master, java.util.Map<String, String> settings) {
        SparkConf conf = new SparkConf().setAppName(appName);
        settings.forEach(conf::set);
        if (master != null) {
            conf.setMaster(master);
        } else if (!conf.contains("spark.master")) {
            conf.setMaster("local[*]");
            conf.set("spark.task.cpus", Integer.toString(Runtime.getRuntime().availableProcessors()));
            conf.setIfMissing("spark.ui.enabled", "false");
            conf.setIfMissing("spark.driver.host", "127.0.0.1"); // local mode: nothing to reach from outside
        }
        S3aDefaults.apply(conf);
        return SparkSession.builder().config(conf).getOrCreate();
    }

    /**
     * The Hadoop configuration that a session of this process will have, before it starts: the {@code spark.hadoop.*}
     * settings of the {@code spark.*} system properties (those spark-submit sets) and {@link S3aDefaults}, made into a
     * configuration by the code that makes the SparkContext's own ({@code SparkHadoopUtil.newConfiguration}), so that
     * what the driver reads before Spark starts (a {@code --model} URI) is reached as the job's tasks reach it.
     */
    static org.apache.hadoop.conf.Configuration hadoopConfiguration() {
        SparkConf conf = new SparkConf();
        S3aDefaults.apply(conf);
        return org.apache.spark.deploy.SparkHadoopUtil.get().newConfiguration(conf);
    }
}
