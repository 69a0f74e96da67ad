package ai.fluxbatch.kernel.cuda;

import java.util.Arrays;
import java.util.HashMap;
import java.util.Map;

/**
 * A {@link Device} that only hands out addresses: allocations are counted and never backed, kernels, GEMMs and copies
 * do nothing, downloads give zeros. The CUDA backend runs on it exactly as on a GPU as far as its memory goes (the
 * same allocations in the same order, the same pool, the same scopes), but at any size and at the cost of its host
 * logic alone: it tells what device memory a computation at FLUX.1's full size needs, on a machine with no GPU. The
 * values it computes are meaningless (zeros); nothing in the backend's allocations depends on them.
 */
public final class DryRunDevice implements Device {
    private final Map<Long, Long> live = new HashMap<>();
    private long next = 1L << 40;
    private long allocations;
    private long liveBytes;
    private long peakLiveBytes;
    private long launches;
    private boolean closed;

    @Override
    public String describe() {
        return "dry run (addresses only: no memory behind them, kernels not run)";
    }

    private void open() {
        if (closed) {
            throw new IllegalStateException("the dry-run device is closed");
        }
    }

    @Override
    public synchronized long allocate(long bytes) {
        open();
        if (bytes <= 0) {
            throw new IllegalArgumentException("allocation of " + bytes + " bytes");
        }
        long pointer = next;
        next += (bytes + 255) / 256 * 256;
        live.put(pointer, bytes);
        allocations++;
        liveBytes += bytes;
        peakLiveBytes = Math.max(peakLiveBytes, liveBytes);
        return pointer;
    }

    @Override
    public synchronized void free(long pointer) {
        Long bytes = live.remove(pointer);
        if (bytes == null) {
            throw new IllegalStateException("free of 0x" + Long.toHexString(pointer) + ", which is not allocated");
        }
        liveBytes -= bytes;
    }

    /** Device allocations made so far. */
    public synchronized long allocations() {
        return allocations;
    }

    /** Bytes allocated on the device and not freed (the pool's in-use and cached blocks). */
    public synchronized long liveBytes() {
        return liveBytes;
    }

    public synchronized long peakLiveBytes() {
        return peakLiveBytes;
    }

    /** Kernel launches and GEMMs queued (and skipped). */
    public synchronized long launches() {
        return launches;
    }

    @Override
    public void upload(long dst, float[] src, int offset, int count) {
        open();
    }

    @Override
    public void upload(long dst, int[] src) {
        open();
    }

    @Override
    public void download(long src, float[] dst) {
        open();
        Arrays.fill(dst, 0f);
    }

    @Override
    public void copy(long dst, long src, long bytes) {
        open();
    }

    @Override
    public void copy2d(long dst, long dstPitch, long src, long srcPitch, long widthBytes, long height) {
        open();
    }

    @Override
    public synchronized void launch(String module, String kernel, LaunchGeometry geometry, KernelArgs args) {
        open();
        launches++;
    }

    @Override
    public synchronized void gemm(
            boolean transA,
            boolean transB,
            int m,
            int n,
            int k,
            float alpha,
            long a,
            int lda,
            long strideA,
            long b,
            int ldb,
            long strideB,
            float beta,
            long c,
            int ldc,
            long strideC,
            int batch) {
        open();
        launches++;
    }

    @Override
    public void synchronize() {
        open();
    }

    @Override
    public synchronized void close() {
        closed = true;
    }
}
