package ai.fluxbatch.kernel.cuda;

import ai.fluxbatch.kernel.Tensor;

/** A float32 tensor in device memory; reshaped views share its storage. */
final class CudaTensor implements Tensor {
    final DeviceStorage storage;
    private final int[] shape;

    CudaTensor(DeviceStorage storage, int[] shape) {
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

    /** Frees the device memory of this tensor and of every view of it. */
    @Override
    public void close() {
        storage.release();
    }

    @Override
    public String toString() {
        return "cuda" + Tensor.describe(shape);
    }
}
