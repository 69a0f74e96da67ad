package ai.fluxbatch.jobs.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.fluxbatch.model.Golden;
import ai.fluxbatch.model.image.PngDecoder;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.io.InputStream;
import java.net.URI;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.fs.FileSystem;
import org.apache.hadoop.fs.LocatedFileStatus;
import org.apache.hadoop.fs.RemoteIterator;
import org.apache.spark.SparkConf;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code fluxbatch generate --output s3a://...} against a real S3-compatible server ({@link LocalS3}: S3Proxy as a
 * child JVM on 127.0.0.1), written to through hadoop-aws and the AWS SDK modules the build ships, and read back through
 * the Hadoop FileSystem API.
 */
class S3GenerateTest {
    @TempDir
    static Path tmp;

    private static LocalS3 s3;
    private static final List<String> OPENED = new ArrayList<>();

    @BeforeAll
    static void startS3Proxy() throws Exception {
        s3 = LocalS3.start(tmp);
        s3.createBuckets("images", "locked");
    }

    @AfterAll
    static void stopS3Proxy() throws Exception {
        try {
            for (String bucket : OPENED) { // S3A instances from the FileSystem cache: their thread pools
                FileSystem.get(URI.create("s3a://" + bucket + "/"), s3aConf(s3aSettings()))
                        .close();
            }
        } finally {
            if (s3 != null) {
                s3.close();
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
        nowhere.put("fs.s3a.endpoint", "http://127.0.0.1:" + LocalS3.freePort()); // nothing listens there
        CliRun run = assertFailsNamingOutput(nowhere, "unreachable", "s3a://unreachable/run");
        assertTrue(run.err().contains("Connection refused"), run.err());
    }

    @Test
    void unreachablePromptsFailWithinSecondsLikeTheOutput() throws IOException {
        // S3A's own defaults (7 retries with back-off, each over 5 SDK attempts) took 152 s here; S3aDefaults fail fast
        Map<String, String> nowhere = s3aSettings();
        nowhere.put("fs.s3a.endpoint", "http://127.0.0.1:" + LocalS3.freePort()); // nothing listens there
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
        return CliRun.with(LocalS3.sparkProperties(settings), args);
    }

    private static Map<String, String> s3aSettings() {
        return s3.s3aSettings();
    }

    private static Configuration s3aConf(Map<String, String> settings) {
        return LocalS3.conf(settings);
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
}
