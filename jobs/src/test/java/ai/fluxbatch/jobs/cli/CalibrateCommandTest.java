package ai.fluxbatch.jobs.cli;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.fluxbatch.jobs.calibrate.CalibratePartition;
import ai.fluxbatch.model.Golden;
import ai.fluxbatch.model.calib.CalibrationFile;
import ai.fluxbatch.model.calib.CalibrationStats;
import ai.fluxbatch.model.calib.LayerStats;
import ai.fluxbatch.model.quant.TernaryFormat;
import ai.fluxbatch.model.safetensors.TensorSource;
import ai.fluxbatch.model.safetensors.TensorSources;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeSet;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code fluxbatch calibrate} in Spark local mode on the tiny golden model (64x64: 16 image tokens; a dev model: 512
 * T5 tokens): the statistics of every layer with the token counts the trajectory implies, the same statistics however
 * the prompts are partitioned and when a task is retried, and input checked before any work.
 */
class CalibrateCommandTest {
    private static final int IMAGE_TOKENS = 16;
    private static final int TEXT_TOKENS = 512;

    @TempDir
    Path tmp;

    private static String model() {
        return Golden.path("flux-tiny-dev").toString();
    }

    @Test
    void recordsEveryQuantizableLayerWithTheTokensOfTheTrajectory() throws IOException {
        Path out = tmp.resolve("stats.safetensors");
        CliRun run = CliRun.of(
                "calibrate",
                "--model",
                model(),
                "--prompts",
                "paper-7232",
                "--limit",
                "3",
                "--steps",
                "2",
                "--height",
                "64",
                "--width",
                "64",
                "--gram",
                "--batch-size",
                "2",
                "--output",
                out.toString());
        assertEquals(0, run.exitCode(), run.err() + run.out());
        assertTrue(run.err().contains("calibrate: statistics take "), run.err());
        assertTrue(run.err().contains("gram on"), run.err());
        assertTrue(
                run.out()
                        .matches("(?s).*calibrate: 3 prompts, \\d+ layers, \\d+ tokens in .* s \\(.* prompts/s\\)"
                                + " -> "
                                + java.util.regex.Pattern.quote(
                                        out.toAbsolutePath().toString()) + "\\R.*"),
                run.out());

        CalibrationFile.Contents c = CalibrationFile.read(out);
        CalibrationStats stats = c.stats();
        assertEquals(quantizableLayers(), new TreeSet<>(stats.layers().keySet()));
        for (var e : stats.layers().entrySet()) {
            LayerStats s = e.getValue();
            assertTrue(s.tokens() > 0, e.getKey());
            assertTrue(s.hasGram(), e.getKey());
            for (int i = 0; i < s.inFeatures(); i++) { // the Gram diagonal is the sum of squares
                double diag = s.gram()[i * s.inFeatures() + i];
                assertEquals(s.sumSq()[i], diag, 1e-4 * Math.abs(s.sumSq()[i]) + 1e-6, e.getKey() + " channel " + i);
            }
        }
        int perImage = 2; // steps recorded
        assertEquals(
                3L * perImage * IMAGE_TOKENS,
                stats.get("double_blocks.0.img_attn.qkv").tokens());
        assertEquals(
                3L * perImage * TEXT_TOKENS,
                stats.get("double_blocks.1.txt_mlp.0").tokens());
        assertEquals(
                3L * perImage * (IMAGE_TOKENS + TEXT_TOKENS),
                stats.get("single_blocks.0.linear2").tokens());
        assertEquals(3L * perImage, stats.get("double_blocks.0.img_mod.lin").tokens());

        Map<String, String> m = c.metadata();
        assertEquals(Path.of(model()).toAbsolutePath().toString(), m.get("model"));
        assertEquals(64, m.get("model_fingerprint").length());
        assertEquals("paper-7232", m.get("prompts"));
        assertEquals("3", m.get("prompt_count"));
        assertEquals("3", m.get("images"));
        assertEquals("2", m.get("steps"));
        assertEquals("0,1", m.get("recorded_steps"));
        assertEquals("64", m.get("height"));
        assertEquals("64", m.get("width"));
        assertEquals("3.5", m.get("guidance"));
        assertEquals("512", m.get("max_sequence_length"), "a dev model's own T5 length");
        assertEquals("0", m.get("seed"));
        assertEquals("true", m.get("gram"));
        assertEquals("", m.get("layers"));
        assertEquals(Long.toString(stats.tokens()), m.get("tokens"));
        assertEquals(Version.get(), m.get("fluxbatch_version"));
        assertTrue(m.get("created").matches("\\d{4}-\\d\\d-\\d\\dT.*Z"), m.get("created"));
        assertEquals(List.of(out), listing(tmp), "one file, no temporaries");
    }

    @Test
    void recordsOnlyTheChosenStepsAndLayersAndSkipsBadRows() throws IOException {
        Path out = tmp.resolve("stats.safetensors");
        Files.writeString(out, "an old file");
        String[] args = {
            "calibrate",
            "--model",
            model(),
            "--prompt",
            "a red circle",
            "--prompt",
            " ",
            "--prompt",
            "a blue square",
            "--steps",
            "4",
            "--height",
            "64",
            "--width",
            "64",
            "--timesteps",
            "1,3",
            "--layers",
            "^double_blocks\\.0\\.",
            "--output",
            out.toString(),
            "--overwrite"
        };
        CliRun run = CliRun.of(args);
        assertEquals(0, run.exitCode(), run.err() + run.out());
        assertTrue(run.out().contains("skipped 1 bad prompt rows"), run.out());
        assertTrue(run.err().contains("gram off"), run.err());
        CalibrationFile.Contents c = CalibrationFile.read(out);
        assertTrue(
                c.stats().layers().keySet().stream().allMatch(l -> l.startsWith("double_blocks.0.")),
                c.stats().layers().keySet().toString());
        assertEquals(
                quantizableLayers().stream()
                        .filter(l -> l.startsWith("double_blocks.0."))
                        .toList(),
                new ArrayList<>(c.stats().layers().keySet()));
        assertEquals(
                2L * 2 * IMAGE_TOKENS,
                c.stats().get("double_blocks.0.img_mlp.2").tokens());
        assertFalse(c.stats().get("double_blocks.0.img_mlp.2").hasGram());
        assertEquals("1,3", c.metadata().get("recorded_steps"));
        assertEquals("2", c.metadata().get("prompt_count"));
        assertEquals("1", c.metadata().get("prompt_rows_skipped"));
        assertEquals("cli", c.metadata().get("prompts"));
    }

    @Test
    void theSameStatisticsHoweverThePromptsArePartitioned() {
        CalibrationStats one = calibrate("local[1]", "4", "2", tmp.resolve("one.safetensors"));
        CalibrationStats two = calibrate("local[2]", "1", "1", tmp.resolve("two.safetensors"));
        assertClose(one, two);
    }

    @Test
    void aRetriedTaskCountsOnceAndTheFileIsWrittenOnce() throws IOException {
        CalibrationStats clean = calibrate("local[2]", "2", "2", tmp.resolve("clean.safetensors"));
        Path retriedDir = Files.createDirectories(tmp.resolve("retried"));
        Path retried = retriedDir.resolve("stats.safetensors");
        System.setProperty(CalibratePartition.FAIL_FIRST_ATTEMPT, "true");
        try {
            CliRun failing = run(
                    "local[2]",
                    "2",
                    "2",
                    retriedDir.resolve("no-retries.safetensors").toString());
            assertNotEquals(0, failing.exitCode(), "the hook fails a task: without retries the job fails");
            assertEquals(List.of(), listing(retriedDir), "nothing written by a failed job");
            // a file:// URI: written through the Hadoop FileSystem API, copied beside the target and renamed
            CliRun run = run("local[2,2]", "2", "2", retried.toUri().toString());
            assertEquals(0, run.exitCode(), run.err() + run.out());
        } finally {
            System.clearProperty(CalibratePartition.FAIL_FIRST_ATTEMPT);
        }
        assertEquals(List.of(retried), listing(retriedDir), "one file, no temporaries or checksum files");
        CalibrationStats again = CalibrationFile.read(retried).stats();
        assertClose(clean, again);
    }

    @Test
    void badInputFailsBeforeAnyWork() throws IOException {
        String model = model();
        Path existing = Files.writeString(tmp.resolve("existing.safetensors"), "x");
        String out = tmp.resolve("out.safetensors").toString();
        assertFails(
                2,
                "--timesteps 0,4: step 4 is out of range; expected step indices 0 to 3 (--steps 4)",
                "--model",
                model,
                "--prompt",
                "x",
                "--steps",
                "4",
                "--timesteps",
                "0,4",
                "--output",
                out);
        assertFails(
                2,
                "--timesteps 3-1: range 3-1 runs backwards",
                "--model",
                model,
                "--prompt",
                "x",
                "--steps",
                "4",
                "--timesteps",
                "3-1",
                "--output",
                out);
        assertFails(
                2,
                "'first' is not a step index",
                "--model",
                model,
                "--prompt",
                "x",
                "--steps",
                "4",
                "--timesteps",
                "first",
                "--output",
                out);
        assertFails(2, "--steps is 0", "--model", model, "--prompt", "x", "--steps", "0", "--output", out);
        assertFails(2, "--height is 65", "--model", model, "--prompt", "x", "--height", "65", "--output", out);
        assertFails(
                2,
                "Unknown options: '--colour'",
                "--model",
                model,
                "--prompt",
                "x",
                "--colour",
                "red",
                "--output",
                out);
        assertFails(2, "Missing required option: '--output", "--model", model, "--prompt", "x");
        assertFails(2, "no prompts", "--model", model, "--output", out);
        assertFails(2, "--batch-size is 0", "--model", model, "--prompt", "x", "--batch-size", "0", "--output", out);
        assertFails(
                2,
                "--layers ( is not a regular expression",
                "--model",
                model,
                "--prompt",
                "x",
                "--layers",
                "(",
                "--output",
                out);
        assertFails(
                1,
                "--layers ^final_layer matches none of the 26 quantizable layers",
                "--model",
                model,
                "--prompt",
                "x",
                "--layers",
                "^final_layer",
                "--output",
                out);
        assertFails(
                2,
                "more than the 0.0 MiB --max-stats-memory allows: record fewer layers per run with --layers",
                "--model",
                model,
                "--prompt",
                "x",
                "--gram",
                "--max-stats-memory",
                "1k",
                "--output",
                out);
        assertFails(
                1,
                existing + " exists: pass --overwrite to replace it",
                "--model",
                model,
                "--prompt",
                "x",
                "--output",
                existing.toString());
        assertFails(1, tmp + " is a folder", "--model", model, "--prompt", "x", "--output", tmp.toString());
        assertFails(
                1, "does not exist", "--model", tmp.resolve("no-model").toString(), "--prompt", "x", "--output", out);
        assertEquals("x", Files.readString(existing));
        assertEquals(List.of(existing), listing(tmp));
    }

    @Test
    void aFullyQuantizedModelIsRefusedAndAPartlyQuantizedOneRecordsItsFullPrecisionLayers() throws IOException {
        Path quantized = tmp.resolve("quantized");
        assertEquals(
                0,
                CliRun.of("quantize", "--model", model(), "--output", quantized.toString())
                        .exitCode());
        Path out = tmp.resolve("out.safetensors");
        assertFails(
                1,
                "every block layer of " + quantized.toAbsolutePath().resolve("flux1-dev.safetensors")
                        + " is already quantized (method absmean)",
                "--model",
                quantized.toString(),
                "--prompt",
                "x",
                "--output",
                out.toString());
        assertFalse(Files.exists(out));

        Path partly = tmp.resolve("partly");
        CliRun q = CliRun.of(
                "quantize", "--model", model(), "--layers", "double_blocks\\..*", "--output", partly.toString());
        assertEquals(0, q.exitCode(), q.err());
        CliRun run = CliRun.of(
                "calibrate",
                "--model",
                partly.toString(),
                "--prompt",
                "a red circle",
                "--steps",
                "2",
                "--height",
                "64",
                "--width",
                "64",
                "--output",
                out.toString());
        assertEquals(0, run.exitCode(), run.err());
        CalibrationFile.Contents c = CalibrationFile.read(out);
        assertTrue(
                c.stats().layers().keySet().stream().allMatch(l -> l.startsWith("single_blocks.")),
                c.stats().layers().keySet().toString());
        assertFalse(c.stats().layers().isEmpty());
    }

    private static CliRun run(String master, String promptsPerPartition, String batchSize, String output) {
        return CliRun.of(
                "calibrate",
                "--master",
                master,
                "--model",
                model(),
                "--prompt",
                "a red circle",
                "--prompt",
                "a blue square",
                "--prompt",
                "a green triangle",
                "--prompt",
                "a yellow star",
                "--steps",
                "2",
                "--height",
                "64",
                "--width",
                "64",
                "--gram",
                "--prompts-per-partition",
                promptsPerPartition,
                "--batch-size",
                batchSize,
                "--output",
                output);
    }

    private static CalibrationStats calibrate(String master, String promptsPerPartition, String batchSize, Path out) {
        CliRun run = run(master, promptsPerPartition, batchSize, out.toString());
        assertEquals(0, run.exitCode(), run.err() + run.out());
        return CalibrationFile.read(out).stats();
    }

    /** Exact token counts and maxima; sums and Gram matrices within float rounding of another summation order. */
    private static void assertClose(CalibrationStats expected, CalibrationStats actual) {
        assertEquals(expected.layers().keySet(), actual.layers().keySet());
        for (String l : expected.layers().keySet()) {
            LayerStats e = expected.get(l), a = actual.get(l);
            assertEquals(e.tokens(), a.tokens(), l);
            assertArrayEquals(e.absMax(), a.absMax(), l + " absmax");
            for (int i = 0; i < e.inFeatures(); i++) {
                double scale = Math.sqrt(e.sumSq()[i] * e.tokens()); // bounds |sum|; a sum near 0 still has a scale
                assertEquals(e.sum()[i], a.sum()[i], 1e-5 * scale, l + " sum " + i);
                assertEquals(e.sumSq()[i], a.sumSq()[i], 1e-5 * e.sumSq()[i], l + " sum of squares " + i);
            }
            for (int i = 0; i < e.gram().length; i++) {
                int r = i / e.inFeatures(), col = i % e.inFeatures();
                double scale = Math.sqrt(e.sumSq()[r] * e.sumSq()[col]); // bounds |gram[r][c]|
                assertEquals(e.gram()[i], a.gram()[i], 1e-5 * scale, l + " gram " + r + "," + col);
            }
        }
    }

    private static void assertFails(int code, String expected, String... args) {
        String[] all = new String[args.length + 1];
        all[0] = "calibrate";
        System.arraycopy(args, 0, all, 1, args.length);
        CliRun run = CliRun.of(all);
        assertEquals(code, run.exitCode(), run.err() + run.out());
        assertTrue(run.err().contains(expected), "expected '" + expected + "' in: " + run.err());
    }

    private static TreeSet<String> quantizableLayers() {
        TreeSet<String> layers = new TreeSet<>();
        try (TensorSource t = TensorSources.open(Golden.path("flux-tiny-dev", "flux1-dev.safetensors"))) {
            for (String n : t.names()) {
                if (TernaryFormat.isQuantized(n, t.info(n).shape())) {
                    layers.add(n.substring(0, n.length() - ".weight".length()));
                }
            }
        }
        assertTrue(layers.size() > 10, layers.toString());
        return layers;
    }

    private static List<Path> listing(Path dir) throws IOException {
        try (Stream<Path> s = Files.list(dir)) {
            return s.sorted().toList();
        }
    }
}
