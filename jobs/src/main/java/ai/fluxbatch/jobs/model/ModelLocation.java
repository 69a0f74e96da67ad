package ai.fluxbatch.jobs.model;

import java.nio.file.Path;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.regex.Pattern;
import org.apache.hadoop.conf.Configuration;
import org.apache.spark.SparkConf;
import org.apache.spark.SparkEnv;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Where a model given as {@code --model} is on the machine that runs this code. A location is either a local folder,
 * used where it is (the same path on every node, as before), or a URI with a scheme followed by '/' ({@code
 * s3a://bucket/flux}, {@code hdfs://nn/flux}, {@code file:///shared/flux}), which each node, the driver included,
 * copies once into its {@link ModelCache}. Job settings carry the location as the user gave it (a URI stays a URI),
 * so that each executor resolves it on its own node, inside the task.
 */
public final class ModelLocation {
    private static final Logger LOG = LoggerFactory.getLogger(ModelLocation.class);
    /** A scheme and then '/': {@code s3a://b/m}, {@code file:/m}; a local path such as {@code my:model} is no URI. */
    private static final Pattern URI = Pattern.compile("[A-Za-z][A-Za-z0-9+.-]*:/.*", Pattern.DOTALL);
    /**
     * The copies this JVM has reported finding in the cache: a task that resolves the model again (each quantize shard
     * does) finds it silently. Only what was logged; every call still lists the source and checks the copy.
     */
    private static final Set<Path> REPORTED = ConcurrentHashMap.newKeySet();

    private ModelLocation() {}

    /** Whether {@code location} is a URI (copied into the node cache) rather than a local folder. */
    public static boolean isUri(String location) {
        return location != null && URI.matcher(location).matches();
    }

    /**
     * The local folder of {@code location} on this node: the folder itself, or this node's cached copy of the URI
     * (downloaded first if it is not there), read through {@code hadoop}, the job's Hadoop configuration. Logs where
     * a URI was resolved to and whether it was downloaded (a copy found in the cache once per JVM).
     */
    public static Path folder(String location, Configuration hadoop) {
        if (!isUri(location)) {
            return Path.of(location);
        }
        ModelCache.Resolved r = cache().resolve(location, hadoop);
        if (REPORTED.add(r.folder()) || r.downloaded()) {
            LOG.info("model: {}", r.describe());
        } else {
            LOG.debug("model: {}", r.describe());
        }
        return r.folder();
    }

    /**
     * The cache of this JVM ({@link ModelCache#configuredRoot}): on an executor, with the Spark configuration of its
     * application; elsewhere with the {@code spark.*} system properties (those spark-submit sets).
     */
    public static ModelCache cache() {
        SparkEnv env = SparkEnv.get();
        return new ModelCache(ModelCache.configuredRoot(env != null ? env.conf() : new SparkConf()));
    }
}
