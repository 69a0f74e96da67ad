package ai.fluxbatch.kernel.cuda;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * A {@link Device} on the Java heap, so that the CUDA backend's logic runs in tests without a GPU: memory, copies,
 * the kernels of {@link OpsKernels#MODULE} ({@link EmulatedOpsKernels}) and of {@link CudaModules#TERNARY_MATMUL}
 * ({@link KernelPort}), and cuBLAS's strided batched SGEMM, all checked harder than a GPU checks them.
 *
 * <p>Memory: allocation number {@code i} (1, 2, ...) is region {@code i} at base address {@code i << 32}, so
 * addresses never collide, a pointer's region is {@code address >>> 32} and its offset {@code address & 0xffffffff}.
 * New memory holds the NaN bit pattern {@link #UNINITIALIZED} in every word, so a read of memory nothing wrote
 * shows up as NaN. Every access (copies, kernel arguments, GEMM operands) must lie inside one allocated, not freed
 * region and be 4-byte aligned, or it throws {@link IllegalStateException} naming the address, the region and its
 * size ("use after free" for a freed one). Freed regions stay known, so use after free and double free are caught.
 *
 * <p>Operations run synchronously at the call (a stream in order is indistinguishable); {@link #synchronize} does
 * nothing. Each launch checks its arguments against the kernel's parameter list and its geometry against what
 * {@link OpsKernels} / {@link TernaryLaunch} prescribe ({@link IllegalArgumentException} naming the kernel), and is
 * recorded in {@link #launches()}. After {@link #close()} every operation throws; the counters stay readable.
 */
public class EmulatedDevice implements Device {
    /** The bits of every word of a new allocation: a quiet NaN. */
    public static final int UNINITIALIZED = 0x7fc00000;

    /** One kernel launch, as recorded by {@link #launches()}. */
    public record Launch(String module, String kernel, LaunchGeometry geometry) {}

    private static final class Region {
        final long id;
        final long bytes;
        final int[] words;
        boolean freed;

        Region(long id, long bytes, int[] words) {
            this.id = id;
            this.bytes = bytes;
            this.words = words;
        }
    }

    private final long capacityBytes;
    private final GemmPrecision precision;
    private final Map<Long, Region> regions = new HashMap<>();
    private final List<Launch> launches = new ArrayList<>();
    private long counter;
    private long allocations;
    private long frees;
    private long liveBytes;
    private long peakLiveBytes;
    private long gemms;
    private boolean closed;

    /** Unlimited memory (the heap's), FP32 GEMMs. */
    public EmulatedDevice() {
        this(Long.MAX_VALUE);
    }

    /** At most {@code capacityBytes} live bytes; FP32 GEMMs. */
    public EmulatedDevice(long capacityBytes) {
        this(capacityBytes, GemmPrecision.FP32);
    }

    /**
     * At most {@code capacityBytes} live bytes; GEMMs at {@code precision} (BF16 rounds the GEMM inputs to bfloat16,
     * round to nearest even, and accumulates in float32).
     */
    public EmulatedDevice(long capacityBytes, GemmPrecision precision) {
        if (capacityBytes < 0) {
            throw new IllegalArgumentException("capacity " + capacityBytes + " bytes");
        }
        this.capacityBytes = capacityBytes;
        this.precision = precision;
    }

    @Override
    public String describe() {
        return "emulated CUDA device (heap)";
    }

    // ---- counters for tests ----------------------------------------------------------------------------------

    /** Calls of {@link #allocate} that returned an allocation. */
    public synchronized long allocations() {
        return allocations;
    }

    /** Calls of {@link #free} that freed an allocation. */
    public synchronized long frees() {
        return frees;
    }

    /** Bytes allocated and not yet freed. */
    public synchronized long liveBytes() {
        return liveBytes;
    }

    /** The most {@link #liveBytes()} there ever were. */
    public synchronized long peakLiveBytes() {
        return peakLiveBytes;
    }

    /** Allocations not yet freed. */
    public synchronized long liveAllocations() {
        return allocations - frees;
    }

    public long capacityBytes() {
        return capacityBytes;
    }

    public GemmPrecision precision() {
        return precision;
    }

    /** Every kernel launch that ran (its checks passed), in order (a copy). */
    public synchronized List<Launch> launches() {
        return List.copyOf(launches);
    }

    /** The names of the kernels launched so far, in order. */
    public synchronized List<String> launchedKernels() {
        return launches.stream().map(Launch::kernel).toList();
    }

    /** Forgets the recorded launches. */
    public synchronized void clearLaunches() {
        launches.clear();
    }

    /** Calls of {@link #gemm} so far. */
    public synchronized long gemms() {
        return gemms;
    }

    /** Whether {@code pointer} lies in an allocated, not freed region. */
    public synchronized boolean isLive(long pointer) {
        Region r = regions.get(pointer >>> 32);
        return r != null && !r.freed && (pointer & 0xffffffffL) < r.bytes;
    }

    public synchronized boolean isClosed() {
        return closed;
    }

    // ---- memory ----------------------------------------------------------------------------------------------

    private void checkOpen() {
        if (closed) {
            throw new IllegalStateException("the emulated CUDA device is closed");
        }
    }

    @Override
    public synchronized long allocate(long bytes) {
        checkOpen();
        if (bytes <= 0) {
            throw new IllegalArgumentException("allocate(" + bytes + "): bytes must be positive");
        }
        if (bytes >= 1L << 32) {
            throw new IllegalArgumentException("allocate(" + bytes + "): the emulation holds less than 4 GiB a region");
        }
        if (bytes > capacityBytes - liveBytes) {
            throw new DeviceOutOfMemoryException(
                    "emulated CUDA device: out of memory allocating " + bytes + " bytes (" + liveBytes + " of "
                            + capacityBytes + " bytes in use)",
                    bytes);
        }
        int[] words;
        try {
            words = new int[(int) ((bytes + 3) / 4)];
        } catch (OutOfMemoryError e) {
            throw new DeviceOutOfMemoryException(
                    "emulated CUDA device: the Java heap has no room for " + bytes + " bytes", bytes);
        }
        java.util.Arrays.fill(words, UNINITIALIZED);
        long id = ++counter;
        regions.put(id, new Region(id, bytes, words));
        allocations++;
        liveBytes += bytes;
        peakLiveBytes = Math.max(peakLiveBytes, liveBytes);
        return id << 32;
    }

    @Override
    public synchronized void free(long pointer) {
        checkOpen();
        Region r = regions.get(pointer >>> 32);
        if (r == null || (pointer & 0xffffffffL) != 0) {
            throw new IllegalStateException("free(" + hex(pointer) + "): not an address allocate returned"
                    + (r == null ? "" : " (inside region " + r.id + " of " + r.bytes + " bytes)"));
        }
        if (r.freed) {
            throw new IllegalStateException(
                    "free(" + hex(pointer) + "): double free of region " + r.id + " (" + r.bytes + " bytes)");
        }
        r.freed = true;
        frees++;
        liveBytes -= r.bytes;
    }

    private static String hex(long address) {
        return "0x" + Long.toHexString(address);
    }

    /**
     * {@code count} words at {@code address}, all inside one live region.
     *
     * @throws IllegalStateException naming the address, the region and its size, when they are not
     */
    private EmulatedOpsKernels.Words words(long address, long count, String what) {
        long id = address >>> 32, offset = address & 0xffffffffL;
        Region r = regions.get(id);
        String at = what + ": " + (4 * count) + " bytes at " + hex(address);
        if (address == 0) {
            throw new IllegalStateException(at + ": a null pointer");
        }
        if (r == null) {
            throw new IllegalStateException(at + ": region " + id + " (address >>> 32) was never allocated");
        }
        if (r.freed) {
            throw new IllegalStateException(
                    at + ": use after free of region " + id + " (" + r.bytes + " bytes, freed)");
        }
        if (count < 0 || offset + 4 * count > r.bytes) {
            throw new IllegalStateException(
                    at + ": out of bounds of region " + id + " (" + r.bytes + " bytes; offset " + offset + ")");
        }
        if (offset % 4 != 0) {
            throw new IllegalStateException(at + ": misaligned (offset " + offset + " in region " + id + " of "
                    + r.bytes + " bytes is not a multiple of 4)");
        }
        return new EmulatedOpsKernels.Words(r.words, (int) (offset / 4), (int) count);
    }

    private static long wordsOf(long bytes, String what) {
        if (bytes < 0 || bytes % 4 != 0) {
            throw new IllegalArgumentException(what + ": " + bytes + " bytes is not a non-negative multiple of 4 (the"
                    + " emulation copies 4-byte words)");
        }
        return bytes / 4;
    }

    @Override
    public synchronized void upload(long dst, float[] src, int offset, int count) {
        checkOpen();
        if (offset < 0 || count < 0 || offset > src.length - count) {
            throw new IndexOutOfBoundsException("upload: " + count + " floats from " + offset + " of " + src.length);
        }
        if (count == 0) {
            return;
        }
        EmulatedOpsKernels.Words w = words(dst, count, "upload");
        for (int i = 0; i < count; i++) {
            w.array[w.base + i] = Float.floatToRawIntBits(src[offset + i]);
        }
    }

    @Override
    public synchronized void upload(long dst, int[] src) {
        checkOpen();
        if (src.length == 0) {
            return;
        }
        EmulatedOpsKernels.Words w = words(dst, src.length, "upload");
        System.arraycopy(src, 0, w.array, w.base, src.length);
    }

    @Override
    public synchronized void download(long src, float[] dst) {
        checkOpen();
        if (dst.length == 0) {
            return;
        }
        EmulatedOpsKernels.Words w = words(src, dst.length, "download");
        for (int i = 0; i < dst.length; i++) {
            dst[i] = Float.intBitsToFloat(w.array[w.base + i]);
        }
    }

    /** Test helper (not in {@link Device}): copies {@code dst.length} ints from the device at {@code src}. */
    public synchronized void downloadInts(long src, int[] dst) {
        checkOpen();
        if (dst.length == 0) {
            return;
        }
        EmulatedOpsKernels.Words w = words(src, dst.length, "download");
        System.arraycopy(w.array, w.base, dst, 0, dst.length);
    }

    /** Test helper (not in {@link Device}): {@code count} floats from the device at {@code src}. */
    public float[] read(long src, int count) {
        float[] a = new float[count];
        download(src, a);
        return a;
    }

    @Override
    public synchronized void copy(long dst, long src, long bytes) {
        checkOpen();
        long n = wordsOf(bytes, "copy");
        if (n == 0) {
            return;
        }
        EmulatedOpsKernels.Words s = words(src, n, "copy source"), d = words(dst, n, "copy destination");
        System.arraycopy(s.array, s.base, d.array, d.base, (int) n);
    }

    @Override
    public synchronized void copy2d(long dst, long dstPitch, long src, long srcPitch, long widthBytes, long height) {
        checkOpen();
        long n = wordsOf(widthBytes, "copy2d width");
        wordsOf(dstPitch, "copy2d destination pitch");
        wordsOf(srcPitch, "copy2d source pitch");
        if (height < 0) {
            throw new IllegalArgumentException("copy2d: height " + height);
        }
        if (dstPitch < widthBytes || srcPitch < widthBytes) {
            throw new IllegalArgumentException("copy2d: pitches (dst " + dstPitch + ", src " + srcPitch
                    + ") must be at least the width " + widthBytes + " bytes");
        }
        if (n == 0 || height == 0) {
            return;
        }
        // check every row before copying any (a failed copy changes nothing)
        EmulatedOpsKernels.Words[] s = new EmulatedOpsKernels.Words[(int) height];
        EmulatedOpsKernels.Words[] d = new EmulatedOpsKernels.Words[(int) height];
        for (long r = 0; r < height; r++) {
            s[(int) r] = words(src + r * srcPitch, n, "copy2d source row " + r);
            d[(int) r] = words(dst + r * dstPitch, n, "copy2d destination row " + r);
        }
        for (int r = 0; r < height; r++) {
            System.arraycopy(s[r].array, s[r].base, d[r].array, d[r].base, (int) n);
        }
    }

    // ---- kernels ---------------------------------------------------------------------------------------------

    private static final EmulatedOpsKernels.Signature TERNARY_SMALL_M = new EmulatedOpsKernels.Signature(
            TernaryLaunch.SMALL_M_KERNEL + "(ptr x, ptr w, ptr scale, ptr? bias, ptr y, int M, int N, int K)");
    private static final EmulatedOpsKernels.Signature TERNARY_TILED = new EmulatedOpsKernels.Signature(
            TernaryLaunch.TILED_KERNEL + "(ptr x, ptr w, ptr scale, ptr? bias, ptr y, int M, int N, int K)");

    private static final EmulatedOpsKernels.Signature TERNARY_INPUT_GRAD = new EmulatedOpsKernels.Signature(
            TernaryLaunch.INPUT_GRAD_KERNEL + "(ptr dy, ptr w, ptr scale, ptr dx, int M, int N, int K)");

    @Override
    public synchronized void launch(String module, String kernel, LaunchGeometry geometry, KernelArgs args) {
        checkOpen();
        if (OpsKernels.MODULE.equals(module)) {
            if (!EmulatedOpsKernels.has(kernel)) {
                throw new IllegalArgumentException("module " + module + " has no kernel " + kernel);
            }
            EmulatedOpsKernels.launch(this::words, kernel, geometry, args);
            launches.add(new Launch(module, kernel, geometry));
        } else if (CudaModules.TERNARY_MATMUL.equals(module)) {
            EmulatedOpsKernels.Signature sig;
            if (TernaryLaunch.SMALL_M_KERNEL.equals(kernel)) {
                sig = TERNARY_SMALL_M;
            } else if (TernaryLaunch.TILED_KERNEL.equals(kernel)) {
                sig = TERNARY_TILED;
            } else if (TernaryLaunch.INPUT_GRAD_KERNEL.equals(kernel)) {
                ternaryInputGrad(geometry, args);
                launches.add(new Launch(module, kernel, geometry));
                return;
            } else {
                throw new IllegalArgumentException("module " + module + " has no kernel " + kernel);
            }
            ternary(sig, geometry, args);
            launches.add(new Launch(module, kernel, geometry));
        } else {
            throw new IllegalArgumentException("no module " + module + " (the emulation has " + OpsKernels.MODULE
                    + " and " + CudaModules.TERNARY_MATMUL + ")");
        }
    }

    private void ternary(EmulatedOpsKernels.Signature sig, LaunchGeometry g, KernelArgs a) {
        sig.check(a);
        int m = sig.i(a, "M"), n = sig.i(a, "N"), k = sig.i(a, "K");
        TernaryLaunch plan;
        try {
            plan = TernaryLaunch.plan(m, n, k);
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException("kernel " + sig.kernel + ": " + e.getMessage(), e);
        }
        if (!plan.kernel().equals(sig.kernel)) {
            throw new IllegalArgumentException("kernel " + sig.kernel + " launched for M = " + m + ", N = " + n
                    + ", K = " + k + ", but TernaryLaunch plans " + plan);
        }
        LaunchGeometry expected = new LaunchGeometry(
                plan.gridX(),
                plan.gridY(),
                plan.gridZ(),
                plan.blockX(),
                plan.blockY(),
                plan.blockZ(),
                plan.dynamicSharedBytes());
        EmulatedOpsKernels.expectGeometry(
                sig.kernel,
                expected,
                g,
                "M = " + m + ", N = " + n + ", K = " + k + " (TernaryLaunch.plan: " + plan + ")");
        if ((long) m * k > Integer.MAX_VALUE
                || (long) m * n > Integer.MAX_VALUE
                || GpuTernaryLayout.words(n, k) > Integer.MAX_VALUE) {
            throw new IllegalArgumentException("kernel " + sig.kernel + ": M = " + m + ", N = " + n + ", K = " + k
                    + " are too large for the emulation");
        }
        String what = "kernel " + sig.kernel + ", argument ";
        long wp = sig.ptr(a, "w");
        if (wp % 8 != 0) {
            throw new IllegalStateException(what + "w: " + hex(wp) + " is not 8-byte aligned (the kernel loads uint2)");
        }
        float[] x = words(sig.ptr(a, "x"), (long) m * k, what + "x").toFloats();
        int[] w = words(wp, GpuTernaryLayout.words(n, k), what + "w").toInts();
        float[] scale = words(sig.ptr(a, "scale"), n, what + "scale").toFloats();
        float[] bias = sig.ptr(a, "bias") == 0
                ? null
                : words(sig.ptr(a, "bias"), n, what + "bias").toFloats();
        EmulatedOpsKernels.Words y = words(sig.ptr(a, "y"), (long) m * n, what + "y");
        float[] out = sig == TERNARY_SMALL_M
                ? KernelPort.smallM(x, w, scale, bias, m, n, k)
                : KernelPort.tiled(x, w, scale, bias, m, n, k);
        y.set(out);
    }

    private void ternaryInputGrad(LaunchGeometry g, KernelArgs a) {
        EmulatedOpsKernels.Signature sig = TERNARY_INPUT_GRAD;
        sig.check(a);
        int m = sig.i(a, "M"), n = sig.i(a, "N"), k = sig.i(a, "K");
        if (n < 1) {
            throw new IllegalArgumentException("kernel " + sig.kernel + ": N = " + n + " must be positive");
        }
        LaunchGeometry expected;
        try {
            expected = TernaryLaunch.inputGrad(m, k);
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException("kernel " + sig.kernel + ": " + e.getMessage(), e);
        }
        EmulatedOpsKernels.expectGeometry(
                sig.kernel, expected, g, "M = " + m + ", K = " + k + " (TernaryLaunch.inputGrad)");
        if ((long) m * k > Integer.MAX_VALUE
                || (long) m * n > Integer.MAX_VALUE
                || GpuTernaryLayout.words(n, k) > Integer.MAX_VALUE) {
            throw new IllegalArgumentException("kernel " + sig.kernel + ": M = " + m + ", N = " + n + ", K = " + k
                    + " are too large for the emulation");
        }
        String what = "kernel " + sig.kernel + ", argument ";
        long wp = sig.ptr(a, "w");
        if (wp % 8 != 0) {
            throw new IllegalStateException(what + "w: " + hex(wp) + " is not 8-byte aligned (the kernel loads uint2)");
        }
        float[] dy = words(sig.ptr(a, "dy"), (long) m * n, what + "dy").toFloats();
        int[] w = words(wp, GpuTernaryLayout.words(n, k), what + "w").toInts();
        float[] scale = words(sig.ptr(a, "scale"), n, what + "scale").toFloats();
        EmulatedOpsKernels.Words dx = words(sig.ptr(a, "dx"), (long) m * k, what + "dx");
        dx.set(KernelPort.inputGrad(dy, w, scale, m, n, k));
    }

    // ---- GEMM ------------------------------------------------------------------------------------------------

    private float operand(float v) {
        if (precision != GemmPrecision.BF16 || Float.isNaN(v)) {
            return v;
        }
        int bits = Float.floatToRawIntBits(v);
        int rounded = bits + 0x7fff + ((bits >>> 16) & 1);
        return Float.intBitsToFloat(rounded & 0xffff0000);
    }

    /** Words a column-major {@code rows x cols} matrix with leading dimension {@code ld} spans. */
    private static long extent(int rows, int cols, int ld) {
        return (long) (cols - 1) * ld + rows;
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
        checkOpen();
        String call = "gemm(" + (transA ? "T" : "N") + (transB ? "T" : "N") + ", m = " + m + ", n = " + n + ", k = " + k
                + ", lda = " + lda + ", ldb = " + ldb + ", ldc = " + ldc + ", batch = " + batch + ")";
        if (m < 0 || n < 0 || k < 0 || batch < 0) {
            throw new IllegalArgumentException(call + ": negative size");
        }
        int aRows = transA ? k : m, aCols = transA ? m : k;
        int bRows = transB ? n : k, bCols = transB ? k : n;
        if (lda < Math.max(1, aRows)) {
            throw new IllegalArgumentException(
                    call + ": lda must be at least max(1, " + (transA ? "k" : "m") + ") = " + Math.max(1, aRows));
        }
        if (ldb < Math.max(1, bRows)) {
            throw new IllegalArgumentException(
                    call + ": ldb must be at least max(1, " + (transB ? "n" : "k") + ") = " + Math.max(1, bRows));
        }
        if (ldc < Math.max(1, m)) {
            throw new IllegalArgumentException(call + ": ldc must be at least max(1, m) = " + Math.max(1, m));
        }
        if ((long) m * n > Integer.MAX_VALUE) {
            throw new IllegalArgumentException(call + ": too large for the emulation");
        }
        gemms++;
        if (m == 0 || n == 0 || batch == 0) {
            return;
        }
        boolean product = k > 0 && alpha != 0f;
        float[] out = new float[m * n];
        for (int i = 0; i < batch; i++) {
            String at = call + ", batch " + i + ", ";
            EmulatedOpsKernels.Words av = null, bv = null;
            if (product) {
                av = words(a + 4L * i * strideA, extent(aRows, aCols, lda), at + "A");
                bv = words(b + 4L * i * strideB, extent(bRows, bCols, ldb), at + "B");
            }
            EmulatedOpsKernels.Words cv = words(c + 4L * i * strideC, extent(m, n, ldc), at + "C");
            for (int col = 0; col < n; col++) {
                for (int row = 0; row < m; row++) {
                    float acc = 0f;
                    if (product) {
                        for (int p = 0; p < k; p++) {
                            float x = av.f(transA ? p + (long) row * lda : row + (long) p * lda);
                            float y = bv.f(transB ? col + (long) p * ldb : p + (long) col * ldb);
                            acc = Math.fma(operand(x), operand(y), acc);
                        }
                    }
                    float v = alpha * acc;
                    if (beta != 0f) {
                        v += beta * cv.f(row + (long) col * ldc);
                    }
                    out[row + col * m] = v;
                }
            }
            for (int col = 0; col < n; col++) {
                for (int row = 0; row < m; row++) {
                    cv.f(row + (long) col * ldc, out[row + col * m]);
                }
            }
        }
    }

    @Override
    public synchronized void synchronize() {
        checkOpen();
    }

    /** Marks the device closed (frees nothing, so the counters still show leaks); closing again does nothing. */
    @Override
    public synchronized void close() {
        closed = true;
    }
}
