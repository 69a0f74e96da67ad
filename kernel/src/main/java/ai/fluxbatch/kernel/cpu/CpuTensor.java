package ai.fluxbatch.kernel.cpu;

import ai.fluxbatch.kernel.Shapes;
import ai.fluxbatch.kernel.Tensor;
import java.util.Arrays;

/** A tensor on the Java heap: a float array in row-major order. */
final class CpuTensor implements Tensor {
    final float[] data;
    private final int[] shape;

    CpuTensor(float[] data, int[] shape) {
        if (Shapes.numel(shape) != data.length) {
            throw new IllegalArgumentException("shape " + Arrays.toString(shape) + " needs " + Shapes.numel(shape)
                    + " values, got " + data.length);
        }
        this.data = data;
        this.shape = shape.clone();
    }

    static CpuTensor zeros(int... shape) {
        return new CpuTensor(new float[Math.toIntExact(Shapes.numel(shape))], shape);
    }

    @Override
    public int[] shape() {
        return shape.clone();
    }

    int[] shapeRef() {
        return shape;
    }

    @Override
    public String toString() {
        return "CpuTensor" + Arrays.toString(shape);
    }
}
