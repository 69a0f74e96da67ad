package ai.fluxbatch.jobs.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.fluxbatch.model.Golden;
import ai.fluxbatch.model.image.PngDecoder;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.io.InputStream;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.net.URI;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.fs.FileSystem;
import org.apache.hadoop.fs.LocatedFileStatus;
import org.apache.hadoop.fs.RemoteIterator;
import org.apache.spark.SparkConf;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import software.amazon.awssdk.auth.credentials.AwsBasicCredentials;
import software.amazon.awssdk.auth.credentials.StaticCredentialsProvider;
import software.amazon.awssdk.regions.Region;
import software.amazon.awssdk.services.s3.S3Client;

/**
 * {@code fluxbatch generate --output s3a://...} against a real S3-compatible server: S3Proxy (in-memory jclouds
 * 'transient' store) started here as a child JVM on 127.0.0.1, written to through hadoop-aws and the AWS SDK modules
 * the build ships, and read back through the Hadoop FileSystem API.
 */
class S3GenerateTest {
    private static final String ACCESS_KEY = "fluxbatch-test";
    private static final String SECRET_KEY = "fluxbatch-test-secret";

    @TempDir
    static Path tmp;

    private static Process s3proxy;
    private static Path s3proxyLog;
    private static String endpoint;
    private static final List<String> OPENED = new ArrayList<>();

    @BeforeAll
    static void startS3Proxy() throws Exception {
        String jar = System.getProperty("fluxbatch.s3proxy.jar");
        assertNotNull(jar, "fluxbatch.s3proxy.jar is not set: run the tests through Maven (jobs/pom.xml sets it)");
        int port = freePort();
        endpoint = "http://127.0.0.1:" + port;
        Path conf = Files.writeString(
                tmp.resolve("s3proxy.properties"),
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
        s3proxyLog = tmp.resolve("s3proxy.log");
        s3proxy = new ProcessBuilder(
                        Path.of(System.getProperty("java.home"), "bin", "java").toString(),
                        "-Xmx256m",
                        "-jar",
                        jar,
                        "--properties",
                        conf.toString())
                .redirectErrorStream(true)
                .redirectOutput(s3proxyLog.toFile())
                .start();
        waitForPort(port, s3proxy, s3proxyLog);
        try (S3Client s3 = S3Client.builder()
                .endpointOverride(URI.create(endpoint))
                .region(Region.US_EAST_1)
                .forcePathStyle(true)
                .credentialsProvider(
                        StaticCredentialsProvider.create(AwsBasicCredentials.create(ACCESS_KEY, SECRET_KEY)))
                .build()) {
            s3.createBucket(b -> b.bucket("images"));
            s3.createBucket(b -> b.bucket("locked"));
        }
    }

    @AfterAll
    static void stopS3Proxy() throws Exception {
        try {
            for (String bucket : OPENED) { // S3A instances from the FileSystem cache: their thread pools
                FileSystem.get(URI.create("s3a://" + bucket + "/"), s3aConf(s3aSettings()))
                        .close();
            }
        } finally {
            if (s3proxy != null) {
                s3proxy.destroy();
                if (!s3proxy.waitFor(10, TimeUnit.SECONDS)) {
                    s3proxy.destroyForcibly().waitFor(10, TimeUnit.SECONDS);
                }
            }
        }
    }

    @Test
    void writesImagesAndMetadataThroughS3aAndSkipsThemOnReRun() throws IOException {
        String[] args = {
            "generate",
            "--model",
            Golden.path("flux-tiny-dev").toString(),
            "--prompt",
            "a red circle",
            "--steps",
            "1",
            "--height",
            "32",
            "--width",
            "32",
            "--output",
            "s3a://images/run1"
        };
        CliRun first = runWith(s3aSettings(), "images", args);
        assertEquals(0, first.exitCode(), first.err() + first.out());
        assertTrue(first.out().contains("1 images: 1 written, 0 skipped"), first.out());

        FileSystem fs = FileSystem.get(URI.create("s3a://images/"), s3aConf(s3aSettings()));
        List<String> keys = list(fs, "s3a://images/run1/");
        List<String> pngs = keys.stream().filter(k -> k.endsWith(".png")).toList();
        assertEquals(1, pngs.size(), keys.toString());
        assertTrue(pngs.get(0).startsWith("s3a://images/run1/images/"), pngs.toString());
        byte[] png;
        try (InputStream in = fs.open(new org.apache.hadoop.fs.Path(pngs.get(0)))) {
            png = in.readAllBytes();
        }
        PngDecoder.Decoded decoded = PngDecoder.decode(png);
        assertEquals(32 * 32 * 3, decoded.image().rgb().length);
        assertEquals("a red circle", decoded.text().get("prompt"));
        assertTrue(keys.stream().anyMatch(k -> k.matches(".*/metadata/parquet/part-.*\\.parquet")), keys.toString());
        assertTrue(keys.contains("s3a://images/run1/metadata/parquet/_SUCCESS"), keys.toString());
        List<String> json = keys.stream()
                .filter(k -> k.matches(".*/metadata/jsonl/part-.*\\.json"))
                .toList();
        assertEquals(1, json.size(), keys.toString());
        assertFalse(
                keys.stream()
                        .anyMatch(k -> k.contains("/_tmp/")
                                || k.contains("_fluxbatch-write-check")
                                || k.contains("/_temporary/")),
                "left-overs: " + keys);
        String jsonl;
        try (InputStream in = fs.open(new org.apache.hadoop.fs.Path(json.get(0)))) {
            jsonl = new String(in.readAllBytes(), StandardCharsets.UTF_8);
        }
        JsonNode row = new ObjectMapper().readTree(jsonl.strip());
        assertEquals("ok", row.get("status").asText(), jsonl);
        assertEquals(pngs.get(0), row.get("path").asText(), jsonl);

        CliRun second = runWith(s3aSettings(), "images", args);
        assertEquals(0, second.exitCode(), second.err() + second.out());
        assertTrue(second.out().contains("1 images: 0 written, 1 skipped"), second.out());
        assertEquals(
                pngs,
                list(fs, "s3a://images/run1/").stream()
                        .filter(k -> k.endsWith(".png"))
                        .toList());
    }

    @Test
    void wrongCredentialsFailBeforeAnyWorkNamingTheOutput() throws IOException {
        Map<String, String> wrong = s3aSettings();
        wrong.put("fs.s3a.secret.key", "not-the-secret");
        assertFailsNamingOutput(wrong, "locked", "s3a://locked/run");
        try (FileSystem fs = FileSystem.newInstance(URI.create("s3a://locked/"), s3aConf(s3aSettings()))) {
            assertEquals(List.of(), list(fs, "s3a://locked/"), "nothing written");
        }
    }

    @Test
    void missingCredentialsFailBeforeAnyWorkNamingTheOutput() {
        Map<String, String> none = s3aSettings();
        none.remove("fs.s3a.access.key");
        none.remove("fs.s3a.secret.key");
        CliRun run = assertFailsNamingOutput(none, "anonymous", "s3a://anonymous/run");
        assertTrue(run.err().contains("No AWS credentials"), run.err());
    }

    @Test
    void unreachableEndpointFailsBeforeAnyWorkNamingTheOutput() throws IOException {
        // S3A's default retries would take about two minutes here: the write check uses few, so this is quick
        Map<String, String> nowhere = s3aSettings();
        nowhere.put("fs.s3a.endpoint", "http://127.0.0.1:" + freePort()); // nothing listens there
        CliRun run = assertFailsNamingOutput(nowhere, "unreachable", "s3a://unreachable/run");
        assertTrue(run.err().contains("Connection refused"), run.err());
    }

    @Test
    void unreachablePromptsFailWithinSecondsLikeTheOutput() throws IOException {
        // S3A's own defaults (7 retries with back-off, each over 5 SDK attempts) took 152 s here; S3aDefaults fail fast
        Map<String, String> nowhere = s3aSettings();
        nowhere.put("fs.s3a.endpoint", "http://127.0.0.1:" + freePort()); // nothing listens there
        long start = System.nanoTime();
        CliRun run = runWith(
                nowhere,
                "unreachable-prompts",
                "generate",
                "--model",
                Golden.path("flux-tiny-dev").toString(),
                "--prompts",
                "s3a://unreachable-prompts/p.txt",
                "--steps",
                "1",
                "--height",
                "32",
                "--width",
                "32",
                "--output",
                tmp.resolve("never").toString());
        double seconds = (System.nanoTime() - start) / 1e9;
        assertEquals(1, run.exitCode(), run.err() + run.out());
        assertTrue(seconds < 40, "took " + seconds + " s: " + run.err());
        assertTrue(run.err().contains("unreachable-prompts/p.txt"), run.err());
        assertFalse(run.err().contains("prompts x"), "image work started: " + run.err());
    }

    @Test
    void aSecretInAnS3aUriIsNeverPrinted() {
        Map<String, String> nowhere = s3aSettings();
        nowhere.put("fs.s3a.endpoint", "http://127.0.0.1:" + 1); // nothing listens there
        String uri = "s3a://AKIAEXAMPLEKEY:wJalrXUtnFEMIsecretEXAMPLEKEY@secret-bucket/p.txt";
        String local = tmp.resolve("never").toString();
        for (List<String> io : List.of(
                List.of("--prompts", uri, "--output", local), List.of("--prompt", "a red circle", "--output", uri))) {
            List<String> args = new ArrayList<>(List.of(
                    "generate",
                    "--model",
                    Golden.path("flux-tiny-dev").toString(),
                    "--steps",
                    "1",
                    "--height",
                    "32",
                    "--width",
                    "32"));
            args.addAll(io);
            CliRun run = runWith(nowhere, "secret-bucket", args.toArray(String[]::new));
            assertEquals(2, run.exitCode(), run.err() + run.out());
            assertTrue(run.err().contains("s3a://***@secret-bucket/p.txt has credentials in it"), run.err());
            assertFalse((run.err() + run.out()).contains("wJalrXUtnFEMIsecretEXAMPLEKEY"), io + ": " + run.err());
        }
    }

    @Test
    void s3aDefaultsFillOnlyWhatTheUserLeftUnset() {
        SparkConf unset = new SparkConf(false);
        S3aDefaults.apply(unset);
        assertEquals("false", unset.get("spark.hadoop.fs.s3a.checksum.validation"));
        SparkConf set = new SparkConf(false).set("spark.hadoop.fs.s3a.checksum.validation", "true");
        S3aDefaults.apply(set);
        assertEquals("true", set.get("spark.hadoop.fs.s3a.checksum.validation"));
    }

    private CliRun assertFailsNamingOutput(Map<String, String> settings, String bucket, String output) {
        CliRun run = runWith(
                settings,
                bucket,
                "generate",
                "--model",
                Golden.path("flux-tiny-dev").toString(),
                "--prompt",
                "a red circle",
                "--steps",
                "1",
                "--height",
                "32",
                "--width",
                "32",
                "--output",
                output);
        assertEquals(1, run.exitCode(), run.err() + run.out());
        assertTrue(run.err().contains("cannot write to the output " + output), run.err());
        assertFalse(run.err().contains("prompts x"), "image work started: " + run.err());
        return run;
    }

    /** The S3A settings a user gives for an S3-compatible store, as spark.hadoop.* system properties for one run. */
    private static CliRun runWith(Map<String, String> settings, String bucket, String... args) {
        OPENED.add(bucket);
        Map<String, String> saved = new LinkedHashMap<>();
        for (Map.Entry<String, String> e : settings.entrySet()) {
            String key = "spark.hadoop." + e.getKey();
            saved.put(key, System.getProperty(key));
            System.setProperty(key, e.getValue());
        }
        try {
            return CliRun.of(args);
        } finally {
            saved.forEach((k, v) -> {
                if (v == null) {
                    System.clearProperty(k);
                } else {
                    System.setProperty(k, v);
                }
            });
        }
    }

    private static Map<String, String> s3aSettings() {
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

    private static Configuration s3aConf(Map<String, String> settings) {
        Configuration conf = new Configuration();
        settings.forEach(conf::set);
        return conf;
    }

    private static List<String> list(FileSystem fs, String root) throws IOException {
        List<String> keys = new ArrayList<>();
        RemoteIterator<LocatedFileStatus> it = fs.listFiles(new org.apache.hadoop.fs.Path(root), true);
        while (it.hasNext()) {
            keys.add(it.next().getPath().toString());
        }
        keys.sort(null);
        return keys;
    }

    private static int freePort() throws IOException {
        try (ServerSocket s = new ServerSocket(0, 1, java.net.InetAddress.getLoopbackAddress())) {
            return s.getLocalPort();
        }
    }

    private static void waitForPort(int port, Process process, Path log) throws Exception {
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
