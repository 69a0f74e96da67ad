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
        for (boolean gram : new boolean[] {true, false}) {
            ActivationRecorder recorder = new ActivationRecorder(gram, layer -> true);
            FluxPipeline p = FluxPipeline.load(Golden.path("flux-tiny-dev"), new CpuBackend(), recorder);
            CalibrationStats s = new CalibrationRun(p, recorder).record(List.of(p.embed("a red circle on the left")),
                    new long[] {1}, new GenerationParams(32, 32, 2, 3.5f), step -> true);
            CalibrationFile.write(s, Map.of("model", "flux-tiny-dev"), stats.resolve(gram ? "gram.safetensors" : "diag.safetensors"));
        }
    }

    @Test
    void calibrationWithoutAMethodUsesGptqAndRecordsTheStatisticsChecksum() {
        Path q = tmp.resolve("q");
        Path file = stats.resolve("gram.safetensors");
        CliRun run = CliRun.of("quantize", "--model", Golden.path("flux-tiny-dev").toString(), "--calibration",
                file.toString(), "--output", q.toString());
        assertEquals(0, run.exitCode(), run.err());
        try (TensorSource t = SafetensorsFile.open(q.resolve("flux1-dev.safetensors"))) {
            Map<String, String> meta = t.metadata();
            assertEquals("gptq", meta.get(TernaryFormat.KEY_METHOD));
            assertEquals("sha256:" + Sha256.ofFile(file), meta.get(TernaryFormat.KEY_CALIBRATION));
            assertEquals("flux-tiny-dev", meta.get("calibration_model"));
            assertEquals("F32", t.info("double_blocks.0.img_attn.qkv.bias").dtype().name(), "the shifted bias");
            long ternary = t.names().stream().filter(n -> n.endsWith(".weight_scale")).count();
            long blockWeights = t.names().stream().filter(n -> TernaryFormat.isQuantized(n, new long[2])).count();
            assertEquals(blockWeights, ternary, "every block weight is ternary");
        }
        run = CliRun.of("generate", "--model", q.toString(), "--prompt", "a blue square", "--steps", "2", "--height",
                "32", "--width", "32", "--output", tmp.resolve("images").toString());
        assertEquals(0, run.exitCode(), run.err());
    }

    @Test
    void refitReadsStatisticsWithoutTheGramMatrixAndGptqRefusesThem() {
        Path diag = stats.resolve("diag.safetensors");
        CliRun run = CliRun.of("quantize", "--model", Golden.path("flux-tiny-dev").toString(), "--calibration",
                diag.toString(), "--method", "refit", "--output", tmp.resolve("refit").toString());
        assertEquals(0, run.exitCode(), run.err());
        run = CliRun.of("quantize", "--model", Golden.path("flux-tiny-dev").toString(), "--calibration",
                diag.toString(), "--method", "gptq", "--output", tmp.resolve("gptq").toString());
        assertEquals(1, run.exitCode());
        assertTrue(run.err().contains("needs the Gram matrix") && run.err().contains("layer double_blocks.0")
                && run.err().contains("--gram"), run.err());
        assertTrue(Files.notExists(tmp.resolve("gptq")), "nothing is left behind");
    }

    @Test
    void aCalibratedMethodWithoutStatisticsIsAUsageError() {
        CliRun run = CliRun.of("quantize", "--model", Golden.path("flux-tiny-dev").toString(), "--method", "refit",
                "--output", tmp.resolve("x").toString());
        assertEquals(2, run.exitCode());
        assertTrue(run.err().contains("--method refit needs --calibration"), run.err());
    }

    @Test
    void statisticsOfAnotherModelOrATruncatedFileAreRefusedNamingTheLayer() throws IOException {
        CliRun run = CliRun.of("quantize", "--model", Golden.path("flux-tiny-schnell").toString(), "--calibration",
                stats.resolve("gram.safetensors").toString(), "--output", tmp.resolve("other").toString());
        assertEquals(1, run.exitCode());
        assertTrue(run.err().contains("layer double_blocks.0.img_attn.proj") && run.err().contains("another model"),
                run.err());
        Path truncated = tmp.resolve("truncated.safetensors");
        byte[] all = Files.readAllBytes(stats.resolve("gram.safetensors"));
        Files.write(truncated, Arrays.copyOf(all, all.length / 2));
        run = CliRun.of("quantize", "--model", Golden.path("flux-tiny-dev").toString(), "--calibration",
                truncated.toString(), "--output", tmp.resolve("t").toString());
        assertEquals(1, run.exitCode());
        assertTrue(run.err().contains(truncated.toString()), run.err());
    }
}
