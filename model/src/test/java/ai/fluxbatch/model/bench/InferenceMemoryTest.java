package ai.fluxbatch.model.bench;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.fluxbatch.kernel.cuda.CudaBackend;
import ai.fluxbatch.kernel.cuda.DryRunDevice;
import ai.fluxbatch.kernel.cuda.EmulatedDevice;
import ai.fluxbatch.model.Golden;
import ai.fluxbatch.model.flux.FluxConfigReader;
import ai.fluxbatch.model.flux.FluxTransformer;
import ai.fluxbatch.model.flux.FluxWeightLoader;
import ai.fluxbatch.model.safetensors.SafetensorsFile;
import ai.fluxbatch.model.safetensors.TensorSource;
import ai.fluxbatch.model.text.ClipTextModel;
import ai.fluxbatch.model.text.T5Encoder;
import ai.fluxbatch.model.text.TextEncoderFiles;
import ai.fluxbatch.model.vae.Autoencoder;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import org.junit.jupiter.api.Test;

/**
 * The memory estimate's parts: the layouts it counts (the golden FLUX.1-dev layout's parameter counts; the miniature's
 * T5, CLIP and autoencoder headers), the bytes it counts against what the CUDA backend allocates when it loads them,
 * the dry-run device against the emulated one, and the totals adding up.
 */
class InferenceMemoryTest {
    private static final ComponentLayouts.T5 TINY_T5 = new ComponentLayouts.T5(1600, 48, 4, 12, 64, 2, 32);
    private static final ComponentLayouts.Clip TINY_CLIP = new ComponentLayouts.Clip(49408, 32, 4, 64, 2, 77);
    private static final ComponentLayouts.Vae TINY_VAE =
            new ComponentLayouts.Vae(new int[] {32, 32, 64, 64}, 1, 16, 3, 3);
    /** A miniature transformer: hidden 32, head 8, MLP 64, context 48, vec 32. */
    private static Map<String, long[]> tinyTransformer(int depth, int depthSingle) {
        return SyntheticTensorSource.fluxLayout(32, 8, 64, depth, depthSingle, 64, 48, 32, true);
    }

    private static Map<String, long[]> header(Path file) {
        Map<String, long[]> m = new TreeMap<>();
        try (TensorSource s = SafetensorsFile.open(file)) {
            for (String n : s.names()) {
                m.put(n, s.info(n).shape());
            }
        }
        return m;
    }

    private static void assertSameLayout(Map<String, long[]> expected, Map<String, long[]> actual, String what) {
        assertEquals(expected.keySet(), new TreeMap<>(actual).keySet(), what + ": tensor names");
        for (String n : expected.keySet()) {
            assertArrayEquals(expected.get(n), actual.get(n), what + ": shape of " + n);
        }
    }

    @Test
    void componentLayoutsAreTheGoldenMiniaturesHeaders() {
        Path tiny = Golden.path("flux-tiny-dev");
        assertSameLayout(header(tiny.resolve("text_encoder_2/model.safetensors")), ComponentLayouts.t5(TINY_T5), "T5");
        assertSameLayout(
                header(tiny.resolve("text_encoder/model.safetensors")), ComponentLayouts.clip(TINY_CLIP), "CLIP");
        assertSameLayout(header(tiny.resolve("ae.safetensors")), ComponentLayouts.autoencoder(TINY_VAE), "VAE");
    }

    @Test
    void fullSizeParameterCounts() throws IOException {
        Path file = Golden.path("flux1-dev-layout.json");
        JsonNode json = new ObjectMapper().readTree(file.toFile());
        Map<String, long[]> layout = SyntheticTensorSource.readLayout(file);
        InferenceMemory.Weights ternary = InferenceMemory.transformerTernary(layout);
        InferenceMemory.Weights rest = InferenceMemory.transformerRest(layout);
        assertEquals(json.get("block_linear_weight_params").asLong(), ternary.params(), "block linear weights");
        assertEquals(json.get("total_params").asLong(), ternary.params() + rest.params(), "whole transformer");
        assertEquals(json.get("total_params").asLong(), ComponentLayouts.params(layout));
        // the published sizes of FLUX.1's other components (T5-XXL's encoder, CLIP-L's text model, the FLUX VAE)
        assertEquals(4_762_310_656L, ComponentLayouts.params(ComponentLayouts.t5(ComponentLayouts.T5.XXL)));
        assertEquals(123_060_480L, ComponentLayouts.params(ComponentLayouts.clip(ComponentLayouts.Clip.L)));
        assertEquals(83_819_683L, ComponentLayouts.params(ComponentLayouts.autoencoder(ComponentLayouts.Vae.FLUX)));
    }

    @Test
    void weightBytesAreWhatTheBackendAllocates() {
        Path tiny = Golden.path("flux-tiny-dev");
        try (CudaBackend b = new CudaBackend(new DryRunDevice())) {
            T5Encoder t5 = T5Encoder.load(TextEncoderFiles.in(tiny.resolve("text_encoder_2")), b);
            assertEquals(
                    InferenceMemory.textEncoder("T5", ComponentLayouts.t5(TINY_T5))
                            .bytes(),
                    b.memory().inUseBytes(),
                    "T5 on the device");
            assertTrue(t5.residentBytes() > 0);
        }
        try (CudaBackend b = new CudaBackend(new DryRunDevice())) {
            ClipTextModel.load(TextEncoderFiles.in(tiny.resolve("text_encoder")), b);
            assertEquals(
                    InferenceMemory.textEncoder("CLIP", ComponentLayouts.clip(TINY_CLIP))
                            .bytes(),
                    b.memory().inUseBytes(),
                    "CLIP on the device");
        }
        try (CudaBackend b = new CudaBackend(new DryRunDevice())) {
            Autoencoder.load(tiny, b);
            assertEquals(
                    InferenceMemory.autoencoder(ComponentLayouts.autoencoder(TINY_VAE))
                            .bytes(),
                    b.memory().inUseBytes(),
                    "autoencoder on the device");
        }
        Map<String, long[]> layout = tinyTransformer(2, 2);
        try (CudaBackend b = new CudaBackend(new DryRunDevice());
                TensorSource w = SyntheticTensorSource.quantized(layout, 5, "tiny", false)) {
            ObjectNode json = new ObjectMapper().createObjectNode();
            json.putArray("axes_dims_rope").add(4).add(2).add(2);
            var config = FluxConfigReader.derive(w, json, Path.of("(test)"));
            FluxTransformer t = new FluxTransformer(b, config, new FluxWeightLoader(w, b, config).load());
            InferenceMemory.Weights ternary = InferenceMemory.transformerTernary(layout);
            InferenceMemory.Weights rest = InferenceMemory.transformerRest(layout);
            assertEquals(ternary.bytes() + rest.bytes(), b.memory().inUseBytes(), "1.58-bit transformer");
            assertTrue(t.residentBytes() <= b.memory().inUseBytes(), "resident bytes, before the pool's rounding");
        }
    }

    @Test
    void theDryRunAllocatesWhatTheEmulatedDeviceAllocates() {
        Map<String, long[]> layout = tinyTransformer(1, 1);
        List<InferenceMemory.Stage> dry = List.of(
                InferenceMemory.textStage(DryRunDevice::new, TINY_T5, TINY_CLIP, 24, 1),
                InferenceMemory.stepStage(DryRunDevice::new, layout, true, 36, 24, 2),
                InferenceMemory.stepStage(DryRunDevice::new, layout, true, 300, 24, 2),
                InferenceMemory.decodeStage(DryRunDevice::new, TINY_VAE, 48, 40, 3));
        List<InferenceMemory.Stage> emulated = List.of(
                InferenceMemory.textStage(EmulatedDevice::new, TINY_T5, TINY_CLIP, 24, 1),
                InferenceMemory.stepStage(EmulatedDevice::new, layout, true, 36, 24, 2),
                InferenceMemory.stepStage(EmulatedDevice::new, layout, true, 300, 24, 2),
                InferenceMemory.decodeStage(EmulatedDevice::new, TINY_VAE, 48, 40, 3));
        assertEquals(emulated, dry);
        for (InferenceMemory.Stage s : dry) {
            assertTrue(s.peakBytes() > 0, s + ": some activations");
        }
    }

    @Test
    void stagePeaksDoNotDependOnTheDepth() {
        assertEquals(
                InferenceMemory.stepStage(DryRunDevice::new, tinyTransformer(1, 1), true, 64, 16, 2),
                InferenceMemory.stepStage(DryRunDevice::new, tinyTransformer(3, 2), true, 64, 16, 2),
                "one denoising step: blocks run in scopes of their own");
        assertEquals(
                InferenceMemory.textStage(DryRunDevice::new, TINY_T5.withLayers(1), TINY_CLIP, 40, 1),
                InferenceMemory.textStage(DryRunDevice::new, TINY_T5.withLayers(3), TINY_CLIP, 40, 1),
                "text encoders: T5 layers run in scopes of their own");
    }

    @Test
    void theEstimateAddsUp() {
        InferenceMemory.Estimate e = InferenceMemory.estimate(
                tinyTransformer(2, 2),
                tinyTransformer(1, 1),
                TINY_T5,
                TINY_T5.withLayers(1),
                TINY_CLIP,
                TINY_VAE,
                64,
                48,
                24);
        long params = 0, bytes = 0, bf16 = 0;
        for (InferenceMemory.Weights w : e.weights()) {
            params += w.params();
            bytes += w.bytes();
            bf16 += w.bf16Bytes();
            assertEquals(2 * w.params(), w.bf16Bytes(), w.component());
        }
        long all = ComponentLayouts.params(tinyTransformer(2, 2))
                + ComponentLayouts.params(ComponentLayouts.t5(TINY_T5))
                + ComponentLayouts.params(ComponentLayouts.clip(TINY_CLIP))
                + ComponentLayouts.params(ComponentLayouts.autoencoder(TINY_VAE));
        assertEquals(all, params, "every parameter of the four components, once");
        assertEquals(params, e.params());
        assertEquals(bytes, e.weightBytes());
        assertEquals(bf16, e.weightBf16Bytes());
        List<InferenceMemory.Stage> s = e.stages();
        long kept = s.get(0).retainedBytes();
        long peak = Math.max(
                s.get(0).peakBytes(),
                kept + Math.max(s.get(1).peakBytes(), s.get(2).peakBytes()));
        assertEquals(peak, e.activationBytes(), "stages in order, each on what the earlier ones kept");
        assertEquals(bytes + peak, e.totalBytes());
        assertEquals(bf16 + e.activationBf16Bytes(), e.totalBf16Bytes());
        assertEquals(
                e.weights().get(0).bytes()
                        + e.weights().get(1).bytes()
                        + s.get(1).peakBytes(),
                e.transformerBytes());
        assertTrue(
                Arrays.asList(s.get(0), e.denseStages().get(0)).stream()
                                .distinct()
                                .count()
                        == 1,
                "shared stage");
    }
}
