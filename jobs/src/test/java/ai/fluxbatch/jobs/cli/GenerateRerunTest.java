package ai.fluxbatch.jobs.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.fluxbatch.jobs.generate.FaultyFileSystem;
import ai.fluxbatch.jobs.generate.RunManifest;
import ai.fluxbatch.model.Golden;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import java.util.TreeSet;
import java.util.function.Function;
import java.util.stream.Collectors;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Re-runs into an existing output: its run manifest refuses other settings (naming each difference) and lets the same
 * ones resume; the metadata table accumulates across runs; rows say where each image was made.
 */
class GenerateRerunTest {
    private static final ObjectMapper JSON = new ObjectMapper();

    private static final String IMPL = "spark.hadoop." + FaultyFileSystem.IMPL_KEY;

    @TempDir
    Path tmp;

    @AfterEach
    void reset() {
        FaultyFileSystem.reset();
        System.clearProperty(IMPL);
    }

    private static CliRun generate(String... args) {
        List<String> all = new ArrayList<>(List.of(
                "generate", "--model", Golden.path("flux-tiny-dev").toString(), "--height", "32", "--width", "32"));
        all.addAll(Arrays.asList(args));
        return CliRun.of(all.toArray(String[]::new));
    }

    /** Every file under {@code dir} with its bytes, by relative path. */
    private static Map<String, String> snapshot(Path dir) throws IOException {
        Map<String, String> files = new TreeMap<>();
        try (Stream<Path> s = Files.walk(dir)) {
            for (Path p : s.filter(Files::isRegularFile).toList()) {
                files.put(dir.relativize(p).toString(), Arrays.toString(Files.readAllBytes(p)));
            }
        }
        return files;
    }

    private static Map<String, JsonNode> byId(Path out) throws IOException {
        List<JsonNode> rows = GenerateDatasetTest.metadata(out);
        Map<String, JsonNode> byId =
                rows.stream().collect(Collectors.toMap(r -> r.get("id").asText(), Function.identity()));
        assertEquals(rows.size(), byId.size(), "one row per image id: " + rows);
        return byId;
    }

    @Test
    void otherSettingsAreRefusedNamingEachDifferenceAndNothingIsWritten() throws IOException {
        Path out = tmp.resolve("out");
        CliRun first = generate("--prompt", "a red circle", "--steps", "1", "--seed", "3", "--output", out.toString());
        assertEquals(0, first.exitCode(), first.err());
        JsonNode manifest = JSON.readTree(out.resolve(RunManifest.FILE).toFile());
        assertEquals(1, manifest.get("steps").asInt(), manifest.toString());
        assertEquals(3, manifest.get("seed").asLong(), manifest.toString());
        Map<String, String> before = snapshot(out);

        CliRun steps = generate("--prompt", "a blue square", "--steps", "2", "--seed", "3", "--output", out.toString());
        assertEquals(2, steps.exitCode(), steps.err());
        assertTrue(steps.err().contains("--steps: the output was made with 1, this run asks for 2"), steps.err());
        assertFalse(steps.err().contains("--seed:"), "the seed did not change: " + steps.err());

        CliRun both = generate("--prompt", "a red circle", "--steps", "2", "--seed", "4", "--output", out.toString());
        assertEquals(2, both.exitCode(), both.err());
        assertTrue(
                both.err()
                        .contains("--steps: the output was made with 1, this run asks for 2; --seed: the output was"
                                + " made with 3, this run asks for 4"),
                both.err());
        CliRun jpeg = generate(
                "--prompt",
                "a red circle",
                "--steps",
                "1",
                "--seed",
                "3",
                "--image-format",
                "jpeg",
                "--output",
                out.toString());
        assertEquals(2, jpeg.exitCode(), jpeg.err());
        assertTrue(
                jpeg.err().contains("--image-format: the output was made with png, this run asks for jpeg"),
                jpeg.err());
        for (CliRun refused : List.of(steps, both, jpeg)) {
            assertTrue(refused.err().contains("--overwrite"), "says what to do: " + refused.err());
            assertFalse(refused.err().contains("prompts x"), "image work started: " + refused.err());
        }
        assertEquals(before, snapshot(out), "a refused run writes nothing");
    }

    @Test
    void theSameSettingsResumeAndTheTableAccumulatesAcrossRuns() throws IOException {
        Path out = tmp.resolve("out");
        CliRun first = generate(
                "--prompt", "a red circle", "--prompt", "a blue square", "--steps", "1", "--output", out.toString());
        assertEquals(0, first.exitCode(), first.err());
        assertTrue(
                first.out()
                        .contains("2 images: 2 written, 0 skipped (already there), 0 failed; 0 on a GPU, 2 on a CPU"),
                first.out());
        assertTrue(first.err().contains("0 on a GPU and 2 on a CPU"), "progress line: " + first.err());
        assertTrue(first.err().contains("--device auto: 2 images were made on a CPU"), "not a GPU run: " + first.err());
        Map<String, JsonNode> run1 = byId(out);
        for (JsonNode r : run1.values()) {
            assertEquals("ok", r.get("status").asText(), r.toString());
            assertEquals("cpu", r.get("device").asText(), r.toString());
            assertTrue(r.get("backend").asText().startsWith("cpu("), r.toString());
            assertEquals(64, r.get("png_sha256").asText().length(), r.toString());
        }

        // the same settings, one prompt again and one new: resumes
        CliRun second = generate(
                "--prompt",
                "a blue square",
                "--prompt",
                "a green triangle",
                "--steps",
                "1",
                "--output",
                out.toString());
        assertEquals(0, second.exitCode(), second.err());
        assertTrue(
                second.out()
                        .contains("2 images: 1 written, 1 skipped (already there), 0 failed; 0 on a GPU, 1 on a CPU"),
                second.out());
        assertTrue(second.err().contains("0 on a GPU and 1 on a CPU"), "progress line: " + second.err());
        Map<String, JsonNode> run2 = byId(out);
        Set<String> both = new TreeSet<>(run1.keySet());
        both.addAll(run2.keySet());
        assertEquals(3, both.size(), "two prompts each, one shared");
        assertEquals(both, run2.keySet(), "every image of both runs");

        Map<String, String> statuses = new HashMap<>();
        run2.values()
                .forEach(r ->
                        statuses.put(r.get("prompt").asText(), r.get("status").asText()));
        assertEquals(Map.of("a red circle", "ok", "a blue square", "skipped", "a green triangle", "ok"), statuses);
        JsonNode skipped = run2.values().stream()
                .filter(r -> r.get("status").asText().equals("skipped"))
                .findFirst()
                .orElseThrow();
        JsonNode written = run1.get(skipped.get("id").asText());
        assertNotNull(written);
        for (String kept : List.of(
                "png_sha256", "denoise_seconds", "vae_seconds", "write_seconds", "executor", "device", "backend")) {
            assertEquals(written.get(kept), skipped.get(kept), kept + " of the run that wrote it: " + skipped);
        }
        assertTrue(skipped.get("denoise_seconds").asDouble() > 0, skipped.toString());
        JsonNode red = run1.values().stream()
                .filter(r -> r.get("prompt").asText().equals("a red circle"))
                .findFirst()
                .orElseThrow();
        assertEquals(red, run2.get(red.get("id").asText()), "a row of run 1 that run 2 did not list is kept as it was");
        try (Stream<Path> s = Files.list(out.resolve("metadata"))) {
            assertEquals(
                    List.of("jsonl", "parquet"),
                    s.map(p -> p.getFileName().toString()).sorted().toList(),
                    "no temporary table left");
        }
    }

    @Test
    void overwriteReplacesTheManifestAndTheNewSettingsThenResume() throws IOException {
        Path out = tmp.resolve("out");
        assertEquals(
                0,
                generate("--prompt", "a red circle", "--steps", "1", "--output", out.toString())
                        .exitCode());
        String sha1 = byId(out).values().iterator().next().get("png_sha256").asText();

        CliRun replaced =
                generate("--prompt", "a red circle", "--steps", "2", "--overwrite", "--output", out.toString());
        assertEquals(0, replaced.exitCode(), replaced.err());
        assertTrue(replaced.out().contains("1 images: 1 written, 0 skipped"), replaced.out());
        assertTrue(replaced.err().contains("replaced by this run's"), replaced.err());
        assertEquals(
                2,
                JSON.readTree(out.resolve(RunManifest.FILE).toFile())
                        .get("steps")
                        .asInt());
        JsonNode row = byId(out).values().iterator().next();
        assertEquals(2, row.get("steps").asInt(), row.toString());
        assertFalse(sha1.equals(row.get("png_sha256").asText()), "the image was made again with 2 steps");

        CliRun resumed = generate("--prompt", "a red circle", "--steps", "2", "--output", out.toString());
        assertEquals(0, resumed.exitCode(), resumed.err());
        assertTrue(resumed.out().contains("1 images: 0 written, 1 skipped"), resumed.out());
        CliRun old = generate("--prompt", "a red circle", "--steps", "1", "--output", out.toString());
        assertEquals(2, old.exitCode(), old.err());
        assertTrue(old.err().contains("--steps: the output was made with 2, this run asks for 1"), old.err());
    }

    @Test
    void aRunWhoseTableCannotBeWrittenKeepsTheEarlierTable() throws IOException {
        System.setProperty(IMPL, FaultyFileSystem.class.getName());
        Path out = tmp.resolve("out");
        String uri = FaultyFileSystem.uri(out);
        assertEquals(
                0,
                generate("--prompt", "a red circle", "--steps", "1", "--output", uri)
                        .exitCode());
        Map<String, JsonNode> before = byId(out);
        assertEquals(1, before.size());
        FaultyFileSystem.pngLimit = 1; // the disk is full from the next image on, metadata included
        FaultyFileSystem.fillsUp = true;
        CliRun full = generate("--prompt", "a blue square", "--steps", "1", "--output", uri);
        assertEquals(1, full.exitCode(), full.err());
        assertTrue(full.err().contains("the metadata table could not be written either"), full.err());
        assertEquals(before, byId(out), "the earlier table, as it was");
        try (Stream<Path> s = Files.list(out.resolve("metadata"))) {
            assertEquals(
                    List.of("jsonl", "parquet"),
                    s.map(p -> p.getFileName().toString()).sorted().toList(),
                    "no half table left beside it");
        }
    }
}
