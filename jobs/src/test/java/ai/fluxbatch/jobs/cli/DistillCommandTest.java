package ai.fluxbatch.jobs.cli;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.fluxbatch.jobs.distill.FakeStudentFactory;
import ai.fluxbatch.jobs.distill.StudentEngines;
import ai.fluxbatch.kernel.cpu.CpuBackend;
import ai.fluxbatch.model.Golden;
import ai.fluxbatch.model.distill.DistillCheckpoint;
import ai.fluxbatch.model.eval.QuantizationInfo;
import ai.fluxbatch.model.flux.FluxTransformers;
import ai.fluxbatch.model.quant.TernaryFormat;
import ai.fluxbatch.model.safetensors.DType;
import ai.fluxbatch.model.safetensors.SafetensorsWriter;
import ai.fluxbatch.model.safetensors.TensorInfo;
import ai.fluxbatch.model.safetensors.TensorSource;
import ai.fluxbatch.model.safetensors.TensorSources;
import ai.fluxbatch.model.snapshot.FluxSnapshot;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code fluxbatch distill} on the tiny golden model and its absmean quantization, in Spark local mode, with a stand-in
 * teacher and student ({@link FakeStudentFactory}) behind the real job: the output snapshot (codes bit for bit, trained
 * scales and biases, metadata, loadable), the same result with one or two executors' worth of partitions and after a
 * killed run is resumed, a NaN loss stopping the run, and the refusals before any work.
 */
class DistillCommandTest {
    private static final long SEED = 7;
    private static final int BATCH = 4;

    @TempDir
    static Path shared;

    static Path student;
    static Path partial;

    @TempDir
    Path tmp;

    @BeforeAll
    static void quantize() {
        student = shared.resolve("q");
        CliRun run = CliRun.of("quantize", "--model", teacher(), "--output", student.toString());
        assertEquals(0, run.exitCode(), run.err());
        partial = shared.resolve("q-double");
        run = CliRun.of(
                "quantize", "--model", teacher(), "--layers", "double_blocks\\..*", "--output", partial.toString());
        assertEquals(0, run.exitCode(), run.err());
    }

    @BeforeEach
    void fakeStudent() {
        System.setProperty(DistillCommand.STUDENT_FACTORY, FakeStudentFactory.class.getName());
    }

    @AfterEach
    void clear() {
        System.clearProperty(DistillCommand.STUDENT_FACTORY);
        System.clearProperty(FakeStudentFactory.FAIL_AT_SEED);
        System.clearProperty(FakeStudentFactory.NAN_AT_SEED);
    }

    private static String teacher() {
        return Golden.path("flux-tiny-dev").toString();
    }

    /** distill with {@code more}, and the test's defaults for the options {@code more} leaves out. */
    private static CliRun distill(Path quantized, Path out, String master, String... more) {
        List<String> args = new ArrayList<>(List.of(
                "distill",
                "--model",
                teacher(),
                "--quantized",
                quantized.toString(),
                "--prompt",
                "a red circle",
                "--prompt",
                "a blue square on the left",
                "--prompt",
                "sky",
                "--device",
                "cpu",
                "--master",
                master,
                "--output",
                out.toString()));
        args.addAll(List.of(more));
        Map<String, String> defaults = Map.of(
                "--batch-size",
                Integer.toString(BATCH),
                "--seed",
                Long.toString(SEED),
                "--learning-rate",
                "0.02",
                "--height",
                "64",
                "--width",
                "64");
        defaults.forEach((option, value) -> {
            if (!args.contains(option)) {
                args.addAll(List.of(option, value));
            }
        });
        return CliRun.of(args.toArray(String[]::new));
    }

    private static Path transformer(Path snapshot) {
        return FluxSnapshot.open(snapshot).transformerFile();
    }

    private static byte[] bytes(TensorSource s, String name) {
        ByteBuffer b = s.bytes(name, 0, Math.toIntExact(s.info(name).byteLength()));
        byte[] out = new byte[b.remaining()];
        b.get(out);
        return out;
    }

    private static boolean trained(String name) {
        return (name.endsWith(".weight_scale") || name.endsWith(".bias"))
                && (name.startsWith("double_blocks.") || name.startsWith("single_blocks."));
    }

    @Test
    void writesASnapshotWithTheSameCodesAndTrainedScalesAndBiases() throws IOException {
        Path out = tmp.resolve("distilled");
        CliRun run = distill(student, out, "local[2]", "--steps", "6", "--checkpoint-every", "4");
        assertEquals(0, run.exitCode(), run.err() + run.out());
        assertTrue(run.err().contains("distill: step 1/6, loss "), run.err());
        assertTrue(
                run.err().matches("(?s).*distill: step 6/6, loss [0-9.e-]+, [0-9.]+ samples/s, ETA 0 s.*"), run.err());
        assertTrue(run.err().contains("distill: checkpoint after step 4: "), run.err());
        assertTrue(run.out().contains("distill: 6 steps (24 samples), loss "), run.out());

        int ternary = 0, changed = 0;
        try (TensorSource in = TensorSources.open(transformer(student));
                TensorSource got = TensorSources.open(transformer(out))) {
            assertEquals(in.names(), got.names());
            for (String name : in.names()) {
                TensorInfo a = in.info(name), b = got.info(name);
                assertArrayEquals(a.shape(), b.shape(), name);
                boolean isBlockLinear = trained(name) && in.contains(blockWeight(name) + "_scale");
                if (isBlockLinear) {
                    assertEquals(DType.F32, b.dtype(), name);
                    changed += Arrays.equals(in.floats(name), got.floats(name)) ? 0 : 1;
                } else {
                    assertEquals(a.dtype(), b.dtype(), name);
                    assertArrayEquals(bytes(in, name), bytes(got, name), name + " is copied bit for bit");
                    ternary += a.dtype() == DType.U8 ? 1 : 0;
                }
            }
            assertTrue(ternary > 0, "ternary codes compared");
            assertEquals(2 * ternary, changed, "every ternary layer's scale and bias trained");

            Map<String, String> m = got.metadata();
            Map<String, String> before = in.metadata();
            assertEquals("absmean+distill", m.get(TernaryFormat.KEY_METHOD));
            assertEquals(before.get(TernaryFormat.KEY_VERSION), m.get(TernaryFormat.KEY_VERSION));
            assertEquals(before.get(TernaryFormat.KEY_FORMAT), m.get(TernaryFormat.KEY_FORMAT));
            assertEquals(before.get(TernaryFormat.KEY_SOURCE_SHA256), m.get(TernaryFormat.KEY_SOURCE_SHA256));
            assertEquals("6", m.get("distill_steps"));
            assertEquals("24", m.get("distill_samples"));
            assertEquals("4", m.get("distill_batch_size"));
            assertEquals("0.02", m.get("distill_learning_rate"));
            assertEquals("scales,biases", m.get("distill_trainable"));
            assertEquals("20", m.get("distill_sample_steps"));
            assertEquals("3", m.get("distill_prompt_count"));
            assertEquals("7", m.get("distill_seed"));
            assertEquals("3.5", m.get("distill_guidance"));
            assertEquals("64", m.get("distill_height"));
            assertEquals("512", m.get("distill_max_sequence_length"), "a dev teacher's own T5 length");
            double first = Double.parseDouble(m.get("distill_first_loss"));
            double last = Double.parseDouble(m.get("distill_last_loss"));
            assertTrue(last < first, first + " -> " + last);
        }
        assertTrue(OutputFolders.isMarked(out));
        assertTrue(Files.readString(out.resolve(OutputFolders.MARKER)).startsWith("made by fluxbatch distill "));
        assertEquals(
                "absmean+distill",
                QuantizedOutputs.quantizationConfig(out).path("method").asText());
        String card = QuantizedOutputs.Card.of(out).body();
        assertTrue(card.contains("- `absmean+distill`: ") && card.contains("## Distillation"), card);
        assertTrue(card.contains(": 6 steps, 24 samples from "), card);
        assertTrue(Files.isRegularFile(out.resolve("ae.safetensors")));
        assertTrue(Files.isRegularFile(out.resolve("text_encoder_2/config.json")));
        assertEquals(
                List.of("step-000004.safetensors", "step-000006.safetensors"),
                DistillCheckpoint.list(out.resolve("checkpoints")).stream()
                        .map(p -> p.getFileName().toString())
                        .toList());
        try (Stream<Path> s = Files.list(tmp)) {
            assertEquals(List.of(out), s.toList(), "no temporaries beside the output");
        }

        // the model loader, evaluate's header reader and a generate run take it like any snapshot
        FluxTransformers.load(FluxSnapshot.open(out), new CpuBackend());
        QuantizationInfo info = QuantizationInfo.of(out);
        assertEquals("absmean+distill", info.method());
        assertEquals(1.0, info.ternaryFraction());
        CliRun gen = CliRun.of(
                "generate",
                "--model",
                out.toString(),
                "--prompt",
                "a red circle",
                "--steps",
                "2",
                "--height",
                "32",
                "--width",
                "32",
                "--device",
                "cpu",
                "--output",
                tmp.resolve("images").toString());
        assertEquals(0, gen.exitCode(), gen.err());
        assertTrue(gen.err().contains("absmean+distill"), gen.err());
    }

    private static String blockWeight(String name) {
        return name.endsWith(".bias")
                ? name.substring(0, name.length() - ".bias".length()) + ".weight"
                : name.substring(0, name.length() - "_scale".length());
    }

    @Test
    void onlyWhatIsTrainableChangesAndAPartlyQuantizedResultQuantizesOn() throws IOException {
        Path out = tmp.resolve("scales-only");
        CliRun run = distill(partial, out, "local[1]", "--steps", "2", "--trainable", "scales");
        assertEquals(0, run.exitCode(), run.err() + run.out());
        try (TensorSource in = TensorSources.open(transformer(partial));
                TensorSource got = TensorSources.open(transformer(out))) {
            int scales = 0;
            for (String name : in.names()) {
                if (name.endsWith(".weight_scale")) {
                    assertNotEquals(Arrays.toString(in.floats(name)), Arrays.toString(got.floats(name)), name);
                    scales++;
                } else {
                    assertEquals(in.info(name).dtype(), got.info(name).dtype(), name);
                    assertArrayEquals(bytes(in, name), bytes(got, name), name + " stays as loaded");
                }
            }
            assertTrue(scales > 0);
            assertTrue(in.names().stream().noneMatch(n -> n.startsWith("single_blocks.") && n.endsWith("_scale")));
            assertEquals("scales", got.metadata().get("distill_trainable"));
        }
        // quantize --layers continues a distilled, partly quantized snapshot with its base method
        Path more = tmp.resolve("more");
        run = CliRun.of(
                "quantize", "--model", out.toString(), "--layers", "single_blocks\\..*", "--output", more.toString());
        assertEquals(0, run.exitCode(), run.err());
        try (TensorSource d = TensorSources.open(transformer(out));
                TensorSource q = TensorSources.open(transformer(more))) {
            assertTrue(q.contains("single_blocks.0.linear1.weight_scale"));
            String scale = "double_blocks.0.img_attn.qkv.weight_scale";
            assertArrayEquals(d.floats(scale), q.floats(scale), "the distilled scales are kept");
            assertEquals("absmean+distill", q.metadata().get(TernaryFormat.KEY_METHOD));
        }
    }

    /** The trained scale and bias tensors of a snapshot. */
    private static Map<String, float[]> trainedTensors(Path snapshot) {
        Map<String, float[]> m = new java.util.TreeMap<>();
        try (TensorSource s = TensorSources.open(transformer(snapshot))) {
            for (String name : s.names()) {
                if (trained(name) && s.contains(blockWeight(name) + "_scale")) {
                    m.put(name, s.floats(name));
                }
            }
        }
        return m;
    }

    @Test
    void oneOrTwoPartitionsPerStepGiveTheSameParameters() {
        Path one = tmp.resolve("one"), two = tmp.resolve("two");
        CliRun a = distill(student, one, "local[1]", "--steps", "5");
        assertEquals(0, a.exitCode(), a.err());
        CliRun b = distill(student, two, "local[2]", "--steps", "5");
        assertEquals(0, b.exitCode(), b.err());
        Map<String, float[]> p1 = trainedTensors(one), p2 = trainedTensors(two), p0 = trainedTensors(student);
        assertEquals(p1.keySet(), p2.keySet());
        double maxDiff = 0;
        int moved = 0;
        for (String name : p1.keySet()) {
            float[] x = p1.get(name), y = p2.get(name), start = p0.get(name);
            for (int i = 0; i < x.length; i++) {
                double scale = Math.max(1e-3, Math.abs(x[i]));
                maxDiff = Math.max(maxDiff, Math.abs(x[i] - y[i]) / scale);
                moved += x[i] != start[i] ? 1 : 0;
            }
        }
        assertTrue(maxDiff < 1e-5, "largest relative difference " + maxDiff);
        assertTrue(moved > 0, "training moved the parameters");
    }

    @Test
    void theRealTeacherAndStudentLearnTheSameOnOneOrTwoPartitions() {
        System.clearProperty(DistillCommand.STUDENT_FACTORY);
        Path one = tmp.resolve("one"), two = tmp.resolve("two");
        String[] options = {"--steps", "2", "--height", "32", "--width", "32", "--learning-rate", "1e-3"};
        CliRun a = distill(student, one, "local[1]", options);
        assertEquals(0, a.exitCode(), a.err());
        CliRun b = distill(student, two, "local[2]", options);
        assertEquals(0, b.exitCode(), b.err());
        Map<String, float[]> p1 = trainedTensors(one), p2 = trainedTensors(two), p0 = trainedTensors(student);
        int moved = 0, values = 0;
        for (String name : p0.keySet()) {
            float[] x = p1.get(name), y = p2.get(name), start = p0.get(name);
            for (int i = 0; i < x.length; i++) {
                // two Adam steps of lr 1e-3 move a value by up to 2e-3; another summation order of the gradients
                // changes it by float rounding only (2e-8 measured on the tiny model)
                double tolerance = 4 * Math.ulp(Math.abs(x[i])) + 1e-6;
                assertEquals(x[i], y[i], tolerance, name + "[" + i + "]");
                moved += x[i] != start[i] ? 1 : 0;
                values++;
            }
        }
        assertTrue(moved > values / 2, moved + " of " + values + " values moved");
        try (TensorSource s = TensorSources.open(transformer(one))) {
            double first = Double.parseDouble(s.metadata().get("distill_first_loss"));
            assertTrue(first > 0 && Double.isFinite(first), "loss " + first);
        }
    }

    @Test
    void aKilledRunResumesToTheSameParametersAsAnUninterruptedOne() throws IOException {
        Path straight = tmp.resolve("straight"), killed = tmp.resolve("killed");
        CliRun a = distill(student, straight, "local[2]", "--steps", "7", "--checkpoint-every", "3");
        assertEquals(0, a.exitCode(), a.err());

        // sample 0 of step 5 (0-based step 4) has noise seed SEED + 4 * BATCH
        System.setProperty(FakeStudentFactory.FAIL_AT_SEED, Long.toString(SEED + 4L * BATCH));
        CliRun b = distill(student, killed, "local[2]", "--steps", "7", "--checkpoint-every", "3");
        assertEquals(1, b.exitCode(), b.err());
        assertTrue(b.err().contains("step 5 of 7 failed"), b.err());
        assertTrue(b.err().contains("after step 3"), b.err());
        assertTrue(b.err().contains("the fake student fails on purpose"), b.err());
        assertFalse(Files.exists(killed.resolve("flux1-dev.safetensors")), "no snapshot from a failed run");
        assertEquals(
                3,
                DistillCheckpoint.latest(killed.resolve("checkpoints"))
                        .orElseThrow()
                        .step());
        System.clearProperty(FakeStudentFactory.FAIL_AT_SEED);

        CliRun again = distill(student, killed, "local[2]", "--steps", "7", "--checkpoint-every", "3");
        assertEquals(2, again.exitCode(), again.err());
        assertTrue(again.err().contains("exists: --resume continues"), again.err());

        CliRun otherOptions = distill(
                student,
                killed,
                "local[2]",
                "--steps",
                "7",
                "--checkpoint-every",
                "3",
                "--resume",
                "--trainable",
                "scales");
        assertEquals(1, otherOptions.exitCode(), otherOptions.err());
        assertTrue(otherOptions.err().contains("trainable = scales,biases, this run has scales"), otherOptions.err());

        CliRun resumed = distill(student, killed, "local[2]", "--steps", "7", "--checkpoint-every", "3", "--resume");
        assertEquals(0, resumed.exitCode(), resumed.err());
        assertTrue(resumed.err().contains("resuming after step 3"), resumed.err());
        assertFalse(resumed.err().contains("step 3/7"), resumed.err());
        assertTrue(resumed.err().contains("step 4/7"), resumed.err());

        Map<String, float[]> x = trainedTensors(straight), y = trainedTensors(killed);
        assertEquals(x.keySet(), y.keySet());
        for (String name : x.keySet()) {
            assertArrayEquals(x.get(name), y.get(name), name);
        }
        try (TensorSource s = TensorSources.open(transformer(straight));
                TensorSource k = TensorSources.open(transformer(killed))) {
            for (String key : List.of("distill_first_loss", "distill_last_loss", "distill_samples")) {
                assertEquals(s.metadata().get(key), k.metadata().get(key), key);
            }
        }
    }

    @Test
    void aNonFiniteLossStopsTheRunNamingTheStepAndKeepsTheLastCheckpoint() {
        Path out = tmp.resolve("nan");
        System.setProperty(FakeStudentFactory.NAN_AT_SEED, Long.toString(SEED + 2L * BATCH + 1));
        CliRun run = distill(student, out, "local[1]", "--steps", "6", "--checkpoint-every", "2");
        assertEquals(1, run.exitCode(), run.err());
        assertTrue(run.err().contains("fluxbatch: error: step 3 of 6: the loss is NaN"), run.err());
        assertTrue(run.err().contains("step-000002.safetensors"), run.err());
        assertEquals(
                2,
                DistillCheckpoint.latest(out.resolve("checkpoints"))
                        .orElseThrow()
                        .step());
        assertFalse(Files.exists(out.resolve("flux1-dev.safetensors")));
    }

    @Test
    void refusesBadInputBeforeAnyWork() throws IOException {
        int loads = StudentEngines.jvm().loads();
        Path out = tmp.resolve("out");
        String[][] usage = {
            {"--steps", "0"}, {"--steps 0", "--steps is 0, expected >= 1"},
            {"--batch-size", "0"}, {"", "--batch-size is 0, expected >= 1"},
            {"--checkpoint-every", "0"}, {"", "--checkpoint-every is 0"},
            {"--learning-rate", "0"}, {"", "--learning-rate is 0.0, expected a finite number > 0"},
            {"--learning-rate", "-1e-3"}, {"", "--learning-rate is -0.001"},
            {"--learning-rate", "NaN"}, {"", "--learning-rate is NaN"},
            {"--learning-rate", "Infinity"}, {"", "--learning-rate is Infinity"},
            {"--trainable", "weights"}, {"", "--trainable 'weights' is not a list of trainable parameters"},
            {"--trainable", "scales,scales"}, {"", "('scales' twice)"},
            {"--height", "40"}, {"", "--height is 40, expected a multiple of 16"},
            {"--seed", "-1"}, {"", "--seed is -1"},
            {"--seed", Long.toString(Long.MAX_VALUE - 5)}, {"", "needs noise seeds past"},
            {"--resume", "--overwrite"}, {"", "give one of them"},
            {"--resume"}, {"", "does not exist, so there is no run to continue"},
        };
        for (int i = 0; i < usage.length; i += 2) {
            List<String> args = new ArrayList<>(List.of(usage[i]));
            if (!args.contains("--steps")) {
                args.addAll(List.of("--steps", "2"));
            }
            CliRun run = distill(student, out, "local[1]", args.toArray(String[]::new));
            assertEquals(2, run.exitCode(), Arrays.toString(usage[i]) + ": " + run.err());
            assertTrue(run.err().contains(usage[i + 1][1]), Arrays.toString(usage[i]) + ": " + run.err());
            assertFalse(Files.exists(out), Arrays.toString(usage[i]) + " created the output");
        }

        CliRun fullPrecision = distill(Golden.path("flux-tiny-dev"), out, "local[1]", "--steps", "2");
        assertEquals(2, fullPrecision.exitCode(), fullPrecision.err());
        assertTrue(fullPrecision.err().contains("has no ternary layers (none)"), fullPrecision.err());

        Path schnell = tmp.resolve("q-schnell");
        assertEquals(
                0,
                CliRun.of(
                                "quantize",
                                "--model",
                                Golden.path("flux-tiny-schnell").toString(),
                                "--output",
                                schnell.toString())
                        .exitCode());
        CliRun otherModel = distill(schnell, out, "local[1]", "--steps", "2");
        assertEquals(2, otherModel.exitCode(), otherModel.err());
        assertTrue(otherModel.err().contains("is not a quantized snapshot of --model: "), otherModel.err());

        Path relabelled = copyWithSource(student, tmp.resolve("q-other"), "0".repeat(64));
        CliRun otherSource = distill(relabelled, out, "local[1]", "--steps", "2");
        assertEquals(2, otherSource.exitCode(), otherSource.err());
        assertTrue(otherSource.err().contains("was not made from --model"), otherSource.err());
        assertTrue(otherSource.err().contains("source_sha256 is " + "0".repeat(64)), otherSource.err());

        Files.createDirectories(out);
        CliRun exists = distill(student, out, "local[1]", "--steps", "2");
        assertEquals(2, exists.exitCode(), exists.err());
        assertTrue(exists.err().contains("exists: --resume continues"), exists.err());
        CliRun notOurs = distill(student, out, "local[1]", "--steps", "2", "--overwrite");
        assertEquals(2, notOurs.exitCode(), notOurs.err());
        assertTrue(notOurs.err().contains("was not made by fluxbatch"), notOurs.err());
        CliRun inside = distill(student, student.resolve("sub"), "local[1]", "--steps", "2");
        assertEquals(2, inside.exitCode(), inside.err());
        assertTrue(inside.err().contains("is inside --quantized"), inside.err());

        try (Stream<Path> s = Files.list(out)) {
            assertEquals(0, s.count(), "nothing written");
        }
        assertEquals(loads, StudentEngines.jvm().loads(), "no teacher or student was loaded");
    }

    /** A copy of snapshot {@code from} whose checkpoint records another source. */
    private static Path copyWithSource(Path from, Path to, String sha) throws IOException {
        Files.createDirectories(to);
        try (Stream<Path> s = Files.walk(from)) {
            for (Path p : s.toList()) {
                Path dst = to.resolve(from.relativize(p).toString());
                if (Files.isDirectory(p)) {
                    Files.createDirectories(dst);
                } else if (!p.equals(transformer(from))) {
                    Files.copy(p, dst);
                }
            }
        }
        try (TensorSource in = TensorSources.open(transformer(from))) {
            SafetensorsWriter w = new SafetensorsWriter();
            in.metadata().forEach(w::metadata);
            w.metadata(TernaryFormat.KEY_SOURCE_SHA256, sha);
            for (String name : in.names()) {
                w.add(name, in.info(name).dtype(), in.info(name).shape(), ByteBuffer.wrap(bytes(in, name)));
            }
            w.write(to.resolve(transformer(from).getFileName().toString()));
        }
        return to;
    }
}
