package ai.fluxbatch.jobs.cli;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.fluxbatch.model.Golden;
import ai.fluxbatch.model.safetensors.DType;
import ai.fluxbatch.model.safetensors.SafetensorsFile;
import ai.fluxbatch.model.safetensors.TensorSource;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/** {@code fluxbatch quantize}, then the quantized folder through debug transformer and generate. */
class QuantizeCommandTest {
    @TempDir
    Path tmp;

    @ParameterizedTest
    @ValueSource(strings = {"flux-tiny-dev", "flux-tiny-dev-diffusers", "flux-tiny-schnell-diffusers"})
    void quantizeThenDebugTransformerReproducesTheReference(String model) {
        Path q = tmp.resolve("q");
        CliRun run = CliRun.of("quantize", "--model", Golden.path(model).toString(), "--output", q.toString());
        assertEquals(0, run.exitCode(), run.err());
        assertTrue(run.err().contains("quantize: double_blocks.0") && run.err().contains("ETA"), run.err());
        Path out = tmp.resolve("out.safetensors");
        run = CliRun.of(
                "debug",
                "transformer",
                "--model",
                q.toString(),
                "--input",
                Golden.path("cases", base(model), "forward-1.safetensors").toString(),
                "--output",
                out.toString());
        assertEquals(0, run.exitCode(), run.err());
        if (!model.equals(base(model))) { // diffusers in, diffusers out
            assertTrue(Files.isRegularFile(q.resolve("transformer/diffusion_pytorch_model.safetensors")), model);
            try (TensorSource raw =
                    SafetensorsFile.open(q.resolve("transformer/diffusion_pytorch_model.safetensors"))) {
                assertTrue(
                        raw.contains("transformer_blocks.0.attn.to_q.weight_scale"),
                        raw.names().toString());
                assertEquals(
                        DType.U8,
                        raw.info("single_transformer_blocks.0.proj_mlp.weight").dtype());
                assertFalse(raw.names().stream().anyMatch(n -> n.startsWith("double_blocks")), model);
            }
        }
        try (TensorSource a = SafetensorsFile.open(out);
                TensorSource g = SafetensorsFile.open(Golden.path("cases", base(model), "quant-absmean.safetensors"))) {
            double err = Golden.relL2(a.floats("out"), g.floats("out"));
            assertTrue(err < 1e-4, "relative L2 " + err);
        }
    }

    private static String base(String model) {
        return model.replaceFirst("-diffusers$", "");
    }

    /** The quantized diffusers snapshot holds, under the reference names, the tensors the original layout gives. */
    @Test
    void theDiffusersLayoutQuantizesToTheSameTensorsAsTheOriginal() {
        Path a = tmp.resolve("original"), b = tmp.resolve("diffusers");
        assertEquals(
                0,
                CliRun.of("quantize", "--model", Golden.path("flux-tiny-dev").toString(), "--output", a.toString())
                        .exitCode());
        CliRun run = CliRun.of(
                "quantize", "--model", Golden.path("flux-tiny-dev-diffusers").toString(), "--output", b.toString());
        assertEquals(0, run.exitCode(), run.err());
        QuantizedOutputs.assertSameTensorsUnderReferenceNames(a, b);
    }

    @Test
    void generateRunsAQuantizedModelEndToEnd() throws IOException {
        Path q = tmp.resolve("q");
        assertEquals(
                0,
                CliRun.of("quantize", "--model", Golden.path("flux-tiny-dev").toString(), "--output", q.toString())
                        .exitCode());
        CliRun run = CliRun.of(
                "generate",
                "--model",
                q.toString(),
                "--prompt",
                "a photo of a cat",
                "--steps",
                "2",
                "--height",
                "32",
                "--width",
                "32",
                "--output",
                tmp.resolve("images").toString());
        assertEquals(0, run.exitCode(), run.err());
        try (Stream<Path> s = Files.list(tmp.resolve("images/images"))) {
            assertEquals(1, s.filter(p -> p.toString().endsWith(".png")).count());
        }
    }

    @Test
    void refusesAnExistingOutputAndAnUnknownMethod() throws IOException {
        Path exists = Files.createDirectories(tmp.resolve("exists"));
        CliRun run = CliRun.of(
                "quantize", "--model", Golden.path("flux-tiny-schnell").toString(), "--output", exists.toString());
        assertEquals(1, run.exitCode());
        assertTrue(run.err().contains("exists"), run.err());
        run = CliRun.of(
                "quantize",
                "--model",
                Golden.path("flux-tiny-schnell").toString(),
                "--output",
                tmp.resolve("x").toString(),
                "--method",
                "gptq9");
        assertEquals(2, run.exitCode());
        assertTrue(run.err().contains("--method is 'gptq9'"), run.err());
    }

    @Test
    void synthCheckpointFollowsTheLayoutAndQuantizes() throws IOException {
        ObjectMapper json = new ObjectMapper();
        ObjectNode layout = json.createObjectNode();
        ObjectNode tensors = layout.putObject("tensors");
        try (TensorSource s = SafetensorsFile.open(Golden.path("flux-tiny-dev", "flux1-dev.safetensors"))) {
            for (String name : s.names()) {
                tensors.putPOJO(name, s.info(name).shape());
            }
        }
        Path layoutFile = tmp.resolve("layout.json");
        json.writeValue(layoutFile.toFile(), layout);
        Path synth = tmp.resolve("synth");
        CliRun run = CliRun.of(
                "debug",
                "synth-checkpoint",
                "--layout",
                layoutFile.toString(),
                "--output",
                synth.toString(),
                "--axes",
                "4,6,6");
        assertEquals(0, run.exitCode(), run.err());
        try (TensorSource a = SafetensorsFile.open(synth.resolve("flux1-dev.safetensors"));
                TensorSource g = SafetensorsFile.open(Golden.path("flux-tiny-dev", "flux1-dev.safetensors"))) {
            assertEquals(g.names(), a.names());
            for (String name : g.names()) {
                assertArrayEquals(g.info(name).shape(), a.info(name).shape(), name);
            }
        }
        run = CliRun.of(
                "quantize",
                "--model",
                synth.toString(),
                "--output",
                tmp.resolve("synth-q").toString());
        assertEquals(0, run.exitCode(), run.err());
        run = CliRun.of(
                "debug",
                "transformer",
                "--model",
                tmp.resolve("synth-q").toString(),
                "--input",
                Golden.path("cases", "flux-tiny-dev", "forward-2.safetensors").toString(),
                "--output",
                tmp.resolve("o.safetensors").toString());
        assertEquals(0, run.exitCode(), run.err());
    }
}
