package ai.fluxbatch.model.safetensors;

import java.util.Arrays;
import java.util.Objects;

/**
 * One tensor's header entry. {@code begin} and {@code end} are byte offsets relative to the start of
 * the data area (as in the file), {@code end} exclusive. The shape array is copied in and out.
 */
public record TensorInfo(String name, DType dtype, long[] shape, long begin, long end) {

    public TensorInfo {
        Objects.requireNonNull(name, "name");
        Objects.requireNonNull(dtype, "dtype");
        shape = Objects.requireNonNull(shape, "shape").clone();
        if (begin < 0 || end < begin) {
            throw new IllegalArgumentException("tensor '" + name + "': bad offsets [" + begin + ", " + end + "]");
        }
        long numel = 1;
        for (long d : shape) {
            if (d < 0) {
                throw new IllegalArgumentException(
                        "tensor '" + name + "': negative dimension in shape " + Arrays.toString(shape));
            }
            numel = Math.multiplyExact(numel, d);
        }
        if (Math.multiplyExact(numel, (long) dtype.size()) != end - begin) {
            throw new IllegalArgumentException("tensor '" + name + "': dtype " + dtype + " x shape "
                    + Arrays.toString(shape) + " does not span " + (end - begin) + " bytes");
        }
    }

    @Override
    public long[] shape() {
        return shape.clone();
    }

    public int rank() {
        return shape.length;
    }

    /** Number of elements (1 for a scalar). */
    public long numel() {
        long n = 1;
        for (long d : shape) {
            n *= d; // cannot overflow: checked in the constructor
        }
        return n;
    }

    public long byteLength() {
        return end - begin;
    }

    /** The shape as ints; fails if a dimension does not fit in an int. */
    public int[] intShape() {
        int[] out = new int[shape.length];
        for (int i = 0; i < shape.length; i++) {
            if (shape[i] > Integer.MAX_VALUE) {
                throw new SafetensorsException("tensor '" + name + "': dimension " + i + " of shape "
                        + Arrays.toString(shape) + " is " + shape[i] + ", more than an int holds ("
                        + Integer.MAX_VALUE + ")");
            }
            out[i] = (int) shape[i];
        }
        return out;
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof TensorInfo t
                && name.equals(t.name)
                && dtype == t.dtype
                && Arrays.equals(shape, t.shape)
                && begin == t.begin
                && end == t.end;
    }

    @Override
    public int hashCode() {
        return Objects.hash(name, dtype, Arrays.hashCode(shape), begin, end);
    }

    @Override
    public String toString() {
        return "TensorInfo[" + name + ", " + dtype + ", " + Arrays.toString(shape) + ", " + begin + ".." + end + "]";
    }
}
