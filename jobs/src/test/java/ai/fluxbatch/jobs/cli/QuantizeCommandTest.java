package ai.fluxbatch.jobs.cli;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.fluxbatch.model.Golden;
import ai.fluxbatch.model.quant.TernaryFormat;
import ai.fluxbatch.model.safetensors.DType;
import ai.fluxbatch.model.safetensors.SafetensorsFile;
import ai.fluxbatch.model.safetensors.TensorSource;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Locale;
import java.util.Map;
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
    void quantizeThenDebugTransformerReproducesTheReference(String model) throws IOException {
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
            List<String> files = QuantizedOutputs.files(q);
            assertFalse(files.stream().anyMatch(f -> f.contains("-of-000")), "no full-precision shard: " + files);
            String config = Files.readString(q.resolve("transformer/config.json"));
            assertTrue(
                    config.contains("\"quantization_config\"") && config.contains("single_transformer_blocks"), config);
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
    void theOutputHoldsOnlyWhatItRunsWithAQuantizationConfigAndACardTheHubReads() throws IOException {
        Path q = tmp.resolve("q");
        CliRun run =
                CliRun.of("quantize", "--model", Golden.path("flux-tiny-dev").toString(), "--output", q.toString());
        assertEquals(0, run.exitCode(), run.err());
        assertEquals(
                List.of(
                        "README.md",
                        OutputFolders.MARKER,
                        "ae.safetensors",
                        "flux1-dev.safetensors",
                        "model_index.json",
                        "scheduler/scheduler_config.json",
                        "text_encoder/config.json",
                        "text_encoder/model.safetensors",
                        "text_encoder_2/config.json",
                        "text_encoder_2/model.safetensors",
                        "tokenizer/merges.txt",
                        "tokenizer/vocab.json",
                        "tokenizer_2/spiece.model",
                        "transformer/config.json",
                        "vae/config.json"),
                QuantizedOutputs.files(q));
        assertTrue(
                run.err().contains("quantize: left out: flux1-dev.safetensors (the full-precision transformer)\n"),
                run.err());

        JsonNode config = QuantizedOutputs.quantizationConfig(q);
        try (TensorSource t = SafetensorsFile.open(q.resolve("flux1-dev.safetensors"))) {
            Map<String, String> meta = t.metadata();
            assertEquals(
                    meta.get(TernaryFormat.KEY_FORMAT),
                    config.path("quant_method").asText());
            assertEquals(
                    meta.get(TernaryFormat.KEY_VERSION),
                    config.path("format_version").asText());
            assertEquals(
                    meta.get(TernaryFormat.KEY_METHOD), config.path("method").asText());
            assertEquals(
                    meta.get(TernaryFormat.KEY_PACKING), config.path("packing").asText());
        }

        QuantizedOutputs.Card card = QuantizedOutputs.Card.of(q);
        assertEquals("fluxbatch", card.frontMatter().path("library_name").asText());
        assertEquals("text-to-image", card.frontMatter().path("pipeline_tag").asText());
        assertTrue(
                card.tags().containsAll(List.of("flux", "1.58-bit", "ternary", "text-to-image")),
                card.tags().toString());
        assertTrue(card.frontMatter().path("base_model").isMissingNode(), "no repository known for the golden folder");
        assertTrue(card.frontMatter().path("license").isMissingNode(), "the source has no card to take one from");
        assertTrue(card.body().contains("- `absmean`: "), card.body());
        assertTrue(card.body().contains("## Calibration\n\nNone: `absmean` reads the weights alone."), card.body());
        assertTrue(
                card.body()
                        .contains("- model: `"
                                + Golden.path("flux-tiny-dev").toAbsolutePath().normalize() + "`"),
                card.body());
        long quantized = Files.size(q.resolve("flux1-dev.safetensors"));
        long source = Files.size(Golden.path("flux-tiny-dev", "flux1-dev.safetensors"));
        assertTrue(card.body().contains(String.format(Locale.ROOT, "%,d", quantized)), card.body());
        assertTrue(card.body().contains(String.format(Locale.ROOT, "%,d", source)), card.body());
        assertTrue(card.body().contains("quality: not measured; run `fluxbatch evaluate"), card.body());
    }

    @Test
    void theCardNamesTheRepositoryOfACachedSnapshotAndKeepsTheSourcesLicence() throws IOException {
        Path src = tmp.resolve("hub/models--black-forest-labs--FLUX.1-dev/snapshots/0ef5fff789c8");
        try (Stream<Path> s = Files.walk(Golden.path("flux-tiny-dev"))) {
            for (Path p : s.toList()) {
                Path dst =
                        src.resolve(Golden.path("flux-tiny-dev").relativize(p).toString());
                if (Files.isDirectory(p)) {
                    Files.createDirectories(dst);
                } else {
                    Files.copy(p, dst);
                }
            }
        }
        Files.writeString(
                src.resolve("README.md"),
                "---\nlanguage:\n- en\nlicense: other\nlicense_name: 'flux-1-dev: non-commercial'\n"
                        + "license_link: LICENSE.md\n---\n\n# FLUX.1 [dev]\n");
        Files.writeString(src.resolve("LICENSE.md"), "the licence\n");
        Files.writeString(src.resolve(".gitattributes"), "*.safetensors filter=lfs\n");
        Path q = tmp.resolve("q");
        CliRun run = CliRun.of("quantize", "--model", src.toString(), "--output", q.toString());
        assertEquals(0, run.exitCode(), run.err());
        assertTrue(
                run.err()
                        .contains("quantize: left out: flux1-dev.safetensors (the full-precision transformer);"
                                + " .gitattributes, README.md (not needed to run it)\n"),
                run.err());
        assertEquals("the licence\n", Files.readString(q.resolve("LICENSE.md")));
        JsonNode front = QuantizedOutputs.Card.of(q).frontMatter();
        assertEquals("black-forest-labs/FLUX.1-dev", front.path("base_model").asText());
        assertEquals("quantized", front.path("base_model_relation").asText());
        assertEquals("other", front.path("license").asText());
        assertEquals("flux-1-dev: non-commercial", front.path("license_name").asText());
        assertEquals("LICENSE.md", front.path("license_link").asText());
        assertTrue(front.path("language").isMissingNode(), "only the licence comes from the source card");
    }

    @Test
    void theCardStatesTheQualityOfAnEvaluationOfTheSameQuantizationOnly() throws IOException {
        Path model = Golden.path("flux-tiny-dev");
        Path first = tmp.resolve("first");
        assertEquals(
                0,
                CliRun.of("quantize", "--model", model.toString(), "--output", first.toString())
                        .exitCode());
        Path report = tmp.resolve("report");
        CliRun run = CliRun.of(
                "evaluate",
                "--reference",
                model.toString(),
                "--quantized",
                first.toString(),
                "--prompt",
                "a red circle on the left",
                "--steps",
                "2",
                "--height",
                "32",
                "--width",
                "32",
                "--output",
                report.toString());
        assertEquals(0, run.exitCode(), run.err());
        Path json = tmp.resolve("report.json");
        JsonNode measured =
                new ObjectMapper().readTree(json.toFile()).path("candidates").get(0);

        Path second = tmp.resolve("second");
        run = CliRun.of(
                "quantize",
                "--model",
                model.toString(),
                "--evaluation",
                json.toString(),
                "--output",
                second.toString());
        assertEquals(0, run.exitCode(), run.err());
        String body = QuantizedOutputs.Card.of(second).body();
        assertTrue(
                body.contains("Measured by `fluxbatch evaluate` against the full-precision source on 1 prompt ("),
                body);
        assertTrue(
                body.contains(String.format(
                        Locale.ROOT,
                        "| %.4g |",
                        measured.path("final_latent_rel_l2").asDouble())),
                body);
        assertTrue(
                body.contains(String.format(
                        Locale.ROOT, "%.2f dB", measured.path("psnr_db").asDouble())),
                body);
        assertFalse(body.contains("not measured"), body);

        // a partial quantization (other figures), or another model, is not what the report measured
        Path partial = tmp.resolve("partial");
        run = CliRun.of(
                "quantize",
                "--model",
                model.toString(),
                "--layers",
                "single_blocks\\..*",
                "--evaluation",
                json.toString(),
                "--output",
                partial.toString());
        assertEquals(1, run.exitCode(), run.err());
        assertTrue(
                run.err().contains("evaluation report " + json + " has 0 candidates quantized as this snapshot is"),
                run.err());
        assertFalse(run.err().contains("quantize: double_blocks"), "refused before any work: " + run.err());
        run = CliRun.of(
                "quantize",
                "--model",
                Golden.path("flux-tiny-schnell").toString(),
                "--evaluation",
                json.toString(),
                "--output",
                partial.toString());
        assertEquals(1, run.exitCode(), run.err());
        assertTrue(
                run.err()
                        .contains(
                                "was measured against " + model.toAbsolutePath().normalize()),
                run.err());
        assertFalse(Files.exists(partial));
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
