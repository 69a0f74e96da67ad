package ai.fluxbatch.jobs.cli;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.fluxbatch.jobs.model.ModelCache;
import ai.fluxbatch.model.Golden;
import ai.fluxbatch.model.calib.CalibrationFile;
import ai.fluxbatch.model.calib.CalibrationStats;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code --model s3a://...} against a real S3-compatible server ({@link LocalS3}) holding a copy of the golden
 * flux-tiny-dev: the driver and the executors resolve it through the model cache, the images (statistics, quantized
 * snapshot, schedule) are those of the local folder, a second run downloads nothing, and a model URI that cannot be
 * used fails before any work, naming it.
 */
class S3ModelTest {
    private static final String MODEL = "s3a://models/flux-tiny-dev";

    @TempDir
    static Path tmp;

    private static LocalS3 s3;

    @BeforeAll
    static void startS3Proxy() throws Exception {
        s3 = LocalS3.start(tmp);
        s3.createBuckets("models");
        s3.upload(Golden.path("flux-tiny-dev"), "models", "flux-tiny-dev");
    }

    @AfterAll
    static void stopS3Proxy() throws Exception {
        if (s3 != null) {
            s3.close();
        }
    }

    @Test
    void generateWithAnS3aModelMakesTheImagesOfTheLocalFolderAndDownloadsOnce() throws IOException {
        Map<String, String> props = properties(s3.s3aSettings(), tmp.resolve("cache"));
        CliRun first = CliRun.with(props, generate(MODEL, tmp.resolve("from-s3")));
        assertEquals(0, first.exitCode(), first.err() + first.out());
        long files;
        try (Stream<Path> f = Files.walk(Golden.path("flux-tiny-dev"))) {
            files = f.filter(Files::isRegularFile).count();
        }
        assertTrue(
                first.err().contains("model: " + MODEL + " -> " + tmp.resolve("cache"))
                        && first.err().contains("(downloaded " + files + " files"),
                first.err());
        CliRun local = CliRun.of(generate(Golden.path("flux-tiny-dev").toString(), tmp.resolve("local")));
        assertEquals(0, local.exitCode(), local.err() + local.out());
        assertSameImages(tmp.resolve("local"), tmp.resolve("from-s3"));
        assertEquals(List.of(MODEL), models(tmp.resolve("from-s3")), "the metadata names the model by its URI");

        CliRun second = CliRun.with(props, generate(MODEL, tmp.resolve("again")));
        assertEquals(0, second.exitCode(), second.err() + second.out());
        assertTrue(second.err().contains("(found in the cache, downloaded nothing)"), second.err());
        assertSameImages(tmp.resolve("local"), tmp.resolve("again"));
    }

    @Test
    void quantizeSpreadOverExecutorsReadsAnS3aModelThroughTheirCache() throws IOException {
        Map<String, String> props = properties(s3.s3aSettings(), tmp.resolve("quantize-cache"));
        Path fromS3 = tmp.resolve("quantized-s3");
        CliRun run =
                CliRun.with(props, "quantize", "--master", "local[2]", "--model", MODEL, "--output", fromS3.toString());
        assertEquals(0, run.exitCode(), run.err() + run.out());
        Path local = tmp.resolve("quantized-local");
        CliRun ref = CliRun.of(
                "quantize",
                "--master",
                "local[2]",
                "--model",
                Golden.path("flux-tiny-dev").toString(),
                "--output",
                local.toString());
        assertEquals(0, ref.exitCode(), ref.err() + ref.out());
        QuantizedOutputs.assertSameFilesBut(local, fromS3, List.of("README.md"));
        // the model card names the source as given: the URI there, the folder here, and is otherwise the same
        String card = Files.readString(fromS3.resolve("README.md"));
        assertTrue(card.contains(MODEL), card);
        assertEquals(
                Files.readString(local.resolve("README.md")),
                card.replace(
                        MODEL,
                        Golden.path("flux-tiny-dev")
                                .toAbsolutePath()
                                .normalize()
                                .toString()));
    }

    @Test
    void calibrateAndADebugCommandWithAnS3aModelGiveWhatTheLocalFolderGives() throws IOException {
        Map<String, String> props = properties(s3.s3aSettings(), tmp.resolve("calibrate-cache"));
        String[] calibrate = {"calibrate", "--prompt", "a red circle", "--steps", "1", "--height", "32", "--width", "32"
        };
        Path fromS3 = tmp.resolve("stats-s3.safetensors");
        CliRun run = CliRun.with(props, concat(calibrate, "--model", MODEL, "--output", fromS3.toString()));
        assertEquals(0, run.exitCode(), run.err() + run.out());
        Path local = tmp.resolve("stats-local.safetensors");
        String golden = Golden.path("flux-tiny-dev").toString();
        CliRun ref = CliRun.of(concat(calibrate, "--model", golden, "--output", local.toString()));
        assertEquals(0, ref.exitCode(), ref.err() + ref.out());
        CalibrationStats a = CalibrationFile.read(fromS3).stats();
        CalibrationStats b = CalibrationFile.read(local).stats();
        assertEquals(b.layers().keySet(), a.layers().keySet());
        for (String l : b.layers().keySet()) {
            assertEquals(b.get(l).tokens(), a.get(l).tokens(), l);
            assertArrayEquals(b.get(l).absMax(), a.get(l).absMax(), l);
            assertArrayEquals(b.get(l).sumSq(), a.get(l).sumSq(), l);
        }

        String[] schedule = {"debug", "schedule", "--steps", "4", "--seq-len", "16"};
        CliRun debug = CliRun.with(props, concat(schedule, "--model", MODEL));
        CliRun debugRef = CliRun.of(concat(schedule, "--model", golden));
        assertEquals(0, debug.exitCode(), debug.err() + debug.out());
        assertTrue(debug.err().contains("(found in the cache, downloaded nothing)"), debug.err());
        assertEquals(debugRef.out(), debug.out());
    }

    @Test
    void anUnreachableStoreFailsWithinSecondsNamingTheModelBeforeAnyWork() throws IOException {
        Map<String, String> nowhere = s3.s3aSettings();
        nowhere.put("fs.s3a.endpoint", "http://127.0.0.1:" + LocalS3.freePort()); // nothing listens there
        long start = System.nanoTime();
        CliRun run = CliRun.with(properties(nowhere, tmp.resolve("never")), generate(MODEL, tmp.resolve("never-out")));
        double seconds = (System.nanoTime() - start) / 1e9;
        assertEquals(1, run.exitCode(), run.err() + run.out());
        assertTrue(run.err().contains("fluxbatch: error: --model: cannot list the model " + MODEL), run.err());
        assertTrue(run.err().contains("Connection refused"), run.err());
        assertTrue(seconds < 40, "took " + seconds + " s: " + run.err());
        assertFalse(run.err().contains("prompts x"), "image work started: " + run.err());
        assertFalse(Files.exists(tmp.resolve("never-out")), "output made");
    }

    @Test
    void aMissingBucketOrFolderFailsNamingTheModelBeforeAnyWork() {
        Map<String, String> props = properties(s3.s3aSettings(), tmp.resolve("missing-cache"));
        for (String missing : List.of("s3a://no-such-bucket/flux-tiny-dev", "s3a://models/no-such-model")) {
            CliRun run = CliRun.with(props, generate(missing, tmp.resolve("missing-out")));
            assertEquals(1, run.exitCode(), run.err() + run.out());
            assertTrue(run.err().contains("fluxbatch: error: --model: "), run.err());
            assertTrue(run.err().contains(missing), run.err());
            assertFalse(run.err().contains("prompts x"), "image work started: " + run.err());
        }
        CliRun folder = CliRun.with(props, generate("s3a://models/no-such-model", tmp.resolve("missing-out")));
        assertTrue(folder.err().contains("does not exist"), folder.err());
        assertFalse(Files.exists(tmp.resolve("missing-cache")), "nothing cached");
    }

    @Test
    void anUnknownSchemeOrCredentialsInTheUriAreUsageErrors() {
        CliRun scheme = CliRun.with(
                Map.of(ModelCache.PROPERTY, tmp.resolve("scheme-cache").toString()),
                generate("nosuchfs://models/flux-tiny-dev", tmp.resolve("scheme-out")));
        assertEquals(2, scheme.exitCode(), scheme.err() + scheme.out());
        assertTrue(
                scheme.err()
                        .contains("--model: nosuchfs://models/flux-tiny-dev: this build has no file system for"
                                + " the scheme 'nosuchfs'"),
                scheme.err());
        CliRun secret = CliRun.of(generate("s3a://AKIAEXAMPLE:wJalrXUtnFEMIsecret@models/flux", tmp.resolve("x")));
        assertEquals(2, secret.exitCode(), secret.err() + secret.out());
        assertTrue(secret.err().contains("--model s3a://***@models/flux has credentials in it"), secret.err());
        assertFalse(secret.err().contains("wJalrXUtnFEMIsecret"), secret.err());
    }

    private static String[] concat(String[] a, String... b) {
        String[] all = java.util.Arrays.copyOf(a, a.length + b.length);
        System.arraycopy(b, 0, all, a.length, b.length);
        return all;
    }

    /** The S3A settings as spark.hadoop.* system properties, and the model cache in {@code cache}. */
    private static Map<String, String> properties(Map<String, String> s3a, Path cache) {
        Map<String, String> props = new LinkedHashMap<>(LocalS3.sparkProperties(s3a));
        props.put(ModelCache.PROPERTY, cache.toString());
        return props;
    }

    private static String[] generate(String model, Path output) {
        return new String[] {
            "generate",
            "--model",
            model,
            "--prompt",
            "a red circle",
            "--steps",
            "1",
            "--height",
            "32",
            "--width",
            "32",
            "--output",
            output.toString()
        };
    }

    /** The same PNG files (names and bytes) under both outputs' images/. */
    private static void assertSameImages(Path expected, Path actual) throws IOException {
        List<String> names = pngs(expected);
        assertEquals(1, names.size(), names.toString());
        assertEquals(names, pngs(actual));
        for (String n : names) {
            assertArrayEquals(
                    Files.readAllBytes(expected.resolve("images").resolve(n)),
                    Files.readAllBytes(actual.resolve("images").resolve(n)),
                    n);
        }
    }

    private static List<String> pngs(Path output) throws IOException {
        try (Stream<Path> s = Files.list(output.resolve("images"))) {
            return s.map(p -> p.getFileName().toString())
                    .filter(n -> n.endsWith(".png"))
                    .sorted()
                    .toList();
        }
    }

    /** The model column of each metadata row. */
    private static List<String> models(Path output) throws IOException {
        List<String> models = new ArrayList<>();
        try (Stream<Path> s = Files.list(output.resolve("metadata").resolve("jsonl"))) {
            for (Path part : s.filter(p -> p.getFileName().toString().matches("part-.*\\.json"))
                    .toList()) {
                for (String line : Files.readAllLines(part)) {
                    if (!line.isBlank()) {
                        models.add(
                                new ObjectMapper().readTree(line).get("model").asText());
                    }
                }
            }
        }
        return models;
    }
}
