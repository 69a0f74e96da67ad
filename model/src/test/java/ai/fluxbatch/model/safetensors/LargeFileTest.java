package ai.fluxbatch.model.safetensors;

import static ai.fluxbatch.model.safetensors.SafetensorsWriterTest.assertMessage;
import static ai.fluxbatch.model.safetensors.TestFiles.entry;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Files and tensors past 2 GiB, as sparse files: they take no disk space. */
class LargeFileTest {
    private static final long GIB = 1L << 30;

    @TempDir
    Path dir;

    @Test
    void tensorAtADataOffsetPast2GiB() throws IOException {
        Path file = dir.resolve("far.safetensors");
        long pad = 2 * GIB + 12345;
        String header = "{" + entry("pad", "U8", "[" + pad + "]", 0, pad) + ", "
                + entry("w", "F32", "[2, 2]", pad, pad + 16) + "}";
        long dataStart = TestFiles.sparse(file, header, pad + 16);
        float[] w = {1.5f, -2f, 3.25f, Float.MAX_VALUE};
        ByteBuffer buf = ByteBuffer.allocate(16).order(ByteOrder.LITTLE_ENDIAN);
        buf.asFloatBuffer().put(w);
        TestFiles.writeAt(file, dataStart + pad, buf.array());
        // markers in the padding around the 1 GiB and 2 GiB window boundaries of the file
        TestFiles.writeAt(file, GIB - 3, new byte[] {1, 2, 3, 4, 5, 6});
        TestFiles.writeAt(file, 2 * GIB - 3, new byte[] {7, 8, 9, 10, 11, 12});

        try (TensorSource f = TensorSources.open(file)) {
            assertArrayEquals(w, f.floats("w"));
            assertEquals(pad, f.info("w").begin());
            assertEquals(-2f, f.bytes("w", 4, 4).getFloat(0));
            ByteBuffer across1 = f.bytes("pad", GIB - 3 - dataStart, 6);
            ByteBuffer across2 = f.bytes("pad", 2 * GIB - 3 - dataStart, 6);
            for (int i = 0; i < 6; i++) {
                assertEquals(i + 1, across1.get(i));
                assertEquals(i + 7, across2.get(i));
            }
            assertEquals(0, f.bytes("pad", pad - 1, 1).get(0));
        }
    }

    @Test
    void singleTensorOf3GiB() throws IOException {
        Path file = dir.resolve("big.safetensors");
        long n = 3 * GIB;
        long dataStart = TestFiles.sparse(file, "{" + entry("big", "U8", "[" + n + "]", 0, n) + "}", n);
        byte[] tail = {10, 20, 30, 40, 50, 60, 70, (byte) 200};
        TestFiles.writeAt(file, dataStart + n - tail.length, tail);
        TestFiles.writeAt(file, dataStart + 2 * GIB, new byte[] {42});

        try (TensorSource f = TensorSources.open(file)) {
            TensorInfo info = f.info("big");
            assertEquals(n, info.numel());
            assertEquals(n, info.byteLength());
            ByteBuffer end = f.bytes("big", n - tail.length, tail.length);
            byte[] got = new byte[tail.length];
            end.get(got);
            assertArrayEquals(tail, got);
            assertEquals(42, f.bytes("big", 2 * GIB, 1).get(0));
            // a window longer than 1 GiB gets its own mapping
            int len = (int) (GIB + GIB / 2);
            ByteBuffer wide = f.bytes("big", n - len, len);
            assertEquals(len, wide.remaining());
            assertEquals((byte) 200, wide.get(len - 1));
            assertEquals(42, wide.get((int) (2 * GIB - (n - len))));
            assertMessage(
                    assertThrows(SafetensorsException.class, () -> f.bytes("big", n - 4, 8)),
                    "'big'",
                    "8 bytes at offset " + (n - 4));

            assertMessage(
                    assertThrows(SafetensorsException.class, () -> f.floats("big")),
                    "'big'",
                    file.toString(),
                    n + " elements",
                    "shape [" + n + "]",
                    "bytes()");
            assertMessage(assertThrows(SafetensorsException.class, () -> f.doubles("big")), n + " elements");
            assertMessage(assertThrows(SafetensorsException.class, () -> f.longs("big")), n + " elements");
            assertMessage(assertThrows(SafetensorsException.class, info::intShape), "'big'", String.valueOf(n));
        }
    }

    @Test
    void floatsOfATensorSpanningSeveralDecodeChunks() throws IOException {
        Path file = dir.resolve("chunks.safetensors");
        int n = 20_000_000; // 80 MB: more than one 64 MiB decode chunk
        long dataStart = TestFiles.sparse(file, "{" + entry("x", "F32", "[" + n + "]", 0, 4L * n) + "}", 4L * n);
        int[] at = {0, (1 << 24) - 1, 1 << 24, n - 1};
        for (int i : at) {
            ByteBuffer b = ByteBuffer.allocate(4).order(ByteOrder.LITTLE_ENDIAN).putFloat(0, i + 0.5f);
            TestFiles.writeAt(file, dataStart + 4L * i, b.array());
        }
        try (TensorSource f = TensorSources.open(file)) {
            float[] x = f.floats("x");
            assertEquals(n, x.length);
            for (int i : at) {
                assertEquals(i + 0.5f, x[i]);
            }
            assertEquals(0f, x[12345]);
        }
    }
}
