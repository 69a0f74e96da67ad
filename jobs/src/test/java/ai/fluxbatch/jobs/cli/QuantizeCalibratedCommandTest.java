package ai.fluxbatch.jobs.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.fluxbatch.kernel.cpu.CpuBackend;
import ai.fluxbatch.model.Golden;
import ai.fluxbatch.model.Sha256;
import ai.fluxbatch.model.calib.ActivationRecorder;
import ai.fluxbatch.model.calib.CalibrationFile;
import ai.fluxbatch.model.calib.CalibrationRun;
import ai.fluxbatch.model.calib.CalibrationStats;
import ai.fluxbatch.model.pipeline.FluxPipeline;
import ai.fluxbatch.model.pipeline.GenerationParams;
import ai.fluxbatch.model.quant.TernaryFormat;
import ai.fluxbatch.model.safetensors.SafetensorsFile;
import ai.fluxbatch.model.safetensors.TensorSource;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** {@code fluxbatch quantize --calibration}: the calibrated methods, their metadata, and statistics that do not fit. */
class QuantizeCalibratedCommandTest {
    @TempDir
    static Path stats;

    @TempDir
    Path tmp;

    @BeforeAll
    static void recordStatistics() {
        record("gram.safetensors", true, layer -> true);
        record("diag.safetensors", false, layer -> true);
        record("double.safetensors", true, layer -> layer.startsWith("double_blocks."));
        record("single.safetensors", true, layer -> layer.startsWith("single_blocks."));
    }

    private static void record(String file, boolean gram, java.util.function.Predicate<String> layers) {
        ActivationRecorder recorder = new ActivationRecorder(gram, layers);
        FluxPipeline p = FluxPipeline.load(Golden.path("flux-tiny-dev"), new CpuBackend(), recorder);
        CalibrationStats s = new CalibrationRun(p, recorder)
                .record(
                        List.of(p.embed("a red circle on the left")),
                        new long[] {1},
                        new GenerationParams(32, 32, 2, 3.5f),
                        step -> true);
        CalibrationFile.write(s, Map.of("model", "flux-tiny-dev"), stats.resolve(file));
    }

    @Test
    void statisticsOfSeparateLayerRunsAreMergedAndOneAloneIsNotEnough() throws IOException {
        String model = Golden.path("flux-tiny-dev").toString();
        CliRun run = CliRun.of(
                "quantize",
                "--model",
                model,
                "--calibration",
                stats.resolve("double.safetensors") + "," + stats.resolve("single.safetensors"),
                "--output",
                tmp.resolve("both").toString());
        assertEquals(0, run.exitCode(), run.err());
        try (TensorSource t = SafetensorsFile.open(tmp.resolve("both/flux1-dev.safetensors"))) {
            assertEquals("2", t.metadata().get("calibration_parts"));
            assertEquals("double.safetensors,single.safetensors", t.metadata().get("calibration_file"));
        }
        run = CliRun.of(
                "quantize",
                "--model",
                model,
                "--calibration",
                stats.resolve("double.safetensors").toString(),
                "--output",
                tmp.resolve("half").toString());
        assertEquals(1, run.exitCode());
        assertTrue(run.err().contains("nothing for layer single_blocks.0"), run.err());
        run = CliRun.of(
                "quantize",
                "--model",
                model,
                "--method",
                "refit",
                "--calibration",
                stats.resolve("diag.safetensors").toString(),
                "--calibration",
                stats.resolve("gram.safetensors").toString(),
                "--output",
                tmp.resolve("mixed").toString());
        assertEquals(1, run.exitCode());
        assertTrue(run.err().contains("cannot merge calibration statistics"), run.err());
    }

    @Test
    void calibrationWithoutAMethodUsesGptqAndRecordsTheStatisticsChecksum() {
        Path q = tmp.resolve("q");
        Path file = stats.resolve("gram.safetensors");
        CliRun run = CliRun.of(
                "quantize",
                "--model",
                Golden.path("flux-tiny-dev").toString(),
                "--calibration",
                file.toString(),
                "--output",
                q.toString());
        assertEquals(0, run.exitCode(), run.err());
        try (TensorSource t = SafetensorsFile.open(q.resolve("flux1-dev.safetensors"))) {
            Map<String, String> meta = t.metadata();
            assertEquals("gptq", meta.get(TernaryFormat.KEY_METHOD));
            assertEquals("sha256:" + Sha256.ofFile(file), meta.get(TernaryFormat.KEY_CALIBRATION));
            assertEquals("flux-tiny-dev", meta.get("calibration_model"));
            assertEquals(
                    "F32", t.info("double_blocks.0.img_attn.qkv.bias").dtype().name(), "the shifted bias");
            long ternary =
                    t.names().stream().filter(n -> n.endsWith(".weight_scale")).count();
            long blockWeights = t.names().stream()
                    .filter(n -> TernaryFormat.isQuantized(n, new long[2]))
                    .count();
            assertEquals(blockWeights, ternary, "every block weight is ternary");
        }
        run = CliRun.of(
                "generate",
                "--model",
                q.toString(),
                "--prompt",
                "a blue square",
                "--steps",
                "2",
                "--height",
                "32",
                "--width",
                "32",
                "--output",
                tmp.resolve("images").toString());
        assertEquals(0, run.exitCode(), run.err());
    }

    @Test
    void refitReadsStatisticsWithoutTheGramMatrixAndGptqRefusesThem() {
        Path diag = stats.resolve("diag.safetensors");
        CliRun run = CliRun.of(
                "quantize",
                "--model",
                Golden.path("flux-tiny-dev").toString(),
                "--calibration",
                diag.toString(),
                "--method",
                "refit",
                "--output",
                tmp.resolve("refit").toString());
        assertEquals(0, run.exitCode(), run.err());
        run = CliRun.of(
                "quantize",
                "--model",
                Golden.path("flux-tiny-dev").toString(),
                "--calibration",
                diag.toString(),
                "--method",
                "gptq",
                "--output",
                tmp.resolve("gptq").toString());
        assertEquals(1, run.exitCode());
        assertTrue(
                run.err().contains("needs the Gram matrix")
                        && run.err().contains("layer double_blocks.0")
                        && run.err().contains("--gram"),
                run.err());
        assertTrue(Files.notExists(tmp.resolve("gptq")), "nothing is left behind");
    }

    @Test
    void layersAreQuantizedInPassesWithOneMethodAndTheCalibrationsAreAllRecorded() {
        String model = Golden.path("flux-tiny-dev").toString();
        Path first = tmp.resolve("first"), second = tmp.resolve("second");
        String dbl = stats.resolve("double.safetensors").toString(),
                sgl = stats.resolve("single.safetensors").toString();
        CliRun run = CliRun.of(
                "quantize",
                "--model",
                model,
                "--calibration",
                dbl,
                "--layers",
                "double_blocks\\..*",
                "--output",
                first.toString());
        assertEquals(0, run.exitCode(), run.err());
        try (TensorSource t = SafetensorsFile.open(first.resolve("flux1-dev.safetensors"))) {
            assertTrue(t.contains("double_blocks.0.img_mlp.0.weight_scale"));
            assertTrue(!t.contains("single_blocks.0.linear1.weight_scale"), "single blocks stay full precision");
        }
        run = CliRun.of(
                "quantize",
                "--model",
                first.toString(),
                "--calibration",
                sgl,
                "--method",
                "refit",
                "--output",
                second.toString());
        assertEquals(1, run.exitCode());
        assertTrue(run.err().contains("partly quantized with method gptq"), run.err());
        run = CliRun.of("quantize", "--model", first.toString(), "--calibration", sgl, "--output", second.toString());
        assertEquals(0, run.exitCode(), run.err());
        try (TensorSource t = SafetensorsFile.open(second.resolve("flux1-dev.safetensors"))) {
            assertTrue(t.contains("single_blocks.0.linear1.weight_scale"));
            assertEquals(
                    "sha256:" + Sha256.ofFile(Path.of(dbl)) + ";sha256:" + Sha256.ofFile(Path.of(sgl)),
                    t.metadata().get(TernaryFormat.KEY_CALIBRATION));
            assertEquals("flux1-dev.safetensors", t.metadata().get(TernaryFormat.KEY_SOURCE));
        }
        run = CliRun.of(
                "quantize",
                "--model",
                second.toString(),
                "--calibration",
                sgl,
                "--output",
                tmp.resolve("third").toString());
        assertEquals(1, run.exitCode());
        assertTrue(run.err().contains("is already quantized"), run.err());
    }

    @Test
    void aCalibratedMethodWithoutStatisticsIsAUsageError() {
        CliRun run = CliRun.of(
                "quantize",
                "--model",
                Golden.path("flux-tiny-dev").toString(),
                "--method",
                "refit",
                "--output",
                tmp.resolve("x").toString());
        assertEquals(2, run.exitCode());
        assertTrue(run.err().contains("--method refit needs --calibration"), run.err());
    }

    @Test
    void statisticsOfAnotherModelOrATruncatedFileAreRefusedNamingTheLayer() throws IOException {
        CliRun run = CliRun.of(
                "quantize",
                "--model",
                Golden.path("flux-tiny-schnell").toString(),
                "--calibration",
                stats.resolve("gram.safetensors").toString(),
                "--output",
                tmp.resolve("other").toString());
        assertEquals(1, run.exitCode());
        assertTrue(
                run.err().contains("layer double_blocks.0.img_attn.proj")
                        && run.err().contains("another model"),
                run.err());
        Path truncated = tmp.resolve("truncated.safetensors");
        byte[] all = Files.readAllBytes(stats.resolve("gram.safetensors"));
        Files.write(truncated, Arrays.copyOf(all, all.length / 2));
        run = CliRun.of(
                "quantize",
                "--model",
                Golden.path("flux-tiny-dev").toString(),
                "--calibration",
                truncated.toString(),
                "--output",
                tmp.resolve("t").toString());
        assertEquals(1, run.exitCode());
        assertTrue(run.err().contains(truncated.toString()), run.err());
    }
}
