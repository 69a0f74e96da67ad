package ai.fluxbatch.model;

import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.fluxbatch.kernel.cpu.CpuBackend;
import ai.fluxbatch.model.pipeline.FluxPipeline;
import ai.fluxbatch.model.quant.TernaryFormat;
import ai.fluxbatch.model.safetensors.DType;
import ai.fluxbatch.model.safetensors.SafetensorsFile;
import ai.fluxbatch.model.safetensors.SafetensorsWriter;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Path;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** NaN or infinite weights are refused when they are loaded, naming the file, the tensor and the first bad index. */
class NonFiniteWeightsTest {
    private static final CpuBackend CPU = new CpuBackend(2);

    @TempDir
    Path dir;

    @AfterAll
    static void close() {
        CPU.close();
    }

    private static void assertMessage(Throwable e, String... parts) {
        for (String p : parts) {
            assertTrue(e.getMessage().contains(p), "message lacks \"" + p + "\": " + e.getMessage());
        }
    }

    @Test
    void denseWeightAndBias() {
        Path file = dir.resolve("w.safetensors");
        new SafetensorsWriter()
                .addF32("l.weight", new long[] {2, 2}, new float[] {1, 2, Float.POSITIVE_INFINITY, 4})
                .addF32("l.bias", new long[] {2}, new float[] {0, Float.NaN})
                .write(file);
        try (SafetensorsFile f = SafetensorsFile.open(file)) {
            WeightReader r = new WeightReader(f, CPU, "a test model");
            assertMessage(
                    assertThrows(ModelException.class, () -> r.linearNoBias("l", 2, 2)),
                    "tensor 'l.weight'",
                    file.toString(),
                    "Infinity at flat index 2",
                    "expected finite weights",
                    "a test model");
            assertMessage(
                    assertThrows(ModelException.class, () -> r.tensor("l.bias", 2)),
                    "tensor 'l.bias'",
                    "NaN at flat index 1");
        }
    }

    @Test
    void ternaryScaleOfAQuantizedCheckpoint() {
        Path file = dir.resolve("q.safetensors");
        int out = 4, in = 4;
        new SafetensorsWriter()
                .add(
                        "l.weight",
                        DType.U8,
                        new long[] {TernaryFormat.packedRows(out), in},
                        ByteBuffer.allocate(TernaryFormat.packedRows(out) * in))
                .addF32(TernaryFormat.scaleName("l.weight"), new long[] {out}, new float[] {1, 1, 1, Float.NaN})
                .addF32("l.bias", new long[] {out}, new float[out])
                .write(file);
        try (SafetensorsFile f = SafetensorsFile.open(file)) {
            WeightReader r = new WeightReader(f, CPU, "a test model");
            assertMessage(
                    assertThrows(ModelException.class, () -> r.linear("l", out, in)),
                    "tensor '" + TernaryFormat.scaleName("l.weight") + "'",
                    file.toString(),
                    "NaN at flat index 3");
        }
    }

    @Test
    void aNanInTheTinyTransformerFailsThePipelineLoad() throws IOException {
        Path model = TinySnapshots.copy("flux-tiny-dev", dir);
        Path transformer = model.resolve("flux1-dev.safetensors");
        TinySnapshots.patch(transformer, "double_blocks.0.img_attn.proj.weight", 5, TinySnapshots.BF16_NAN);
        ModelException e = assertThrows(ModelException.class, () -> FluxPipeline.load(model, CPU));
        assertMessage(
                e,
                "tensor 'double_blocks.0.img_attn.proj.weight'",
                transformer.toString(),
                "NaN at flat index 5",
                "expected finite weights");
    }

    @Test
    void aNanOrInfinityInATextEncoderMatrixKeptInBf16FailsThePipelineLoad() throws IOException {
        Path model = TinySnapshots.copy("flux-tiny-dev", dir);
        Path t5 = model.resolve("text_encoder_2").resolve("model.safetensors");
        TinySnapshots.patch(t5, "encoder.block.1.layer.1.DenseReluDense.wo.weight", 3, TinySnapshots.BF16_NAN);
        ModelException e = assertThrows(ModelException.class, () -> FluxPipeline.load(model, CPU));
        assertMessage(
                e,
                "tensor 'encoder.block.1.layer.1.DenseReluDense.wo.weight'",
                t5.toString(),
                "NaN at flat index 3",
                "expected finite weights");

        Path other = TinySnapshots.copy("flux-tiny-dev", dir.resolve("second"));
        Path clip = other.resolve("text_encoder").resolve("model.safetensors");
        TinySnapshots.patch(clip, "text_model.embeddings.token_embedding.weight", 11, new byte[] {(byte) 0x80, 0x7F});
        e = assertThrows(ModelException.class, () -> FluxPipeline.load(other, CPU));
        assertMessage(
                e,
                "tensor 'text_model.embeddings.token_embedding.weight'",
                clip.toString(),
                "Infinity at flat index 11");
    }

    @Test
    void anInfinityInTheAutoencoderFailsThePipelineLoad() throws IOException {
        Path model = TinySnapshots.copy("flux-tiny-dev", dir);
        Path ae = model.resolve("ae.safetensors");
        TinySnapshots.patch(ae, "decoder.conv_in.weight", 7, new byte[] {0, 0, (byte) 0x80, (byte) 0xFF});
        ModelException e = assertThrows(ModelException.class, () -> FluxPipeline.load(model, CPU));
        assertMessage(e, "tensor 'decoder.conv_in.weight'", ae.toString(), "-Infinity at flat index 7");
    }
}
