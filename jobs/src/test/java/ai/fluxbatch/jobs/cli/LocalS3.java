package ai.fluxbatch.jobs.cli;

import static org.junit.jupiter.api.Assertions.assertNotNull;

import java.io.IOException;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.net.URI;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;
import org.apache.hadoop.conf.Configuration;
import software.amazon.awssdk.auth.credentials.AwsBasicCredentials;
import software.amazon.awssdk.auth.credentials.StaticCredentialsProvider;
import software.amazon.awssdk.core.sync.RequestBody;
import software.amazon.awssdk.regions.Region;
import software.amazon.awssdk.services.s3.S3Client;

/**
 * A real S3-compatible server for tests: S3Proxy (in-memory jclouds 'transient' store) as a child JVM on 127.0.0.1,
 * from the self-contained jar that jobs/pom.xml names in {@code fluxbatch.s3proxy.jar}, with buckets and uploads made
 * through the AWS SDK the build ships, and the S3A settings a user gives for such a store.
 */
final class LocalS3 implements AutoCloseable {
    static final String ACCESS_KEY = "fluxbatch-test";
    static final String SECRET_KEY = "fluxbatch-test-secret";

    private final Process process;
    private final Path log;
    private final String endpoint;

    private LocalS3(Process process, Path log, String endpoint) {
        this.process = process;
        this.log = log;
        this.endpoint = endpoint;
    }

    /** Starts a server (its properties and log in {@code dir}) and waits until it listens. */
    static LocalS3 start(Path dir) throws Exception {
        String jar = System.getProperty("fluxbatch.s3proxy.jar");
        assertNotNull(jar, "fluxbatch.s3proxy.jar is not set: run the tests through Maven (jobs/pom.xml sets it)");
        int port = freePort();
        String endpoint = "http://127.0.0.1:" + port;
        Path conf = Files.writeString(
                dir.resolve("s3proxy.properties"),
                String.join(
                        "\n",
                        "s3proxy.endpoint=" + endpoint,
                        "s3proxy.authorization=aws-v2-or-v4",
                        "s3proxy.identity=" + ACCESS_KEY,
                        "s3proxy.credential=" + SECRET_KEY,
                        "jclouds.provider=transient",
                        "jclouds.identity=unused",
                        "jclouds.credential=unused",
                        ""));
        Path log = dir.resolve("s3proxy.log");
        Process process = new ProcessBuilder(
                        Path.of(System.getProperty("java.home"), "bin", "java").toString(),
                        "-Xmx256m",
                        "-jar",
                        jar,
                        "--properties",
                        conf.toString())
                .redirectErrorStream(true)
                .redirectOutput(log.toFile())
                .start();
        LocalS3 s3 = new LocalS3(process, log, endpoint);
        try {
            s3.waitForPort(port);
        } catch (Exception e) {
            s3.close();
            throw e;
        }
        return s3;
    }

    String endpoint() {
        return endpoint;
    }

    /** The S3A settings (keys without {@code spark.hadoop.}) that reach this server with its credentials. */
    Map<String, String> s3aSettings() {
        Map<String, String> m = new LinkedHashMap<>();
        m.put("fs.s3a.endpoint", endpoint);
        m.put("fs.s3a.endpoint.region", "us-east-1"); // given, so nothing asks the EC2 metadata service for one
        m.put("fs.s3a.path.style.access", "true");
        m.put("fs.s3a.connection.ssl.enabled", "false");
        // only the keys below: the default chain would end at the EC2 metadata service, which is not ours to call
        m.put("fs.s3a.aws.credentials.provider", "org.apache.hadoop.fs.s3a.SimpleAWSCredentialsProvider");
        m.put("fs.s3a.access.key", ACCESS_KEY);
        m.put("fs.s3a.secret.key", SECRET_KEY);
        return m;
    }

    /** {@code settings} as the {@code spark.hadoop.*} system properties of a run. */
    static Map<String, String> sparkProperties(Map<String, String> settings) {
        Map<String, String> m = new LinkedHashMap<>();
        settings.forEach((k, v) -> m.put("spark.hadoop." + k, v));
        return m;
    }

    /** A Hadoop configuration with {@code settings}. */
    static Configuration conf(Map<String, String> settings) {
        Configuration conf = new Configuration();
        settings.forEach(conf::set);
        return conf;
    }

    void createBuckets(String... buckets) {
        try (S3Client s3 = client()) {
            for (String b : buckets) {
                s3.createBucket(r -> r.bucket(b));
            }
        }
    }

    /** Every file under {@code folder} as {@code s3a://bucket/prefix/RELATIVE}. */
    void upload(Path folder, String bucket, String prefix) throws IOException {
        List<Path> files;
        try (Stream<Path> s = Files.walk(folder)) {
            files = s.filter(Files::isRegularFile).sorted().toList();
        }
        try (S3Client s3 = client()) {
            for (Path f : files) {
                String key = prefix + "/" + folder.relativize(f).toString().replace('\\', '/');
                s3.putObject(r -> r.bucket(bucket).key(key), RequestBody.fromFile(f));
            }
        }
    }

    private S3Client client() {
        return S3Client.builder()
                .endpointOverride(URI.create(endpoint))
                .region(Region.US_EAST_1)
                .forcePathStyle(true)
                .credentialsProvider(
                        StaticCredentialsProvider.create(AwsBasicCredentials.create(ACCESS_KEY, SECRET_KEY)))
                .build();
    }

    @Override
    public void close() throws InterruptedException {
        process.destroy();
        if (!process.waitFor(10, TimeUnit.SECONDS)) {
            process.destroyForcibly().waitFor(10, TimeUnit.SECONDS);
        }
    }

    static int freePort() throws IOException {
        try (ServerSocket s = new ServerSocket(0, 1, java.net.InetAddress.getLoopbackAddress())) {
            return s.getLocalPort();
        }
    }

    private void waitForPort(int port) throws Exception {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
        while (System.nanoTime() < deadline) {
            if (!process.isAlive()) {
                throw new IllegalStateException(
                        "S3Proxy exited with " + process.exitValue() + ": " + Files.readString(log));
            }
            try (Socket s = new Socket()) {
                s.connect(new InetSocketAddress("127.0.0.1", port), 500);
                return;
            } catch (IOException notYet) {
                Thread.sleep(200);
            }
        }
        throw new IllegalStateException(
                "S3Proxy did not listen on port " + port + " within 60 s: " + Files.readString(log));
    }
}
