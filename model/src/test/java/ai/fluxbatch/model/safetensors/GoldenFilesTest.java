package ai.fluxbatch.model.safetensors;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.ByteBuffer;
import java.nio.file.Path;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Reads the golden files written by the Python reference (safetensors library). */
class GoldenFilesTest {
    @TempDir
    Path dir;

    @Test
    void readsTheBf16Transformer() {
        try (TensorSource f = TensorSources.open(TestFiles.goldenTransformer())) {
            TensorInfo info = f.info("img_in.weight");
            assertEquals(DType.BF16, info.dtype());
            assertArrayEquals(new long[] {64, 64}, info.shape());
            assertEquals(Map.of("format", "pt"), f.metadata());
            float[] w = f.floats("img_in.weight");
            assertEquals(4096, w.length);
            assertArrayEquals(
                    new float[] {-0.140625f, -0.14453125f, -0.03125f, -0.05419921875f}, java.util.Arrays.copyOf(w, 4));
            assertEquals(0.0751953125f, w[4095]);
            assertEquals((short) 48656, f.bytes("img_in.weight", 0, 2).getShort(0));
            assertEquals(TestFiles.goldenTransformer(), f.file("img_in.weight"));
        }
    }

    @Test
    void readsTheF32ForwardCase() {
        try (TensorSource f = TensorSources.open(TestFiles.goldenForward())) {
            TensorInfo info = f.info("img");
            assertEquals(DType.F32, info.dtype());
            assertArrayEquals(new int[] {2, 24, 64}, info.intShape());
            float[] img = f.floats("img");
            assertEquals(2 * 24 * 64, img.length);
            assertEquals(0.6919223070144653f, img[0]);
            assertEquals(2.0881171226501465f, img[1]);
            assertEquals(0.8701185584068298f, img[img.length - 1]);
            double[] d = f.doubles("img");
            assertEquals(img[17], (float) d[17]);
            assertTrue(f.metadata().isEmpty());
        }
    }

    @Test
    void copyingEveryTensorThroughTheWriterKeepsTheBytes() {
        Path copy = dir.resolve("copy.safetensors");
        try (TensorSource src = TensorSources.open(TestFiles.goldenTransformer())) {
            SafetensorsWriter w = new SafetensorsWriter();
            src.metadata().forEach(w::metadata);
            for (String name : src.names()) {
                TensorInfo t = src.info(name);
                w.add(name, t.dtype(), t.shape(), src.bytes(name, 0, (int) t.byteLength()));
            }
            w.write(copy);
            try (TensorSource back = TensorSources.open(copy)) {
                assertEquals(src.names(), back.names());
                assertEquals(src.metadata(), back.metadata());
                for (String name : src.names()) {
                    TensorInfo t = src.info(name);
                    assertEquals(t.dtype(), back.info(name).dtype());
                    assertArrayEquals(t.shape(), back.info(name).shape());
                    ByteBuffer a = src.bytes(name, 0, (int) t.byteLength());
                    ByteBuffer b = back.bytes(name, 0, (int) t.byteLength());
                    assertEquals(a, b, name);
                }
            }
        }
    }
}
