package ai.fluxbatch.model;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.fluxbatch.kernel.Backend;
import ai.fluxbatch.kernel.Tensor;
import ai.fluxbatch.model.safetensors.SafetensorsFile;
import ai.fluxbatch.model.safetensors.TensorSource;
import ai.fluxbatch.model.text.ClipTextModel;
import ai.fluxbatch.model.text.T5Encoder;
import ai.fluxbatch.model.text.TextEncoderFiles;
import ai.fluxbatch.model.vae.Autoencoder;
import java.util.Arrays;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * T5 (relative position bias), CLIP (causal attention, quick GELU, embeddings) and the VAE decoder (convolutions,
 * group norm, upsampling) of flux-tiny-dev on the CUDA backend against the reference outputs; the CPU backend's runs
 * of the same cases are in the text and vae packages.
 */
class TextEncodersAndVaeOnCudaTest {
    private static int[] ids(TensorSource src, String name) {
        return Arrays.stream(src.longs(name)).mapToInt(Math::toIntExact).toArray();
    }

    private static void close(String backendName, String what, float[] actual, float[] expected) {
        double err = Golden.relL2(actual, expected);
        System.out.printf("%s %s relative L2 %.3g%n", backendName, what, err);
        assertTrue(err < TestBackends.tolerance(backendName), backendName + " " + what + ": relative L2 " + err);
    }

    @ParameterizedTest
    @ValueSource(strings = {TestBackends.EMULATED, TestBackends.GPU_FP32, TestBackends.GPU_BF16})
    void t5AndClip(String backendName) {
        try (Backend backend = TestBackends.open(backendName);
                TensorSource t5Golden = SafetensorsFile.open(Golden.path("cases", "flux-tiny-dev", "t5.safetensors"));
                TensorSource clipGolden =
                        SafetensorsFile.open(Golden.path("cases", "flux-tiny-dev", "clip.safetensors"))) {
            T5Encoder t5 = T5Encoder.load(TextEncoderFiles.in(Golden.path("flux-tiny-dev", "text_encoder_2")), backend);
            for (String prefix : new String[] {"", "long_"}) {
                int batch = (int) t5Golden.info(prefix + "input_ids").shape()[0];
                Tensor out = t5.encode(ids(t5Golden, prefix + "input_ids"), batch);
                assertArrayEquals(t5Golden.info(prefix + "last_hidden_state").intShape(), out.shape());
                close(
                        backendName,
                        "t5 " + prefix + "last_hidden_state",
                        backend.download(out),
                        t5Golden.floats(prefix + "last_hidden_state"));
            }
            ClipTextModel clip =
                    ClipTextModel.load(TextEncoderFiles.in(Golden.path("flux-tiny-dev", "text_encoder")), backend);
            ClipTextModel.Output out = clip.encode(ids(clipGolden, "input_ids"), (int)
                    clipGolden.info("input_ids").shape()[0]);
            close(
                    backendName,
                    "clip last_hidden_state",
                    backend.download(out.lastHiddenState()),
                    clipGolden.floats("last_hidden_state"));
            close(
                    backendName,
                    "clip pooler_output",
                    backend.download(out.pooled()),
                    clipGolden.floats("pooler_output"));
        }
    }

    @ParameterizedTest
    @ValueSource(strings = {TestBackends.EMULATED, TestBackends.GPU_FP32, TestBackends.GPU_BF16})
    void vaeDecode(String backendName) {
        try (Backend backend = TestBackends.open(backendName);
                TensorSource golden = SafetensorsFile.open(Golden.path("cases", "flux-tiny-dev", "vae.safetensors"))) {
            Autoencoder vae = Autoencoder.load(Golden.path("flux-tiny-dev"), backend);
            Tensor image = vae.decode(
                    backend.upload(golden.floats("z"), golden.info("z").intShape()));
            assertArrayEquals(golden.info("image").intShape(), image.shape());
            close(backendName, "vae decode", backend.download(image), golden.floats("image"));
        }
    }
}
