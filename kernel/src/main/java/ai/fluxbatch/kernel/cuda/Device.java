package ai.fluxbatch.kernel.cuda;

/**
 * What the CUDA backend needs from one GPU: device memory, copies, kernel launches and GEMMs. Every operation is
 * queued in order on the device's one stream; only the downloads wait for it. Addresses are device pointers as
 * longs; a pointer plus a byte offset is a pointer. {@link CudaDriverDevice} is the real one (JavaCPP, the CUDA
 * driver and cuBLAS); tests use an emulation on the heap.
 */
public interface Device extends AutoCloseable {

    /** The device for messages and benchmarks, e.g. "NVIDIA H200 (sm_90, 139.8 GiB, CUDA device 0)". */
    String describe();

    /**
     * A new allocation of {@code bytes} (> 0), aligned to at least 256 bytes.
     *
     * @throws DeviceOutOfMemoryException when the device has no room for it
     */
    long allocate(long bytes);

    void free(long pointer);

    /** Queues a copy of {@code count} floats of {@code src} from {@code offset} to the device at {@code dst}. */
    void upload(long dst, float[] src, int offset, int count);

    /** Queues a copy of {@code src} to the device at {@code dst}. */
    void upload(long dst, int[] src);

    /** Copies {@code dst.length} floats from the device at {@code src} after all queued work; waits for it. */
    void download(long src, float[] dst);

    /** Queues a device-to-device copy of {@code bytes} bytes. */
    void copy(long dst, long src, long bytes);

    /**
     * Queues a pitched device-to-device copy: {@code height} rows of {@code widthBytes} bytes, row {@code r} from
     * {@code src + r srcPitch} to {@code dst + r dstPitch} (pitches in bytes, each at least widthBytes).
     */
    void copy2d(long dst, long dstPitch, long src, long srcPitch, long widthBytes, long height);

    /** Queues kernel {@code kernel} of module {@code module} (see {@link CudaModules}). */
    void launch(String module, String kernel, LaunchGeometry geometry, KernelArgs args);

    /**
     * Queues a strided batched single-precision GEMM in cuBLAS's column-major convention: for each
     * {@code i < batch}, {@code C_i = alpha op(A_i) op(B_i) + beta C_i} with {@code op(A_i)} m x k,
     * {@code op(B_i)} k x n, {@code C_i} m x n; {@code X_i = X + i strideX} (strides in elements, leading dimensions
     * in elements, column-major). Storage and accumulation are float32; the arithmetic follows the device's
     * {@link GemmPrecision}.
     */
    void gemm(
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
            int batch);

    /** Waits for all queued work. */
    void synchronize();

    @Override
    void close();
}
