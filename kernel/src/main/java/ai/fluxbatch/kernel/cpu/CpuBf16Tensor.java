package ai.fluxbatch.kernel.cpu;

import ai.fluxbatch.kernel.Shapes;
import ai.fluxbatch.kernel.Tensor;
import java.util.Arrays;

/**
 * A bfloat16 weight on the Java heap: the 16-bit patterns in row-major order. Value {@code i} is the float32 with bits
 * {@code bits[i] << 16} ({@link #widen}); {@link Bf16Matmul} widens tiles of it inside the product.
 */
final class CpuBf16Tensor implements Tensor {
    final short[] bits;
    private final int[] shape;

    CpuBf16Tensor(short[] bits, int[] shape) {
        if (Shapes.numel(shape) != bits.length) {
            throw new IllegalArgumentException("uploadBf16: shape " + Arrays.toString(shape) + " needs "
                    + Shapes.numel(shape) + " values, got " + bits.length);
        }
        this.bits = bits;
        this.shape = shape.clone();
    }

    /** The float32 value of a bfloat16 pattern, exact: its 16 bits are the float's upper half. */
    static float widen(short bits) {
        return Float.intBitsToFloat(bits << 16);
    }

    int[] shapeRef() {
        return shape;
    }

    @Override
    public int[] shape() {
        return shape.clone();
    }

    @Override
    public long residentBytes() {
        return 2L * bits.length;
    }

    @Override
    public String toString() {
        return "CpuBf16Tensor" + Arrays.toString(shape);
    }
}
