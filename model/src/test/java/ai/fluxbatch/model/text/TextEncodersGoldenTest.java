package ai.fluxbatch.model.text;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.fluxbatch.kernel.Tensor;
import ai.fluxbatch.kernel.cpu.CpuBackend;
import ai.fluxbatch.model.Golden;
import ai.fluxbatch.model.safetensors.SafetensorsFile;
import ai.fluxbatch.model.safetensors.TensorSource;
import java.util.Arrays;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/** T5 encoder and CLIP text model against the reference outputs. */
class TextEncodersGoldenTest {
    private static final CpuBackend CPU = new CpuBackend();

    @AfterAll
    static void close() {
        CPU.close();
    }

    static int[] ids(TensorSource src, String name) {
        return Arrays.stream(src.longs(name)).mapToInt(Math::toIntExact).toArray();
    }

    @ParameterizedTest
    @ValueSource(strings = {"", "long_"})
    void t5MatchesReference(String prefix) {
        T5Encoder t5 = T5Encoder.load(TextEncoderFiles.in(Golden.path("flux-tiny-dev", "text_encoder_2")), CPU);
        try (TensorSource golden = SafetensorsFile.open(Golden.path("cases", "flux-tiny-dev", "t5.safetensors"))) {
            int batch = (int) golden.info(prefix + "input_ids").shape()[0];
            Tensor out = t5.encode(ids(golden, prefix + "input_ids"), batch);
            assertArrayEquals(golden.info(prefix + "last_hidden_state").intShape(), out.shape());
            double err = Golden.relL2(CPU.download(out), golden.floats(prefix + "last_hidden_state"));
            System.out.printf("t5 %slast_hidden_state relative L2 %.3g%n", prefix, err);
            assertTrue(err < 1e-4, prefix + "last_hidden_state relative L2 " + err);
        }
    }

    @Test
    void clipMatchesReference() {
        ClipTextModel clip = ClipTextModel.load(TextEncoderFiles.in(Golden.path("flux-tiny-dev", "text_encoder")), CPU);
        try (TensorSource golden = SafetensorsFile.open(Golden.path("cases", "flux-tiny-dev", "clip.safetensors"))) {
            int batch = (int) golden.info("input_ids").shape()[0];
            ClipTextModel.Output out = clip.encode(ids(golden, "input_ids"), batch);
            assertArrayEquals(
                    golden.info("last_hidden_state").intShape(),
                    out.lastHiddenState().shape());
            assertArrayEquals(
                    golden.info("pooler_output").intShape(), out.pooled().shape());
            double last = Golden.relL2(CPU.download(out.lastHiddenState()), golden.floats("last_hidden_state"));
            double pooled = Golden.relL2(CPU.download(out.pooled()), golden.floats("pooler_output"));
            System.out.printf("clip last_hidden_state %.3g, pooler_output %.3g relative L2%n", last, pooled);
            assertTrue(last < 1e-4, "last_hidden_state relative L2 " + last);
            assertTrue(pooled < 1e-4, "pooler_output relative L2 " + pooled);
        }
    }
}
