package ai.fluxbatch.kernel.cuda;

import ai.fluxbatch.kernel.Shapes;
import ai.fluxbatch.kernel.Tensor;

/**
 * A bfloat16 weight in device memory: the 16-bit patterns row-major, two to a 32-bit word (the first in the low half,
 * as a {@code short} array lies in memory), read by {@link OpsKernels#BF16_WIDEN} and {@link OpsKernels#EMBEDDING_BF16}.
 */
final class CudaBf16Tensor implements Tensor {
    final DeviceStorage storage;
    private final int[] shape;

    CudaBf16Tensor(DeviceStorage storage, int[] shape) {
        this.storage = storage;
        this.shape = shape.clone();
    }

    long pointer() {
        return storage.pointer(this);
    }

    int[] shapeRef() {
        return shape;
    }

    @Override
    public int[] shape() {
        return shape.clone();
    }

    /** Two bytes a value (the device block is rounded up to whole words and the pool's granule). */
    @Override
    public long residentBytes() {
        return 2 * Shapes.numel(shape);
    }

    @Override
    public void close() {
        storage.release();
    }

    @Override
    public String toString() {
        return "cuda-bf16" + Tensor.describe(shape);
    }
}
