package ai.fluxbatch.jobs.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.fluxbatch.model.Golden;
import ai.fluxbatch.model.safetensors.SafetensorsFile;
import ai.fluxbatch.model.safetensors.TensorSource;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/**
 * {@code fluxbatch debug distill-grad} end to end: {@code quantize} (absmean) then the gradients of both golden cases
 * of both tiny models, every tensor within 1e-4 relative L2 of the reference's float64 autograd.
 */
class DebugDistillGradCommandTest {
    @TempDir
    Path tmp;

    @ParameterizedTest(name = "{0} distill-grad-{1}")
    @CsvSource({"flux-tiny-dev,1", "flux-tiny-dev,2", "flux-tiny-schnell,1", "flux-tiny-schnell,2"})
    void matchesTheReference(String model, String index) {
        Path quantized = tmp.resolve("q");
        CliRun q = CliRun.of("quantize", "--model", Golden.path(model).toString(), "--output", quantized.toString());
        assertEquals(0, q.exitCode(), q.err());
        Path out = tmp.resolve("grads.safetensors");
        CliRun run = CliRun.of(
                "debug",
                "distill-grad",
                "--model",
                Golden.path(model).toString(),
                "--quantized",
                quantized.toString(),
                "--input",
                Golden.path("cases", model, "forward-" + index + ".safetensors").toString(),
                "--output",
                out.toString());
        assertEquals(0, run.exitCode(), run.err());
        try (TensorSource actual = SafetensorsFile.open(out);
                TensorSource golden =
                        SafetensorsFile.open(Golden.path("cases", model, "distill-grad-" + index + ".safetensors"))) {
            double lossErr = Math.abs(actual.floats("loss")[0] - golden.floats("loss")[0]) / golden.floats("loss")[0];
            assertTrue(lossErr < 1e-4, "loss: relative error " + lossErr);
            int compared = 0;
            for (String name : golden.names()) {
                if (name.endsWith(".grad")) {
                    assertTrue(actual.contains(name), "missing " + name);
                    double err = Golden.relL2(actual.floats(name), golden.floats(name));
                    assertTrue(err < 1e-4, name + ": relative L2 " + err);
                    compared++;
                }
            }
            assertEquals(2 * Integer.parseInt(golden.metadata().get("layers")), compared);
            assertEquals(compared + 1, actual.names().size(), "loss and the gradients, nothing else");
        }
    }

    @Test
    void refusesAFullPrecisionStudent() {
        Path out = tmp.resolve("grads.safetensors");
        CliRun run = CliRun.of(
                "debug",
                "distill-grad",
                "--model",
                Golden.path("flux-tiny-dev").toString(),
                "--quantized",
                Golden.path("flux-tiny-dev").toString(),
                "--input",
                Golden.path("cases", "flux-tiny-dev", "forward-1.safetensors").toString(),
                "--output",
                out.toString());
        assertEquals(2, run.exitCode(), run.err());
        assertTrue(run.err().contains("no ternary layers"), run.err());
        assertFalse(Files.exists(out));
    }
}
