package ai.fluxbatch.model.text;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.fluxbatch.kernel.Backend;
import ai.fluxbatch.model.Golden;
import ai.fluxbatch.model.TestBackends;
import ai.fluxbatch.model.safetensors.DType;
import ai.fluxbatch.model.safetensors.SafetensorsFile;
import ai.fluxbatch.model.safetensors.SafetensorsWriter;
import ai.fluxbatch.model.safetensors.TensorSource;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.function.BiFunction;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * The text encoders keep the BF16 matrices of their checkpoint (the golden ones, like FLUX.1's, are BF16) in bfloat16
 * on the backend, computing in float32: half the bytes of the float32 load of the same values, the same outputs. An
 * F32 checkpoint of the same values stays float32.
 */
class TextEncodersBf16Test {
    @TempDir
    Path tmp;

    /** The checkpoint's bytes as the backend should hold them: matrices at {@code matrixBytes} a value, vectors at 4. */
    private static long expectedBytes(Path folder, int matrixBytes) {
        long n = 0;
        try (TensorSource s = TextEncoderFiles.in(folder).openWeights()) {
            for (String name : s.names()) {
                if (name.endsWith("relative_attention_bias.weight")) {
                    continue; // downloaded to the host once: the position bias is computed there
                }
                n += (s.info(name).rank() == 2 ? matrixBytes : 4) * s.info(name).numel();
            }
        }
        return n;
    }

    /** The same folder with every tensor stored as F32 (the values unchanged: every bfloat16 is a float32). */
    private Path asF32(Path folder) throws IOException {
        Path out = Files.createDirectories(tmp.resolve(folder.getFileName()));
        Files.copy(folder.resolve("config.json"), out.resolve("config.json"));
        SafetensorsWriter w = new SafetensorsWriter();
        try (TensorSource s = SafetensorsFile.open(folder.resolve("model.safetensors"))) {
            for (String name : s.names()) {
                assertEquals(DType.BF16, s.info(name).dtype(), name + ": the golden text encoders are BF16");
                w.addF32(name, s.info(name).shape(), s.floats(name));
            }
        }
        w.write(out.resolve("model.safetensors"));
        return out;
    }

    private static int[] ids(TensorSource src, String name) {
        return java.util.Arrays.stream(src.longs(name))
                .mapToInt(Math::toIntExact)
                .toArray();
    }

    private void check(
            String backendName,
            String encoder,
            String goldenCase,
            BiFunction<TextEncoderFiles, Backend, Object[]> loadAndRun)
            throws IOException {
        Path bf16 = Golden.path("flux-tiny-dev", encoder);
        Path f32 = asF32(bf16);
        try (Backend backend = TestBackends.open(backendName)) {
            Object[] a = loadAndRun.apply(TextEncoderFiles.in(bf16), backend);
            Object[] b = loadAndRun.apply(TextEncoderFiles.in(f32), backend);
            long bytes16 = (Long) a[0], bytes32 = (Long) b[0];
            assertEquals(expectedBytes(bf16, 2), bytes16, encoder + ": BF16 matrices kept at 2 bytes a value");
            assertEquals(expectedBytes(bf16, 4), bytes32, encoder + ": F32 matrices kept at 4 bytes a value");
            long vectors = expectedBytes(bf16, 0);
            assertEquals(bytes32 - vectors, 2 * (bytes16 - vectors), encoder + ": the matrices' bytes halve");
            float[] out16 = (float[]) a[1], out32 = (float[]) b[1];
            double err = Golden.relL2(out16, out32);
            System.out.printf(
                    "%s %s: resident %,d B (BF16 matrices) vs %,d B (F32), outputs %.3g relative L2 apart%n",
                    backendName, encoder, bytes16, bytes32, err);
            assertTrue(err <= 1e-6, encoder + ": BF16-resident against float32-resident outputs, relative L2 " + err);
            try (TensorSource golden = SafetensorsFile.open(Golden.path("cases", "flux-tiny-dev", goldenCase))) {
                String key = goldenCase.startsWith("t5") ? "last_hidden_state" : "pooler_output";
                double g = Golden.relL2(out16, golden.floats(key));
                assertTrue(g < TestBackends.tolerance(backendName), encoder + " against the golden " + key + ": " + g);
            }
        }
    }

    @ParameterizedTest
    @ValueSource(strings = {TestBackends.CPU, TestBackends.EMULATED, TestBackends.GPU_FP32})
    void t5KeepsItsBf16Matrices(String backendName) throws IOException {
        int[] ids;
        int batch;
        try (TensorSource golden = SafetensorsFile.open(Golden.path("cases", "flux-tiny-dev", "t5.safetensors"))) {
            ids = ids(golden, "input_ids");
            batch = (int) golden.info("input_ids").shape()[0];
        }
        check(backendName, "text_encoder_2", "t5.safetensors", (files, backend) -> {
            T5Encoder t5 = T5Encoder.load(files, backend);
            return new Object[] {t5.residentBytes(), backend.download(t5.encode(ids, batch))};
        });
    }

    @ParameterizedTest
    @ValueSource(strings = {TestBackends.CPU, TestBackends.EMULATED, TestBackends.GPU_FP32})
    void clipKeepsItsBf16Matrices(String backendName) throws IOException {
        int[] ids;
        int batch;
        try (TensorSource golden = SafetensorsFile.open(Golden.path("cases", "flux-tiny-dev", "clip.safetensors"))) {
            ids = ids(golden, "input_ids");
            batch = (int) golden.info("input_ids").shape()[0];
        }
        check(backendName, "text_encoder", "clip.safetensors", (files, backend) -> {
            ClipTextModel clip = ClipTextModel.load(files, backend);
            return new Object[] {
                clip.residentBytes(), backend.download(clip.encode(ids, batch).pooled())
            };
        });
    }
}
