package ai.fluxbatch.kernel.cuda;

import ai.fluxbatch.kernel.Tensor;

/** A 1.58-bit weight {@code [out, in]} in device memory: the bit planes of {@link GpuTernaryLayout} and the scales. */
final class CudaTernaryTensor implements Tensor {
    final int out;
    final int in;
    final DeviceStorage codes;
    final DeviceStorage scale;

    CudaTernaryTensor(int out, int in, DeviceStorage codes, DeviceStorage scale) {
        this.out = out;
        this.in = in;
        this.codes = codes;
        this.scale = scale;
    }

    @Override
    public int[] shape() {
        return new int[] {out, in};
    }

    /** The packed codes and the float32 scales. */
    @Override
    public long residentBytes() {
        return GpuTernaryLayout.bytes(out, in) + 4L * out;
    }

    @Override
    public void close() {
        codes.release();
        scale.release();
    }

    @Override
    public String toString() {
        return "cuda-ternary[" + out + ", " + in + "]";
    }
}
