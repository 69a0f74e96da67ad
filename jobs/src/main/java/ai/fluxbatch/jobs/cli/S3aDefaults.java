package ai.fluxbatch.jobs.cli;

import java.util.Arrays;
import java.util.Map;
import org.apache.hadoop.conf.Configuration;
import org.apache.spark.SparkConf;

/**
 * S3A settings that make s3a:// work with S3-compatible stores (MinIO, Ceph, S3Proxy, ...) as well as AWS, applied
 * as {@code spark.hadoop.*} (so the driver and every executor get them) unless the user set the key: in the Spark
 * configuration, or in a Hadoop site file on the classpath (core-site.xml). Where the store is, path-style access and
 * the credentials are the user's to give: {@code spark.hadoop.fs.s3a.endpoint}, {@code fs.s3a.path.style.access},
 * {@code fs.s3a.access.key}/{@code fs.s3a.secret.key} or a credential provider, or the AWS environment variables.
 *
 * <p>Written for hadoop-aws 3.4.1 (the Hadoop of Spark 4.0.1) with AWS SDK v2 2.25. What it has and lacks:
 * <ul>
 *   <li>{@code fs.s3a.checksum.validation}: when on, the SDK checks each upload's ETag against the MD5 it computed;
 *       stores whose ETags are not plain MD5 (some S3-compatible stores, and AWS itself with SSE-KMS) then fail every
 *       write. Off. (3.4.1's default is off too: set explicitly so a changed default cannot break such stores.)</li>
 *   <li>The SDK's default CRC checksums on every request came with SDK 2.30, and with them Hadoop's
 *       {@code fs.s3a.checksum.calculation.enabled} and {@code fs.s3a.create.checksum.algorithm} (3.4.2): neither
 *       exists in 3.4.1, and the SDK pinned in the root pom predates the change, so there is nothing to switch off.</li>
 *   <li>Retries: S3A's own defaults retry a connection failure 7 times with back-off, each time over 5 SDK attempts,
 *       with 60 s to connect: 2.5 minutes before a dead endpoint is reported. Here the SDK makes one attempt
 *       ({@code fs.s3a.attempts.maximum}), S3A retries twice ({@code fs.s3a.retry.limit}, {@code
 *       fs.s3a.retry.interval} 500 ms) and a connection must open within 5 s ({@code
 *       fs.s3a.connection.establish.timeout}): a refused connection fails in seconds, a silent one in about 15 s per
 *       request. Throttling (503) keeps its own retries ({@code fs.s3a.retry.throttle.limit}).</li>
 *   <li>Conditional create (If-None-Match on PUT, {@code fs.s3a.create.conditional.enabled}) is not in 3.4.1 either:
 *       the image store relies on {@code create(path, overwrite=false)}, which S3A implements as a HEAD then a PUT.
 *       Two attempts of one task racing through that window both write; each writes the same image (same id, same
 *       seed, same bytes), and an S3 PUT is all-or-nothing, so the result is still one complete file.</li>
 * </ul>
 */
final class S3aDefaults {
    static final Map<String, String> DEFAULTS = Map.of(
            "fs.s3a.checksum.validation", "false",
            // fail in seconds, not minutes, on an unreachable endpoint: S3A's defaults (7 retries with back-off, each
            // over 5 SDK attempts, 60 s to connect) took 152 s to give up on a dead endpoint for --prompts
            "fs.s3a.attempts.maximum", "1",
            "fs.s3a.retry.limit", "2",
            "fs.s3a.retry.interval", "500ms",
            "fs.s3a.connection.establish.timeout", "5s");

    private S3aDefaults() {}

    /** Sets each default on {@code conf} as {@code spark.hadoop.KEY} unless the user set KEY somewhere. */
    static void apply(SparkConf conf) {
        Configuration site = new Configuration(); // core-default.xml plus any core-site.xml on the classpath
        for (Map.Entry<String, String> e : DEFAULTS.entrySet()) {
            String key = e.getKey();
            if (!conf.contains("spark.hadoop." + key) && !setBySite(site, key)) {
                conf.set("spark.hadoop." + key, e.getValue());
            }
        }
    }

    private static boolean setBySite(Configuration site, String key) {
        String[] sources = site.getPropertySources(key);
        return sources != null
                && Arrays.stream(sources)
                        .anyMatch(s -> !s.equals("core-default.xml")
                                && !s.equals("programmatically")
                                && !s.startsWith("because "));
    }
}
