package ai.fluxbatch.model.quant;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.fluxbatch.kernel.cpu.CpuBackend;
import ai.fluxbatch.model.Golden;
import ai.fluxbatch.model.ModelException;
import ai.fluxbatch.model.flux.FluxTransformers;
import ai.fluxbatch.model.safetensors.TensorSource;
import ai.fluxbatch.model.safetensors.TensorSources;
import ai.fluxbatch.model.snapshot.FluxSnapshot;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import java.util.Map;
import java.util.regex.Pattern;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * What a quantized snapshot holds besides its transformer: only the source files it runs with (never a full-precision
 * transformer file, in either layout), a {@code transformer/config.json} whose {@code quantization_config} describes
 * the checkpoint, a model card; and what the loader makes of a {@code quantization_config}.
 */
class QuantizedSnapshotFilesTest {
    private static final QuantizeProgress QUIET = (g, d, t, s) -> {};
    private static final ObjectMapper JSON = new ObjectMapper();
    private static final CpuBackend CPU = new CpuBackend();

    @TempDir
    Path tmp;

    @AfterAll
    static void close() {
        CPU.close();
    }

    /** The files of flux-tiny-dev's quantized snapshot, README.md and the rewritten config included. */
    private static final List<String> TINY_DEV_OUTPUT = List.of(
            "README.md",
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
            "vae/config.json");

    @Test
    void theGoldenSnapshotGivesExactlyTheFilesItRunsWith() throws IOException {
        Path out = tmp.resolve("q");
        QuantizedSnapshotWriter.Written w =
                QuantizedSnapshotWriter.write(FluxSnapshot.open(Golden.path("flux-tiny-dev")), out, false, QUIET);
        assertEquals(TINY_DEV_OUTPUT, files(out));
        assertEquals("left out: flux1-dev.safetensors (the full-precision transformer)", w.leftOutLine());
        assertQuantized(out.resolve("flux1-dev.safetensors"));
    }

    @Test
    void unknownFilesAreLeftOutAndNamedTheLicenceAndTheCardsLicenceKept() throws IOException {
        // a Hugging Face cache's snapshot folder, with what a Hub repository holds beside the model
        Path src = tmp.resolve("hub/models--black-forest-labs--FLUX.1-dev/snapshots/0123abcd");
        copyTree(Golden.path("flux-tiny-dev"), src);
        Files.writeString(
                src.resolve("README.md"),
                "---\nlanguage:\n- en\nlicense: other\nlicense_name: flux-1-dev-non-commercial-license\n"
                        + "license_link: LICENSE.md\nextra_gated_prompt: \"By clicking: \\\"Agree\\\"\"\ntags:\n"
                        + "- text-to-image\n---\n\n# FLUX.1 [dev]\n");
        Files.writeString(src.resolve("LICENSE.md"), "FLUX.1 [dev] Non-Commercial License\n");
        Files.writeString(src.resolve(".gitattributes"), "*.safetensors filter=lfs\n");
        Files.write(src.resolve("dev_grid.jpg"), new byte[] {1, 2, 3});
        Files.createDirectories(src.resolve("samples"));
        Files.write(src.resolve("samples/a.png"), new byte[] {4});
        Files.writeString(src.resolve("transformer/notes.txt"), "x");
        Files.write(src.resolve("text_encoder/pytorch_model.bin"), new byte[] {5});

        Path out = tmp.resolve("q");
        QuantizedSnapshotWriter.Written w = QuantizedSnapshotWriter.write(FluxSnapshot.open(src), out, false, QUIET);
        List<String> expected = new ArrayList<>(TINY_DEV_OUTPUT);
        expected.add("LICENSE.md");
        expected.sort(null);
        assertEquals(expected, files(out));
        assertEquals(
                "left out: flux1-dev.safetensors (the full-precision transformer); .gitattributes, README.md,"
                        + " dev_grid.jpg, samples/ (1 file), text_encoder/pytorch_model.bin, transformer/notes.txt"
                        + " (not needed to run it)",
                w.leftOutLine());
        assertTrue(Files.isSameFile(src.resolve("ae.safetensors"), out.resolve("ae.safetensors")), "hard-linked");
        assertFalse(
                Files.isSameFile(src.resolve("transformer/config.json"), out.resolve("transformer/config.json")),
                "the config is written anew, never through a link into the source");

        Map<String, String> card = ModelCard.frontMatter(out.resolve("README.md"));
        assertEquals("black-forest-labs/FLUX.1-dev", card.get("base_model"), "from the cache folder's name");
        assertEquals("quantized", card.get("base_model_relation"));
        assertEquals("other", card.get("license"));
        assertEquals("flux-1-dev-non-commercial-license", card.get("license_name"));
        assertEquals("LICENSE.md", card.get("license_link"));
        assertEquals("fluxbatch", card.get("library_name"));
        assertFalse(card.containsKey("extra_gated_prompt"), "only the licence entries come from the source card");

        // quantized further (the rest of the layers): the card of a fluxbatch snapshot passes its base model on
        Path partial = tmp.resolve("partial");
        QuantizedSnapshotWriter.write(
                FluxSnapshot.open(src), partial, false, QUIET, QuantizeRecipe.ABSMEAN.forLayers("double_blocks\\..*"));
        Path rest = tmp.resolve("elsewhere/rest");
        QuantizedSnapshotWriter.write(
                FluxSnapshot.open(partial), rest, false, QUIET, QuantizeRecipe.ABSMEAN.forLayers("single_blocks\\..*"));
        Map<String, String> again = ModelCard.frontMatter(rest.resolve("README.md"));
        assertEquals("black-forest-labs/FLUX.1-dev", again.get("base_model"));
        assertEquals("flux-1-dev-non-commercial-license", again.get("license_name"));
        assertTrue(Files.isRegularFile(rest.resolve("LICENSE.md")));
    }

    @Test
    void aSnapshotWithBothLayoutsLeavesEveryFullPrecisionTransformerFileOut() throws IOException {
        Path src = tmp.resolve("both");
        copyTree(Golden.path("flux-tiny-dev"), src);
        Path diffusers = Golden.path("flux-tiny-dev-diffusers");
        List<String> added = new ArrayList<>();
        try (Stream<Path> s = Files.list(diffusers.resolve("transformer"))) {
            for (Path p : s.filter(p -> p.getFileName().toString().contains(".safetensors"))
                    .toList()) {
                Files.copy(p, src.resolve("transformer").resolve(p.getFileName().toString()));
                added.add("transformer/" + p.getFileName());
            }
        }
        assertEquals(3, added.size(), "two shards and their index: " + added);
        Files.copy(
                diffusers.resolve("vae/diffusion_pytorch_model.safetensors"),
                src.resolve("vae/diffusion_pytorch_model.safetensors"));

        FluxSnapshot source = FluxSnapshot.open(src);
        List<String> fullPrecision = relative(src, source.transformerWeightFiles());
        List<String> expectedFullPrecision = new ArrayList<>(added);
        expectedFullPrecision.add("flux1-dev.safetensors");
        expectedFullPrecision.sort(null);
        assertEquals(expectedFullPrecision, fullPrecision);

        Path out = tmp.resolve("q");
        QuantizedSnapshotWriter.Written w = QuantizedSnapshotWriter.write(source, out, false, QUIET);
        assertEquals(
                fullPrecision,
                w.files().transformer().stream().map(Path::toString).toList(),
                "every full-precision transformer file is left out, whichever layout was read");
        List<Path> transformers = FluxSnapshot.open(out).transformerWeightFiles();
        assertFalse(transformers.isEmpty());
        for (Path p : transformers) {
            if (!p.getFileName().toString().matches(".*-\\d{5}-of-\\d{5}\\.safetensors")) {
                assertQuantized(p); // a file or an index; shards carry the index's metadata
            }
        }
        for (String f : files(out)) {
            assertFalse(
                    f.startsWith("transformer/") && !f.equals("transformer/config.json") && !isQuantized(out, f),
                    f + " is a full-precision transformer file in the output");
        }
        assertEquals(
                -1,
                Files.mismatch(
                        src.resolve("vae/diffusion_pytorch_model.safetensors"),
                        out.resolve("vae/diffusion_pytorch_model.safetensors")),
                "the autoencoder in the diffusers layout comes along");
        assertTrue(Files.isRegularFile(out.resolve("ae.safetensors")));
        JsonNode q =
                JSON.readTree(out.resolve("transformer/config.json").toFile()).get(QuantizationConfig.KEY);
        assertNotNull(q, "transformer/config.json carries quantization_config");
    }

    @Test
    void theConfigDescribesTheCheckpointAndKeepsTheRestOfTheSources() throws IOException {
        Path src = Golden.path("flux-tiny-dev");
        Path out = tmp.resolve("q");
        QuantizedSnapshotWriter.write(
                FluxSnapshot.open(src), out, false, QUIET, QuantizeRecipe.ABSMEAN.forLayers("single_blocks\\..*"));
        JsonNode before = JSON.readTree(src.resolve("transformer/config.json").toFile());
        JsonNode after = JSON.readTree(out.resolve("transformer/config.json").toFile());
        for (Iterator<String> keys = before.fieldNames(); keys.hasNext(); ) {
            String k = keys.next();
            assertEquals(before.get(k), after.get(k), k + " kept as the source has it");
        }
        assertEquals(before.size() + 1, after.size(), "one key added");
        JsonNode q = after.get(QuantizationConfig.KEY);
        List<String> ternary = new ArrayList<>(), fullPrecision = new ArrayList<>();
        try (TensorSource t = TensorSources.open(out.resolve("flux1-dev.safetensors"))) {
            Map<String, String> meta = t.metadata();
            assertEquals(
                    meta.get(TernaryFormat.KEY_FORMAT), q.get("quant_method").asText());
            assertEquals(QuantizationConfig.QUANT_METHOD, q.get("quant_method").asText());
            assertEquals(
                    meta.get(TernaryFormat.KEY_VERSION), q.get("format_version").asText());
            assertEquals(meta.get(TernaryFormat.KEY_METHOD), q.get("method").asText());
            assertEquals("absmean", q.get("method").asText());
            assertEquals(meta.get(TernaryFormat.KEY_PACKING), q.get("packing").asText());
            assertEquals(
                    meta.get(TernaryFormat.KEY_CALIBRATION),
                    q.get("calibration").get("statistics").asText());
            assertEquals(1.58, q.get("bits").asDouble());
            for (String name : t.names()) {
                if (name.endsWith(".weight_scale")) {
                    ternary.add(name.substring(0, name.length() - ".weight_scale".length()));
                } else if (name.matches("(double|single)_blocks\\..*\\.weight")
                        && t.info(name).shape().length == 2
                        && !t.contains(name + "_scale")) {
                    fullPrecision.add(name.substring(0, name.length() - ".weight".length()));
                }
            }
        }
        assertTrue(!ternary.isEmpty() && !fullPrecision.isEmpty(), ternary + " / " + fullPrecision);
        assertTrue(ternary.stream().allMatch(l -> l.startsWith("single_blocks.")), ternary.toString());
        assertEquals(ternary.size(), q.get("quantized_modules").asInt());
        List<String> notConverted = new ArrayList<>();
        q.get("modules_to_not_convert").forEach(n -> notConverted.add(n.asText()));
        assertEquals(fullPrecision, notConverted);
        Pattern modules = Pattern.compile(q.get("modules").asText());
        for (String l : ternary) {
            assertTrue(modules.matcher(l).matches(), l + " matches " + modules);
        }
        assertFalse(modules.matcher("img_in").matches());
        assertFalse(modules.matcher("final_layer.linear").matches());
    }

    @Test
    void theLoaderRefusesAQuantizationConfigItCannotReadNamingTheFile() throws IOException {
        Path out = tmp.resolve("q");
        QuantizedSnapshotWriter.write(FluxSnapshot.open(Golden.path("flux-tiny-schnell")), out, false, QUIET);
        Path config = out.resolve("transformer/config.json");
        String good = Files.readString(config);
        FluxTransformers.load(FluxSnapshot.open(out), CPU); // as written, it loads

        assertRefused(out, good, "quant_method", "bitsandbytes", "'bitsandbytes', which fluxbatch does not read");
        assertRefused(out, good, "format_version", "2", "format_version is '2'");
        assertRefused(out, good, "method", "gptq", "method is 'gptq', but the transformer checkpoint");

        // a full-precision checkpoint with a config that says it is quantized
        Path full = tmp.resolve("full");
        copyTree(Golden.path("flux-tiny-schnell"), full);
        Files.copy(config, full.resolve("transformer/config.json"), StandardCopyOption.REPLACE_EXISTING);
        ModelException e =
                assertThrows(ModelException.class, () -> FluxTransformers.load(FluxSnapshot.open(full), CPU));
        assertTrue(
                e.getMessage()
                        .startsWith(full.resolve("transformer/config.json").toString()),
                e.getMessage());
        assertTrue(e.getMessage().contains("is full precision"), e.getMessage());
    }

    private static void assertRefused(Path snapshot, String good, String key, String value, String expected)
            throws IOException {
        Path config = snapshot.resolve("transformer/config.json");
        ObjectNode c = (ObjectNode) JSON.readTree(good);
        ((ObjectNode) c.get(QuantizationConfig.KEY)).put(key, value);
        Files.writeString(config, JSON.writeValueAsString(c));
        try {
            ModelException e = assertThrows(
                    ModelException.class, () -> FluxTransformers.load(FluxSnapshot.open(snapshot), CPU), key);
            assertTrue(e.getMessage().startsWith(config.toString()), "names the file: " + e.getMessage());
            assertTrue(e.getMessage().contains(expected), e.getMessage());
        } finally {
            Files.writeString(config, good);
        }
    }

    private static boolean isQuantized(Path folder, String file) {
        if (!file.endsWith(".safetensors") && !file.endsWith(".index.json")) {
            return false;
        }
        try (TensorSource t = TensorSources.open(folder.resolve(file))) {
            return QuantizationConfig.QUANT_METHOD.equals(t.metadata().get(TernaryFormat.KEY_FORMAT));
        }
    }

    private static void assertQuantized(Path checkpoint) {
        try (TensorSource t = TensorSources.open(checkpoint)) {
            assertEquals(
                    QuantizationConfig.QUANT_METHOD,
                    t.metadata().get(TernaryFormat.KEY_FORMAT),
                    checkpoint + " is a quantized checkpoint");
        }
    }

    static List<String> files(Path folder) throws IOException {
        try (Stream<Path> s = Files.walk(folder)) {
            return s.filter(Files::isRegularFile)
                    .map(p -> folder.relativize(p).toString())
                    .sorted()
                    .toList();
        }
    }

    private static List<String> relative(Path root, List<Path> files) {
        return files.stream().map(p -> root.relativize(p).toString()).sorted().toList();
    }

    static void copyTree(Path from, Path to) throws IOException {
        try (Stream<Path> s = Files.walk(from)) {
            for (Path p : s.toList()) {
                Path dst = to.resolve(from.relativize(p).toString());
                if (Files.isDirectory(p)) {
                    Files.createDirectories(dst);
                } else {
                    Files.copy(p, dst);
                }
            }
        }
    }
}
