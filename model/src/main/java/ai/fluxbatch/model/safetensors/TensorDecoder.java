package ai.fluxbatch.model.safetensors;

import java.nio.ByteBuffer;
import java.nio.file.Path;
import java.util.Arrays;

/** Converts a tensor's bytes, read in bounded chunks, into a Java array of the requested type. */
public final class TensorDecoder {
    /** The largest array length every JVM allocates. */
    static final long MAX_ARRAY = Integer.MAX_VALUE - 8;
    /** Bytes decoded per chunk; a multiple of every dtype size. */
    private static final int CHUNK = 1 << 26;

    /** Source of a tensor's bytes: {@code length} bytes at {@code offset} into the tensor. */
    @FunctionalInterface
    public interface Bytes {
        ByteBuffer read(long offset, int length);
    }

    @FunctionalInterface
    private interface ChunkDecoder {
        /** Decodes {@code count} elements from {@code buf} into the output starting at element {@code at}. */
        void decode(ByteBuffer buf, int at, int count);
    }

    private TensorDecoder() {}

    public static float[] floats(TensorInfo t, Path file, Bytes bytes) {
        float[] out = new float[length(t, file, "floats")];
        each(t, bytes, (buf, at, n) -> {
            switch (t.dtype()) {
                case F32 -> buf.asFloatBuffer().get(out, at, n);
                case F64 -> {
                    for (int i = 0; i < n; i++) out[at + i] = (float) buf.getDouble(8 * i);
                }
                case F16 -> {
                    for (int i = 0; i < n; i++) out[at + i] = HalfFloats.f16ToFloat(buf.getShort(2 * i));
                }
                case BF16 -> {
                    for (int i = 0; i < n; i++) out[at + i] = HalfFloats.bf16ToFloat(buf.getShort(2 * i));
                }
                case I64 -> {
                    for (int i = 0; i < n; i++) out[at + i] = buf.getLong(8 * i);
                }
                case I32 -> {
                    for (int i = 0; i < n; i++) out[at + i] = buf.getInt(4 * i);
                }
                case I8 -> {
                    for (int i = 0; i < n; i++) out[at + i] = buf.get(i);
                }
                case U8 -> {
                    for (int i = 0; i < n; i++) out[at + i] = buf.get(i) & 0xFF;
                }
            }
        });
        return out;
    }

    public static double[] doubles(TensorInfo t, Path file, Bytes bytes) {
        double[] out = new double[length(t, file, "doubles")];
        each(t, bytes, (buf, at, n) -> {
            for (int i = 0; i < n; i++) {
                out[at + i] = element(t.dtype(), buf, i);
            }
        });
        return out;
    }

    public static long[] longs(TensorInfo t, Path file, Bytes bytes) {
        long[] out = new long[length(t, file, "longs")];
        each(t, bytes, (buf, at, n) -> {
            switch (t.dtype()) {
                case I64 -> buf.asLongBuffer().get(out, at, n);
                case I32 -> {
                    for (int i = 0; i < n; i++) out[at + i] = buf.getInt(4 * i);
                }
                case I8 -> {
                    for (int i = 0; i < n; i++) out[at + i] = buf.get(i);
                }
                case U8 -> {
                    for (int i = 0; i < n; i++) out[at + i] = buf.get(i) & 0xFF;
                }
                default -> {
                    for (int i = 0; i < n; i++) {
                        double v = element(t.dtype(), buf, i);
                        if (!(v == Math.rint(v) && v >= -0x1p63 && v < 0x1p63)) {
                            throw new SafetensorsException("tensor '" + t.name() + "' in " + file + ": longs() needs"
                                    + " whole numbers but element " + (at + i) + " is " + v + " (dtype " + t.dtype()
                                    + ")");
                        }
                        out[at + i] = (long) v;
                    }
                }
            }
        });
        return out;
    }

    /** Element i of the chunk as a double: exact for every dtype except I64 beyond 2^53. */
    private static double element(DType dtype, ByteBuffer buf, int i) {
        return switch (dtype) {
            case F64 -> buf.getDouble(8 * i);
            case F32 -> buf.getFloat(4 * i);
            case F16 -> HalfFloats.f16ToFloat(buf.getShort(2 * i));
            case BF16 -> HalfFloats.bf16ToFloat(buf.getShort(2 * i));
            case I64 -> buf.getLong(8 * i);
            case I32 -> buf.getInt(4 * i);
            case I8 -> buf.get(i);
            case U8 -> buf.get(i) & 0xFF;
        };
    }

    private static int length(TensorInfo t, Path file, String method) {
        long n = t.numel();
        if (n > MAX_ARRAY) {
            throw new SafetensorsException("tensor '" + t.name() + "' in " + file + " has " + n + " elements (dtype "
                    + t.dtype() + ", shape " + Arrays.toString(t.shape()) + "), more than a Java array holds ("
                    + MAX_ARRAY + "); " + method + "() cannot return it, read it in pieces with bytes()");
        }
        return (int) n;
    }

    private static void each(TensorInfo t, Bytes bytes, ChunkDecoder decoder) {
        int size = t.dtype().size();
        long total = t.byteLength();
        for (long off = 0; off < total; off += CHUNK) {
            int len = (int) Math.min(CHUNK, total - off);
            decoder.decode(bytes.read(off, len), (int) (off / size), len / size);
        }
    }
}
