package ai.fluxbatch.model.safetensors;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.Channels;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

class SafetensorsWriterTest {
    @TempDir
    Path dir;

    /** Values every dtype holds exactly (U8 gets its own, unsigned ones). */
    private static long[] valuesFor(DType dtype) {
        return dtype == DType.U8
                ? new long[] {0, 1, 2, 127, 128, 200, 254, 255}
                : new long[] {0, 1, -2, 3, 100, -128, 127, -7};
    }

    private static ByteBuffer encode(DType dtype, long[] values) {
        ByteBuffer buf = ByteBuffer.allocate(values.length * dtype.size()).order(ByteOrder.LITTLE_ENDIAN);
        for (long v : values) {
            switch (dtype) {
                case F64 -> buf.putDouble(v);
                case F32 -> buf.putFloat(v);
                case F16 -> buf.putShort(HalfFloats.floatToF16(v));
                case BF16 -> buf.putShort(HalfFloats.floatToBf16(v));
                case I64 -> buf.putLong(v);
                case I32 -> buf.putInt((int) v);
                case I8, U8 -> buf.put((byte) v);
            }
        }
        return buf.flip();
    }

    @ParameterizedTest
    @EnumSource(DType.class)
    void roundTripsEveryDType(DType dtype) {
        long[] values = valuesFor(dtype);
        ByteBuffer data = encode(dtype, values);
        Path file = dir.resolve("t.safetensors");
        new SafetensorsWriter()
                .add("t", dtype, new long[] {2, 4}, data.duplicate())
                .write(file);

        try (SafetensorsFile f = SafetensorsFile.open(file)) {
            TensorInfo info = f.info("t");
            assertEquals(dtype, info.dtype());
            assertArrayEquals(new long[] {2, 4}, info.shape());
            assertArrayEquals(new int[] {2, 4}, info.intShape());
            assertEquals(2, info.rank());
            assertEquals(8, info.numel());
            assertEquals(8L * dtype.size(), info.byteLength());
            ByteBuffer raw = f.bytes("t", 0, (int) info.byteLength());
            assertTrue(raw.isReadOnly());
            assertEquals(ByteOrder.LITTLE_ENDIAN, raw.order());
            assertEquals(data, raw);
            assertArrayEquals(values, f.longs("t"));
            double[] d = f.doubles("t");
            float[] fl = f.floats("t");
            for (int i = 0; i < values.length; i++) {
                assertEquals(values[i], d[i]);
                assertEquals(values[i], fl[i]);
            }
        }
    }

    @Test
    void convenienceAddersAndOddShapesRoundTrip() {
        Path file = dir.resolve("t.safetensors");
        new SafetensorsWriter()
                .addF32("f", new long[] {3}, new float[] {1.5f, -2.25f, Float.MIN_VALUE})
                .addI64("i", new long[] {2}, new long[] {Long.MIN_VALUE, Long.MAX_VALUE})
                .addF32("scalar", new long[] {}, new float[] {7f})
                .addF32("empty", new long[] {0, 5}, new float[0])
                .write(file);
        try (SafetensorsFile f = SafetensorsFile.open(file)) {
            assertEquals(List.of("empty", "f", "i", "scalar"), List.copyOf(f.names()));
            assertArrayEquals(new float[] {1.5f, -2.25f, Float.MIN_VALUE}, f.floats("f"));
            assertArrayEquals(new long[] {Long.MIN_VALUE, Long.MAX_VALUE}, f.longs("i"));
            assertEquals(0, f.info("scalar").rank());
            assertArrayEquals(new float[] {7f}, f.floats("scalar"));
            assertEquals(0, f.floats("empty").length);
            assertEquals(0, f.bytes("empty", 0, 0).remaining());
        }
    }

    @Test
    void longsRefusesFractionalFloats() {
        Path file = dir.resolve("t.safetensors");
        new SafetensorsWriter()
                .addF32("whole", new long[] {2}, new float[] {3, -4})
                .addF32("frac", new long[] {3}, new float[] {1, 2, 2.5f})
                .write(file);
        try (SafetensorsFile f = SafetensorsFile.open(file)) {
            assertArrayEquals(new long[] {3, -4}, f.longs("whole"));
            SafetensorsException e = assertThrows(SafetensorsException.class, () -> f.longs("frac"));
            assertMessage(e, "'frac'", file.toString(), "element 2", "2.5", "whole numbers");
        }
    }

    @Test
    void metadataRoundTrips() {
        Path file = dir.resolve("m.safetensors");
        new SafetensorsWriter()
                .metadata("format", "pt")
                .metadata("note", "ü ✓ \"quoted\"")
                .addF32("x", new long[] {1}, new float[] {1})
                .write(file);
        try (SafetensorsFile f = SafetensorsFile.open(file)) {
            assertEquals(Map.of("format", "pt", "note", "ü ✓ \"quoted\""), f.metadata());
        }
        Path plain = dir.resolve("plain.safetensors");
        new SafetensorsWriter().addF32("x", new long[] {1}, new float[] {1}).write(plain);
        try (SafetensorsFile f = SafetensorsFile.open(plain)) {
            assertEquals(Map.of(), f.metadata());
        }
    }

    @Test
    void headerIsPaddedWithSpacesToAMultipleOf8() throws IOException {
        for (int len = 1; len <= 12; len++) {
            Path file = dir.resolve("p" + len + ".safetensors");
            new SafetensorsWriter()
                    .addF32("x".repeat(len), new long[] {1}, new float[] {len})
                    .write(file);
            byte[] all = Files.readAllBytes(file);
            long n = ByteBuffer.wrap(all).order(ByteOrder.LITTLE_ENDIAN).getLong(0);
            assertEquals(0, n % 8, "header length " + n);
            String json = new String(all, 8, (int) n, StandardCharsets.UTF_8);
            assertTrue(json.startsWith("{") && json.strip().endsWith("}"), json);
            assertTrue(json.substring(json.lastIndexOf('}') + 1).isBlank(), json);
            assertEquals(8 + n + 4, all.length);
            try (SafetensorsFile f = SafetensorsFile.open(file)) {
                assertArrayEquals(new float[] {len}, f.floats("x".repeat(len)));
            }
        }
    }

    @Test
    void streamingTensorWriterRoundTrips() {
        Path file = dir.resolve("s.safetensors");
        new SafetensorsWriter()
                .add("s", DType.U8, new long[] {3, 1000}, out -> {
                    var os = Channels.newOutputStream(out);
                    for (int i = 0; i < 3000; i++) {
                        os.write(i % 251);
                    }
                    os.flush();
                    os.close(); // must not close the file
                })
                .addF32("z", new long[] {1}, new float[] {9})
                .write(file);
        try (SafetensorsFile f = SafetensorsFile.open(file)) {
            long[] v = f.longs("s");
            for (int i = 0; i < 3000; i++) {
                assertEquals(i % 251, v[i]);
            }
            assertArrayEquals(new float[] {9}, f.floats("z"));
        }
    }

    @Test
    void zeroTensorsAreHolesThatReadAsZerosBetweenAndAfterWrittenOnes() throws IOException {
        Path file = dir.resolve("z.safetensors");
        new SafetensorsWriter()
                .addZeros("a", DType.F32, new long[] {3, 5})
                .addF32("b", new long[] {2}, new float[] {1.5f, -2f})
                .addZeros("c", DType.BF16, new long[] {1000, 7}) // the last tensor: the file must still be whole
                .write(file);
        try (SafetensorsFile f = SafetensorsFile.open(file)) {
            assertArrayEquals(new float[15], f.floats("a"));
            assertArrayEquals(new float[] {1.5f, -2f}, f.floats("b"));
            assertArrayEquals(new float[7000], f.floats("c"));
            assertEquals(
                    Files.size(file) - f.info("c").byteLength(), f.info("c").begin() + headerEnd(file));
        }
    }

    /** The byte where a file's data area starts: 8 + the header length its first 8 bytes give. */
    private static long headerEnd(Path file) throws IOException {
        byte[] prefix = java.util.Arrays.copyOf(Files.readAllBytes(file), 8);
        return 8 + ByteBuffer.wrap(prefix).order(ByteOrder.LITTLE_ENDIAN).getLong();
    }

    @Test
    void overwritesAnExistingTarget() throws IOException {
        Path file = dir.resolve("o.safetensors");
        Files.writeString(file, "old");
        new SafetensorsWriter().addF32("x", new long[] {1}, new float[] {1}).write(file);
        try (SafetensorsFile f = SafetensorsFile.open(file)) {
            assertArrayEquals(new float[] {1}, f.floats("x"));
        }
        assertEquals(List.of(file), list());
    }

    @Test
    void failingTensorWriterLeavesNothingBehind() throws IOException {
        Path file = dir.resolve("fail.safetensors");
        SafetensorsWriter w = new SafetensorsWriter()
                .addF32("a", new long[] {1}, new float[] {1})
                .add("boom", DType.F32, new long[] {4}, out -> {
                    out.write(ByteBuffer.allocate(8));
                    throw new IOException("disk on fire");
                });
        SafetensorsException e = assertThrows(SafetensorsException.class, () -> w.write(file));
        assertMessage(e, "'boom'", file.toString(), "disk on fire");
        assertEquals(List.of(), list());
    }

    @Test
    void tensorWriterWritingTooFewBytesLeavesNothingBehind() throws IOException {
        Path file = dir.resolve("short.safetensors");
        SafetensorsWriter w = new SafetensorsWriter()
                .add("w", DType.BF16, new long[] {3, 4}, out -> out.write(ByteBuffer.allocate(20)));
        SafetensorsException e = assertThrows(SafetensorsException.class, () -> w.write(file));
        assertMessage(e, "'w'", file.toString(), "wrote 20 bytes", "BF16", "[3, 4]", "needs 24");
        assertEquals(List.of(), list());
    }

    @Test
    void tensorWriterWritingTooManyBytesLeavesNothingBehind() throws IOException {
        Path file = dir.resolve("long.safetensors");
        SafetensorsWriter w =
                new SafetensorsWriter().add("w", DType.U8, new long[] {4}, out -> out.write(ByteBuffer.allocate(5)));
        SafetensorsException e = assertThrows(SafetensorsException.class, () -> w.write(file));
        assertMessage(e, "'w'", "wrote 5 bytes", "needs 4");
        assertEquals(List.of(), list());
    }

    @Test
    void failedWriteKeepsAnExistingTarget() throws IOException {
        Path file = dir.resolve("keep.safetensors");
        Files.writeString(file, "previous");
        SafetensorsWriter w = new SafetensorsWriter().add("w", DType.U8, new long[] {4}, out -> {
            throw new IllegalStateException("nope");
        });
        assertThrows(SafetensorsException.class, () -> w.write(file));
        assertEquals("previous", Files.readString(file));
        assertEquals(List.of(file), list());
    }

    @Test
    void duplicateTensorNameIsAnError() {
        SafetensorsWriter w = new SafetensorsWriter().addF32("dup", new long[] {1}, new float[] {1});
        SafetensorsException e =
                assertThrows(SafetensorsException.class, () -> w.addI64("dup", new long[] {1}, new long[] {1}));
        assertMessage(e, "'dup'", "already added");
    }

    @Test
    void dataOfTheWrongSizeIsAnError() {
        SafetensorsException e = assertThrows(
                SafetensorsException.class,
                () -> new SafetensorsWriter().add("w", DType.BF16, new long[] {3, 4}, ByteBuffer.allocate(20)));
        assertMessage(e, "'w'", "BF16", "[3, 4]", "24 bytes", "20");
        SafetensorsException e2 = assertThrows(
                SafetensorsException.class, () -> new SafetensorsWriter().addF32("v", new long[] {2, 3}, new float[5]));
        assertMessage(e2, "'v'", "[2, 3]", "6 elements", "5 floats");
    }

    @Test
    void reservedAndNegativeShapesAreErrors() {
        assertMessage(
                assertThrows(
                        SafetensorsException.class,
                        () -> new SafetensorsWriter().addF32("__metadata__", new long[] {1}, new float[1])),
                "__metadata__",
                "reserved");
        assertMessage(
                assertThrows(
                        SafetensorsException.class,
                        () -> new SafetensorsWriter().add("n", DType.U8, new long[] {-1, -2}, ByteBuffer.allocate(2))),
                "'n'",
                "negative");
    }

    private List<Path> list() throws IOException {
        try (Stream<Path> s = Files.list(dir)) {
            return s.toList();
        }
    }

    static void assertMessage(Throwable e, String... parts) {
        for (String p : parts) {
            assertTrue(e.getMessage().contains(p), () -> "message lacks \"" + p + "\": " + e.getMessage());
        }
    }
}
