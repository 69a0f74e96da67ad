package ai.fluxbatch.kernel.cuda;

import ai.fluxbatch.kernel.Tensor;

/**
 * A 1.58-bit weight {@code [out, in]} in device memory: the bit planes of {@link GpuTernaryLayout} and the scales. A
 * weight made by {@code withTernaryScale} shares the codes of the one it came from and owns only its scales: closing
 * it frees those, while the codes live as long as their owner (its scope, or until it is closed) and, when that is
 * none, as long as any weight using them is reachable.
 */
final class CudaTernaryTensor implements Tensor {
    final int out;
    final int in;
    final DeviceStorage codes;
    final DeviceStorage scale;
    private final boolean ownsCodes;

    CudaTernaryTensor(int out, int in, DeviceStorage codes, DeviceStorage scale) {
        this(out, in, codes, scale, true);
    }

    private CudaTernaryTensor(int out, int in, DeviceStorage codes, DeviceStorage scale, boolean ownsCodes) {
        this.out = out;
        this.in = in;
        this.codes = codes;
        this.scale = scale;
        this.ownsCodes = ownsCodes;
    }

    /** The same codes with other scales ({@code scale} holds {@code out} floats); the codes stay this weight's. */
    CudaTernaryTensor withScale(DeviceStorage scale) {
        return new CudaTernaryTensor(out, in, codes, scale, false);
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

    /** Frees the scales, and the codes when this weight owns them. */
    @Override
    public void close() {
        if (ownsCodes) {
            codes.release();
        }
        scale.release();
    }

    @Override
    public String toString() {
        return "cuda-ternary[" + out + ", " + in + "]";
    }
}
