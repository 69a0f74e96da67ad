package ai.fluxbatch.kernel.cuda;

import static ai.fluxbatch.kernel.cuda.CudaErrors.cString;
import static ai.fluxbatch.kernel.cuda.CudaErrors.check;
import static ai.fluxbatch.kernel.cuda.CudaErrors.checkCublas;
import static ai.fluxbatch.kernel.cuda.CudaErrors.checkNvrtc;
import static ai.fluxbatch.kernel.cuda.CudaErrors.driverError;
import static ai.fluxbatch.kernel.cuda.CudaErrors.errorName;
import static ai.fluxbatch.kernel.cuda.CudaErrors.errorString;
import static ai.fluxbatch.kernel.cuda.CudaLibraries.NEEDS;
import static ai.fluxbatch.kernel.cuda.CudaLibraries.bind;
import static ai.fluxbatch.kernel.cuda.CudaLibraries.visibleDevices;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Objects;
import java.util.Set;
import org.bytedeco.cuda.cublas.cublasContext;
import org.bytedeco.cuda.cudart.CUDA_MEMCPY2D_v2;
import org.bytedeco.cuda.cudart.CUctx_st;
import org.bytedeco.cuda.cudart.CUevent_st;
import org.bytedeco.cuda.cudart.CUfunc_st;
import org.bytedeco.cuda.cudart.CUmod_st;
import org.bytedeco.cuda.cudart.CUstream_st;
import org.bytedeco.cuda.global.cublas;
import org.bytedeco.cuda.global.cudart;
import org.bytedeco.cuda.global.nvrtc;
import org.bytedeco.javacpp.BytePointer;
import org.bytedeco.javacpp.FloatPointer;
import org.bytedeco.javacpp.IntPointer;
import org.bytedeco.javacpp.LongPointer;
import org.bytedeco.javacpp.Pointer;
import org.bytedeco.javacpp.PointerPointer;
import org.bytedeco.javacpp.SizeTPointer;

/**
 * The real {@link Device}: one NVIDIA GPU through JavaCPP's CUDA presets: the driver API ({@code cu*}, in
 * {@code org.bytedeco.cuda.global.cudart}), cuBLAS and NVRTC.
 *
 * <ul>
 *   <li>The device's primary context (shared with cuBLAS, which runs on the runtime API), made current on whichever
 *   thread calls; one non-blocking stream that every copy, kernel and GEMM is queued on.</li>
 *   <li>Host-to-device copies go through two pinned staging buffers (at most {@value #STAGING_CHUNK_BYTES} bytes
 *   each, larger copies in chunks), each guarded by an event: pinned memory makes the copy a true asynchronous DMA
 *   at full bus speed, and reusing a buffer waits only for that buffer's previous copy, not for the whole stream.
 *   Downloads stage the same way and wait for the stream.</li>
 *   <li>Modules load lazily, once: the fatbin resource ({@link CudaModules#load}); when it is absent or has no code
 *   for this GPU (no cubin for its architecture and a PTX the driver cannot JIT), the module's source
 *   ({@link CudaModules#source}) compiled by NVRTC for {@code sm_XY} and cached on disk ({@link NvrtcCache}).</li>
 *   <li>GEMMs: {@code cublasGemmStridedBatchedEx} on float32 storage, compute type {@code CUBLAS_COMPUTE_32F}
 *   ({@link GemmPrecision#FP32}) or {@code CUBLAS_COMPUTE_32F_FAST_16BF} ({@link GemmPrecision#BF16}).</li>
 * </ul>
 *
 * <p>Every driver, cuBLAS and NVRTC result is checked: a failure is a {@link CudaException} naming the call, the
 * error and what was being done; an allocation the device has no room for is a {@link DeviceOutOfMemoryException}.
 * A machine without the NVIDIA driver or the CUDA 13 libraries gets an {@link IllegalStateException} from
 * {@link #open} that names the missing library. The methods are synchronized: one thread at a time.
 */
public final class CudaDriverDevice implements Device {
    /** Bytes of one pinned staging buffer at most; larger copies go in chunks. */
    static final long STAGING_CHUNK_BYTES = 32L << 20;

    private static final long STAGING_MIN_BYTES = 1L << 20;
    /** Dynamic shared memory a block may use without opting in. */
    private static final int DEFAULT_SHARED_LIMIT = 48 * 1024;

    private static final double GIB = 1024.0 * 1024 * 1024;
    /** cuModuleLoadData's answers for a fatbin without code for this GPU: compile the source with NVRTC instead. */
    private static final Set<Integer> NO_CODE_FOR_THIS_GPU = Set.of(
            cudart.CUDA_ERROR_NO_BINARY_FOR_GPU,
            cudart.CUDA_ERROR_INVALID_PTX,
            cudart.CUDA_ERROR_UNSUPPORTED_PTX_VERSION,
            cudart.CUDA_ERROR_JIT_COMPILER_NOT_FOUND);
    /** Which device's context each thread has made current (a token per device, so a thread holds no device). */
    private static final ThreadLocal<Object> CURRENT = new ThreadLocal<>();

    private final int ordinal;
    private final int device;
    private final GemmPrecision precision;
    private final String name;
    private final int ccMajor;
    private final int ccMinor;
    private final long totalBytes;
    private final String label;
    private final NvrtcCache nvrtcCache;
    private final Object contextToken = new Object();

    private CUctx_st context;
    private CUstream_st stream;
    private cublasContext cublasHandle;
    private final Staging[] staging = {new Staging(), new Staging()};
    private int nextStaging;
    private final Map<String, CUmod_st> modules = new LinkedHashMap<>();
    private final Map<String, Kernel> kernels = new HashMap<>();
    /** Launch parameters: 8-byte slots (one per argument, read through three typed views) and pointers to them. */
    private LongPointer paramSlots;

    private IntPointer paramInts;
    private FloatPointer paramFloats;
    private PointerPointer<Pointer> params;
    private int paramCapacity;
    private FloatPointer alphaHost;
    private FloatPointer betaHost;
    private final DevicePointer gemmA = new DevicePointer();
    private final DevicePointer gemmB = new DevicePointer();
    private final DevicePointer gemmC = new DevicePointer();
    private CUDA_MEMCPY2D_v2 copy2dDescriptor;
    private boolean nvrtcOnly;
    private boolean closed;

    /** A pinned host buffer for staging copies, and the event after its last queued copy. */
    private static final class Staging {
        Pointer host;
        long bytes;
        CUevent_st event;
        boolean pending;
    }

    /** A loaded kernel: its handle, its parameters' sizes (null when the driver cannot tell) and shared opt-in. */
    private static final class Kernel {
        final CUfunc_st function;
        final int[] paramSizes;
        int sharedOptIn = DEFAULT_SHARED_LIMIT;

        Kernel(CUfunc_st function, int[] paramSizes) {
            this.function = function;
            this.paramSizes = paramSizes;
        }
    }

    /** A device address as a JavaCPP pointer, for the cuBLAS arguments typed {@code void*}. */
    private static final class DevicePointer extends Pointer {
        DevicePointer at(long deviceAddress) {
            this.address = deviceAddress;
            return this;
        }
    }

    /** CUDA device {@code ordinal} (an index under CUDA_VISIBLE_DEVICES); the NVRTC cache in its default folder. */
    public static CudaDriverDevice open(int ordinal, GemmPrecision precision) {
        return open(ordinal, precision, NvrtcCache.defaultDir());
    }

    /**
     * CUDA device {@code ordinal}, its NVRTC fallback caching compiled kernels in {@code nvrtcCacheDir}.
     *
     * @throws IllegalStateException    when the NVIDIA driver, the CUDA 13 libraries or the JavaCPP natives cannot be
     *                                  loaded (the message names the missing library), or no CUDA device is visible
     * @throws IllegalArgumentException when there is no device {@code ordinal} (the message gives the count)
     * @throws CudaException            when a driver or cuBLAS call fails
     */
    public static CudaDriverDevice open(int ordinal, GemmPrecision precision, Path nvrtcCacheDir) {
        if (ordinal < 0) {
            throw new IllegalArgumentException("CUDA device ordinal " + ordinal + " is negative");
        }
        Objects.requireNonNull(precision, "precision");
        Objects.requireNonNull(nvrtcCacheDir, "nvrtcCacheDir");
        bind(cudart.class, "the CUDA driver API binding (JavaCPP's jnicudart)");
        int init = cudart.cuInit(0);
        if (init == cudart.CUDA_ERROR_NO_DEVICE
                || init == cudart.CUDA_ERROR_STUB_LIBRARY
                || init == cudart.CUDA_ERROR_SYSTEM_DRIVER_MISMATCH
                || init == cudart.CUDA_ERROR_COMPAT_NOT_SUPPORTED_ON_DEVICE) {
            CudaException cause = driverError(init, "cuInit", "initialising the CUDA driver");
            throw new IllegalStateException(
                    "CUDA is not usable on this machine: " + cause.getMessage() + visibleDevices() + ". " + NEEDS + ".",
                    cause);
        }
        check(init, "cuInit", "initialising the CUDA driver");
        int[] count = new int[1];
        check(cudart.cuDeviceGetCount(count), "cuDeviceGetCount", "counting the CUDA devices");
        if (ordinal >= count[0]) {
            throw new IllegalArgumentException("there is no CUDA device " + ordinal + ": this machine shows " + count[0]
                    + " CUDA device" + (count[0] == 1 ? "" : "s") + (count[0] > 0 ? " (0.." + (count[0] - 1) + ")" : "")
                    + visibleDevices());
        }
        // cuBLAS's binding before anything is allocated: a missing libcublas.so.13 fails here, with its name
        bind(cublas.class, "the cuBLAS binding (JavaCPP's jnicublas)");
        return new CudaDriverDevice(ordinal, precision, new NvrtcCache(nvrtcCacheDir));
    }

    private CudaDriverDevice(int ordinal, GemmPrecision precision, NvrtcCache nvrtcCache) {
        this.ordinal = ordinal;
        this.precision = precision;
        this.nvrtcCache = nvrtcCache;
        int[] dev = new int[1];
        check(cudart.cuDeviceGet(dev, ordinal), "cuDeviceGet", "getting CUDA device " + ordinal);
        this.device = dev[0];
        byte[] nameBytes = new byte[256];
        check(
                cudart.cuDeviceGetName(nameBytes, nameBytes.length, device),
                "cuDeviceGetName",
                "reading the name of CUDA device " + ordinal);
        this.name = cString(nameBytes);
        this.ccMajor = attribute(cudart.CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR, "compute capability (major)");
        this.ccMinor = attribute(cudart.CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR, "compute capability (minor)");
        try (SizeTPointer total = new SizeTPointer(1)) {
            check(
                    cudart.cuDeviceTotalMem(total, device),
                    "cuDeviceTotalMem",
                    "reading the memory size of CUDA device " + ordinal);
            this.totalBytes = total.get();
        }
        this.label = describe();
        boolean ready = false;
        try {
            CUctx_st ctx = new CUctx_st();
            check(
                    cudart.cuDevicePrimaryCtxRetain(ctx, device),
                    "cuDevicePrimaryCtxRetain",
                    "retaining the primary context of " + label);
            context = ctx;
            makeCurrent();
            CUstream_st s = new CUstream_st();
            check(
                    cudart.cuStreamCreate(s, cudart.CU_STREAM_NON_BLOCKING),
                    "cuStreamCreate",
                    "creating the stream of " + label);
            stream = s;
            for (Staging slot : staging) {
                CUevent_st event = new CUevent_st();
                check(
                        cudart.cuEventCreate(event, cudart.CU_EVENT_DISABLE_TIMING),
                        "cuEventCreate",
                        "creating a staging event on " + label);
                slot.event = event;
            }
            cublasContext handle = new cublasContext();
            checkCublas(cublas.cublasCreate_v2(handle), "cublasCreate_v2", "creating the cuBLAS handle of " + label);
            cublasHandle = handle;
            checkCublas(
                    cublas.cublasSetStream_v2(handle, stream),
                    "cublasSetStream_v2",
                    "putting cuBLAS on the stream of " + label);
            checkCublas(
                    cublas.cublasSetPointerMode_v2(handle, cublas.CUBLAS_POINTER_MODE_HOST),
                    "cublasSetPointerMode_v2",
                    "setting host alpha/beta on " + label);
            checkCublas(
                    cublas.cublasSetMathMode(handle, cublas.CUBLAS_DEFAULT_MATH),
                    "cublasSetMathMode",
                    "setting cuBLAS's default math mode on " + label);
            alphaHost = new FloatPointer(1);
            betaHost = new FloatPointer(1);
            copy2dDescriptor = new CUDA_MEMCPY2D_v2();
            growParams(16);
            ready = true;
        } finally {
            if (!ready) {
                closed = true;
                try {
                    release();
                } catch (RuntimeException e) {
                    // the first failure is the one that matters
                }
            }
        }
    }

    // ---- the device ----------------------------------------------------------------------------------------------

    private int attribute(int attribute, String what) {
        int[] value = new int[1];
        check(
                cudart.cuDeviceGetAttribute(value, attribute, device),
                "cuDeviceGetAttribute",
                "reading the " + what + " of CUDA device " + ordinal);
        return value[0];
    }

    /** e.g. "NVIDIA H200 (sm_90, 139.8 GiB, CUDA device 0)". */
    @Override
    public String describe() {
        return String.format(Locale.ROOT, "%s (%s, %.1f GiB, CUDA device %d)", name, arch(), totalBytes / GIB, ordinal);
    }

    public int ordinal() {
        return ordinal;
    }

    public GemmPrecision precision() {
        return precision;
    }

    /** The real architecture NVRTC compiles for, e.g. sm_90. */
    public String arch() {
        return "sm_" + ccMajor + ccMinor;
    }

    public long totalBytes() {
        return totalBytes;
    }

    /** Makes this device's context current on the calling thread, unless it already is. */
    private void enter() {
        if (closed) {
            throw new IllegalStateException(label + " is closed");
        }
        makeCurrent();
    }

    private void makeCurrent() {
        if (CURRENT.get() != contextToken) {
            check(
                    cudart.cuCtxSetCurrent(context),
                    "cuCtxSetCurrent",
                    "making the context of " + label + " current on thread "
                            + Thread.currentThread().getName());
            CURRENT.set(contextToken);
        }
    }

    @Override
    public synchronized long allocate(long bytes) {
        if (bytes <= 0) {
            throw new IllegalArgumentException("allocation of " + bytes + " bytes: must be positive");
        }
        enter();
        long[] pointer = new long[1];
        int result = cudart.cuMemAlloc(pointer, bytes);
        if (result == cudart.CUDA_ERROR_OUT_OF_MEMORY) {
            throw new DeviceOutOfMemoryException(outOfMemory(bytes), bytes);
        }
        check(result, "cuMemAlloc", "allocating " + bytes + " bytes on " + label);
        return pointer[0];
    }

    private String outOfMemory(long bytes) {
        StringBuilder m = new StringBuilder(label)
                .append(" is out of memory: cannot allocate ")
                .append(bytes)
                .append(" bytes (")
                .append(String.format(Locale.ROOT, "%.2f GiB", bytes / GIB))
                .append(')');
        try (SizeTPointer free = new SizeTPointer(1);
                SizeTPointer total = new SizeTPointer(1)) {
            if (cudart.cuMemGetInfo(free, total) == cudart.CUDA_SUCCESS) {
                m.append(String.format(
                        Locale.ROOT,
                        "; %.2f GiB free of %.2f GiB (%d of %d bytes)",
                        free.get() / GIB,
                        total.get() / GIB,
                        free.get(),
                        total.get()));
            }
        }
        return m.toString();
    }

    /** Frees an allocation; after {@link #close} a no-op (the allocations went with the context). */
    @Override
    public synchronized void free(long pointer) {
        if (pointer == 0 || closed) {
            return;
        }
        enter();
        check(
                cudart.cuMemFree(pointer),
                "cuMemFree",
                "freeing device memory at 0x" + Long.toHexString(pointer) + " on " + label);
    }

    @Override
    public synchronized void upload(long dst, float[] src, int offset, int count) {
        Objects.checkFromIndexSize(offset, count, src.length);
        if (count == 0) {
            return;
        }
        enter();
        long total = 4L * count;
        for (long done = 0; done < total; ) {
            long n = Math.min(total - done, STAGING_CHUNK_BYTES);
            Staging slot = stagingFor(n);
            new FloatPointer(slot.host).capacity(n / 4).put(src, offset + (int) (done / 4), (int) (n / 4));
            queueUpload(dst + done, slot, n);
            done += n;
        }
    }

    @Override
    public synchronized void upload(long dst, int[] src) {
        if (src.length == 0) {
            return;
        }
        enter();
        long total = 4L * src.length;
        for (long done = 0; done < total; ) {
            long n = Math.min(total - done, STAGING_CHUNK_BYTES);
            Staging slot = stagingFor(n);
            new IntPointer(slot.host).capacity(n / 4).put(src, (int) (done / 4), (int) (n / 4));
            queueUpload(dst + done, slot, n);
            done += n;
        }
    }

    private void queueUpload(long dst, Staging slot, long bytes) {
        check(
                cudart.cuMemcpyHtoDAsync(dst, slot.host, bytes, stream),
                "cuMemcpyHtoDAsync",
                "queueing an upload of " + bytes + " bytes to 0x" + Long.toHexString(dst) + " on " + label);
        check(cudart.cuEventRecord(slot.event, stream), "cuEventRecord", "recording a staging event on " + label);
        slot.pending = true;
    }

    @Override
    public synchronized void download(long src, float[] dst) {
        enter();
        if (dst.length == 0) {
            synchronizeStream("waiting for the queued work before an empty download");
            return;
        }
        long total = 4L * dst.length;
        for (long done = 0; done < total; ) {
            long n = Math.min(total - done, STAGING_CHUNK_BYTES);
            Staging slot = stagingFor(n);
            check(
                    cudart.cuMemcpyDtoHAsync(slot.host, src + done, n, stream),
                    "cuMemcpyDtoHAsync",
                    "queueing a download of " + n + " bytes from 0x" + Long.toHexString(src + done) + " on " + label);
            synchronizeStream("downloading " + n + " bytes from 0x" + Long.toHexString(src + done));
            new FloatPointer(slot.host).capacity(n / 4).get(dst, (int) (done / 4), (int) (n / 4));
            done += n;
        }
    }

    /**
     * The next staging buffer, once its previous copy is done, grown to at least {@code bytes} (at most
     * {@link #STAGING_CHUNK_BYTES}).
     */
    private Staging stagingFor(long bytes) {
        Staging slot = staging[nextStaging];
        nextStaging = (nextStaging + 1) % staging.length;
        if (slot.pending) {
            check(
                    cudart.cuEventSynchronize(slot.event),
                    "cuEventSynchronize",
                    "waiting for a staged copy on " + label + " (an error here may come from any earlier queued work)");
            slot.pending = false;
        }
        if (slot.bytes < bytes) {
            long size = Math.min(STAGING_CHUNK_BYTES, Math.max(bytes, Math.max(STAGING_MIN_BYTES, 2 * slot.bytes)));
            if (slot.host != null) {
                Pointer old = slot.host;
                slot.host = null;
                slot.bytes = 0;
                check(cudart.cuMemFreeHost(old), "cuMemFreeHost", "freeing a pinned staging buffer of " + label);
            }
            Pointer host = new Pointer();
            check(
                    cudart.cuMemAllocHost(host, size),
                    "cuMemAllocHost",
                    "allocating " + size + " bytes of pinned host memory to stage copies for " + label);
            slot.host = host;
            slot.bytes = size;
        }
        return slot;
    }

    private void synchronizeStream(String doing) {
        check(
                cudart.cuStreamSynchronize(stream),
                "cuStreamSynchronize",
                doing + " on " + label + " (an error here may come from any earlier queued kernel, copy or GEMM)");
        for (Staging slot : staging) {
            slot.pending = false;
        }
    }

    @Override
    public synchronized void copy(long dst, long src, long bytes) {
        if (bytes < 0) {
            throw new IllegalArgumentException("copy of " + bytes + " bytes");
        }
        if (bytes == 0) {
            return;
        }
        enter();
        check(
                cudart.cuMemcpyDtoDAsync(dst, src, bytes, stream),
                "cuMemcpyDtoDAsync",
                "queueing a copy of " + bytes + " bytes from 0x" + Long.toHexString(src) + " to 0x"
                        + Long.toHexString(dst) + " on " + label);
    }

    @Override
    public synchronized void copy2d(long dst, long dstPitch, long src, long srcPitch, long widthBytes, long height) {
        if (widthBytes < 0 || height < 0 || dstPitch < widthBytes || srcPitch < widthBytes) {
            throw new IllegalArgumentException("2-D copy of " + height + " rows of " + widthBytes
                    + " bytes with pitches " + srcPitch + " (source) and " + dstPitch
                    + " (destination): the pitches must be at least the width");
        }
        if (widthBytes == 0 || height == 0) {
            return;
        }
        enter();
        CUDA_MEMCPY2D_v2 d = copy2dDescriptor;
        d.srcXInBytes(0)
                .srcY(0)
                .srcMemoryType(cudart.CU_MEMORYTYPE_DEVICE)
                .srcHost(null)
                .srcDevice(src)
                .srcArray(null)
                .srcPitch(srcPitch);
        d.dstXInBytes(0)
                .dstY(0)
                .dstMemoryType(cudart.CU_MEMORYTYPE_DEVICE)
                .dstHost(null)
                .dstDevice(dst)
                .dstArray(null)
                .dstPitch(dstPitch);
        d.WidthInBytes(widthBytes).Height(height);
        check(
                cudart.cuMemcpy2DAsync(d, stream),
                "cuMemcpy2DAsync",
                "queueing a 2-D copy of " + height + " rows of " + widthBytes + " bytes (pitches " + srcPitch + " -> "
                        + dstPitch + ") on " + label);
    }

    // ---- kernels -------------------------------------------------------------------------------------------------

    @Override
    public synchronized void launch(String module, String kernel, LaunchGeometry geometry, KernelArgs args) {
        enter();
        Kernel k = kernel(module, kernel);
        int n = args.size();
        if (k.paramSizes != null) {
            checkArguments(module, kernel, k.paramSizes, args);
        }
        if (n > paramCapacity) {
            growParams(Math.max(n, 2 * paramCapacity));
        }
        for (int i = 0; i < n; i++) {
            KernelArgs.Arg arg = args.get(i);
            switch (arg.kind()) {
                case POINTER -> paramSlots.put(i, arg.pointer());
                case INT -> paramInts.put(2L * i, arg.intValue());
                case FLOAT -> paramFloats.put(2L * i, arg.floatValue());
                default -> throw new IllegalArgumentException("argument " + i + ": unknown kind " + arg.kind());
            }
        }
        int shared = geometry.sharedBytes();
        if (shared > k.sharedOptIn) {
            check(
                    cudart.cuFuncSetAttribute(
                            k.function, cudart.CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES, shared),
                    "cuFuncSetAttribute",
                    "allowing " + module + "." + kernel + " " + shared + " bytes of dynamic shared memory on " + label);
            k.sharedOptIn = shared;
        }
        check(
                cudart.cuLaunchKernel(
                        k.function,
                        geometry.gridX(),
                        geometry.gridY(),
                        geometry.gridZ(),
                        geometry.blockX(),
                        geometry.blockY(),
                        geometry.blockZ(),
                        shared,
                        stream,
                        params,
                        (PointerPointer<?>) null),
                "cuLaunchKernel",
                "launching " + module + "." + kernel + " (" + geometry + ", " + n + " arguments) on " + label);
    }

    private static void checkArguments(String module, String kernel, int[] sizes, KernelArgs args) {
        if (sizes.length != args.size()) {
            throw new IllegalArgumentException(
                    module + "." + kernel + " takes " + sizes.length + " parameters; the launch passes " + args.size());
        }
        for (int i = 0; i < sizes.length; i++) {
            KernelArgs.Kind kind = args.get(i).kind();
            int bytes = kind == KernelArgs.Kind.POINTER ? 8 : 4;
            if (sizes[i] != bytes) {
                throw new IllegalArgumentException(module + "." + kernel + ": parameter " + i + " is " + sizes[i]
                        + " bytes; the launch passes a " + kind + " (" + bytes + " bytes)");
            }
        }
    }

    /** Room for {@code capacity} launch arguments: 8-byte slots and the pointer array cuLaunchKernel reads. */
    private void growParams(int capacity) {
        LongPointer slots = new LongPointer(capacity);
        PointerPointer<Pointer> pointers = new PointerPointer<>(capacity);
        for (int i = 0; i < capacity; i++) {
            // a raw pointer at slot i, position 0 (PointerPointer.put adds a pointer's position in bytes)
            long slotAddress = slots.address() + 8L * i;
            pointers.put(i, new DevicePointer().at(slotAddress));
        }
        if (paramSlots != null) {
            paramSlots.close();
            params.close();
        }
        paramSlots = slots;
        paramInts = new IntPointer(slots).capacity(2L * capacity);
        paramFloats = new FloatPointer(slots).capacity(2L * capacity);
        params = pointers;
        paramCapacity = capacity;
    }

    private Kernel kernel(String module, String kernel) {
        String key = module + '\0' + kernel;
        Kernel k = kernels.get(key);
        if (k != null) {
            return k;
        }
        CUmod_st mod = module(module);
        CUfunc_st function = new CUfunc_st();
        check(
                cudart.cuModuleGetFunction(function, mod, kernel),
                "cuModuleGetFunction",
                "looking up kernel " + kernel + " (an extern \"C\" __global__ function) in module " + module + " on "
                        + label);
        k = new Kernel(function, paramSizes(function));
        kernels.put(key, k);
        return k;
    }

    /**
     * The sizes in bytes of a kernel's parameters as the driver reports them (loading the module if need be), or null
     * when it does not tell; launches are checked against them.
     */
    synchronized int[] parameterSizes(String module, String kernel) {
        enter();
        int[] sizes = kernel(module, kernel).paramSizes;
        return sizes == null ? null : sizes.clone();
    }

    /** The sizes of a kernel's parameters (cuFuncGetParamInfo), or null when the driver does not tell. */
    private static int[] paramSizes(CUfunc_st function) {
        List<Integer> sizes = new ArrayList<>();
        try (SizeTPointer offset = new SizeTPointer(1);
                SizeTPointer size = new SizeTPointer(1)) {
            for (int i = 0; i < 1024; i++) {
                int result = cudart.cuFuncGetParamInfo(function, i, offset, size);
                if (result == cudart.CUDA_ERROR_INVALID_VALUE) {
                    break; // past the last parameter
                }
                if (result != cudart.CUDA_SUCCESS) {
                    return null;
                }
                sizes.add((int) size.get());
            }
        }
        return sizes.isEmpty()
                ? null
                : sizes.stream().mapToInt(Integer::intValue).toArray();
    }

    private CUmod_st module(String module) {
        CUmod_st loaded = modules.get(module);
        if (loaded != null) {
            return loaded;
        }
        CudaModules.Image image = nvrtcOnly ? null : CudaModules.load(module);
        String whyNvrtc;
        if (image == null) {
            whyNvrtc = "this device was told to compile every module with NVRTC";
        } else if (image.isPresent()) {
            CUmod_st mod = new CUmod_st();
            int result;
            try (BytePointer data = new BytePointer(image.bytes())) {
                result = cudart.cuModuleLoadData(mod, data);
            }
            if (result == cudart.CUDA_SUCCESS) {
                modules.put(module, mod);
                return mod;
            }
            if (!NO_CODE_FOR_THIS_GPU.contains(result)) {
                check(result, "cuModuleLoadData", "loading module " + module + "'s fatbin on " + label);
            }
            whyNvrtc = "its fatbin has no code for " + arch() + " that this driver can load (cuModuleLoadData: "
                    + errorName(result) + ", " + errorString(result) + ")";
        } else {
            whyNvrtc = image.missingReason();
        }
        CUmod_st mod = loadWithNvrtc(module, whyNvrtc);
        modules.put(module, mod);
        return mod;
    }

    /**
     * From now on, loads every module not yet loaded from its source with NVRTC (through the cache), ignoring the
     * fatbins: for testing the fallback on a GPU that the fatbins have code for.
     */
    synchronized void useNvrtcOnly() {
        nvrtcOnly = true;
    }

    /** The NVRTC cache this device compiles through. */
    public NvrtcCache nvrtcCache() {
        return nvrtcCache;
    }

    /** The NVRTC fallback: the module's source compiled for this GPU's architecture, through the disk cache. */
    private CUmod_st loadWithNvrtc(String module, String whyNvrtc) {
        byte[] source = CudaModules.source(module)
                .orElseThrow(() -> new IllegalStateException("cannot load CUDA"
                        + " module " + module + " on " + label + ": " + whyNvrtc
                        + "; and there is no source to compile with"
                        + " NVRTC: resource " + CudaModules.sourcePath(module) + " is absent"));
        bind(
                nvrtc.class,
                "NVRTC (JavaCPP's jninvrtc), needed to compile module " + module + " for " + arch() + " because "
                        + whyNvrtc);
        int[] major = new int[1];
        int[] minor = new int[1];
        checkNvrtc(nvrtc.nvrtcVersion(major, minor), "nvrtcVersion", "reading NVRTC's version");
        String version = major[0] + "." + minor[0];
        List<String> options = NvrtcCompiler.nvrtcOptions(arch());
        String key = NvrtcCache.key(module, source, options, arch(), version);
        String doing =
                "compiling module " + module + " for " + arch() + " with NVRTC " + version + " (" + whyNvrtc + ")";
        boolean[] compiled = {false};
        NvrtcCache.Compiler compiler = () -> {
            compiled[0] = true;
            return NvrtcCompiler.nvrtcCompile(module, source, options, doing);
        };
        byte[] cubin = nvrtcCache.getOrCompile(key, compiler);
        CUmod_st mod = new CUmod_st();
        int result = loadData(mod, cubin);
        if (result != cudart.CUDA_SUCCESS && !compiled[0]) {
            // a cached CUBIN the driver refuses (from another driver, say): compile afresh
            nvrtcCache.invalidate(key);
            cubin = nvrtcCache.getOrCompile(key, compiler);
            result = loadData(mod, cubin);
        }
        check(
                result,
                "cuModuleLoadData",
                "loading module " + module + "'s CUBIN from NVRTC " + version + " for " + arch() + " on " + label);
        return mod;
    }

    private static int loadData(CUmod_st mod, byte[] image) {
        try (BytePointer data = new BytePointer(image)) {
            return cudart.cuModuleLoadData(mod, data);
        }
    }

    // ---- GEMM ----------------------------------------------------------------------------------------------------

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
        if (m < 0 || n < 0 || k < 0 || batch < 0) {
            throw new IllegalArgumentException(
                    "GEMM m = " + m + ", n = " + n + ", k = " + k + ", batch = " + batch + ": must not be negative");
        }
        if (m == 0 || n == 0 || batch == 0) {
            return;
        }
        enter();
        alphaHost.put(0, alpha);
        betaHost.put(0, beta);
        int computeType =
                precision == GemmPrecision.BF16 ? cublas.CUBLAS_COMPUTE_32F_FAST_16BF : cublas.CUBLAS_COMPUTE_32F;
        int opA = transA ? cublas.CUBLAS_OP_T : cublas.CUBLAS_OP_N;
        int opB = transB ? cublas.CUBLAS_OP_T : cublas.CUBLAS_OP_N;
        int status = cublas.cublasGemmStridedBatchedEx(
                cublasHandle,
                opA,
                opB,
                m,
                n,
                k,
                alphaHost,
                gemmA.at(a),
                cudart.CUDA_R_32F,
                lda,
                strideA,
                gemmB.at(b),
                cudart.CUDA_R_32F,
                ldb,
                strideB,
                betaHost,
                gemmC.at(c),
                cudart.CUDA_R_32F,
                ldc,
                strideC,
                batch,
                computeType,
                cublas.CUBLAS_GEMM_DEFAULT);
        if (status != cublas.CUBLAS_STATUS_SUCCESS) {
            checkCublas(
                    status,
                    "cublasGemmStridedBatchedEx",
                    String.format(
                            Locale.ROOT,
                            "queueing a %s GEMM"
                                    + " op(A)%s [%d x %d] op(B)%s [%d x %d] x %d (lda %d, ldb %d, ldc %d, strides %d, %d, %d)"
                                    + " on %s",
                            precision.optionName(),
                            transA ? "=A^T" : "=A",
                            m,
                            k,
                            transB ? "=B^T" : "=B",
                            k,
                            n,
                            batch,
                            lda,
                            ldb,
                            ldc,
                            strideA,
                            strideB,
                            strideC,
                            label));
        }
    }

    @Override
    public synchronized void synchronize() {
        enter();
        synchronizeStream("waiting for the queued work");
    }

    // ---- closing -------------------------------------------------------------------------------------------------

    /**
     * Waits for the queued work, frees the staging buffers, destroys the cuBLAS handle, unloads the modules, destroys
     * the stream and releases the primary context. Idempotent; device allocations not freed go with the context when
     * nothing else holds it.
     */
    @Override
    public synchronized void close() {
        if (closed) {
            return;
        }
        closed = true;
        release();
    }

    private void release() {
        List<RuntimeException> errors = new ArrayList<>();
        if (context != null) {
            attempt(errors, this::makeCurrent);
        }
        if (stream != null) {
            attempt(
                    errors,
                    () -> check(
                            cudart.cuStreamSynchronize(stream),
                            "cuStreamSynchronize",
                            "waiting for the queued work before closing " + label));
        }
        for (Staging slot : staging) {
            Pointer host = slot.host;
            CUevent_st event = slot.event;
            slot.host = null;
            slot.bytes = 0;
            slot.event = null;
            slot.pending = false;
            if (host != null) {
                attempt(
                        errors,
                        () -> check(
                                cudart.cuMemFreeHost(host), "cuMemFreeHost", "freeing a staging buffer of " + label));
            }
            if (event != null) {
                attempt(
                        errors,
                        () -> check(
                                cudart.cuEventDestroy(event),
                                "cuEventDestroy",
                                "destroying a staging event of " + label));
            }
        }
        if (cublasHandle != null) {
            cublasContext handle = cublasHandle;
            cublasHandle = null;
            attempt(
                    errors,
                    () -> checkCublas(
                            cublas.cublasDestroy_v2(handle),
                            "cublasDestroy_v2",
                            "destroying the cuBLAS handle of " + label));
        }
        for (Map.Entry<String, CUmod_st> m : modules.entrySet()) {
            attempt(
                    errors,
                    () -> check(
                            cudart.cuModuleUnload(m.getValue()),
                            "cuModuleUnload",
                            "unloading module " + m.getKey() + " from " + label));
        }
        modules.clear();
        kernels.clear();
        if (stream != null) {
            CUstream_st s = stream;
            stream = null;
            attempt(
                    errors,
                    () -> check(cudart.cuStreamDestroy(s), "cuStreamDestroy", "destroying the stream of " + label));
        }
        if (context != null) {
            context = null;
            attempt(
                    errors,
                    () -> check(
                            cudart.cuDevicePrimaryCtxRelease(device),
                            "cuDevicePrimaryCtxRelease",
                            "releasing the primary context of " + label));
            if (CURRENT.get() == contextToken) {
                CURRENT.remove();
            }
        }
        for (Pointer p : new Pointer[] {alphaHost, betaHost, copy2dDescriptor, params, paramSlots}) {
            if (p != null) {
                p.close();
            }
        }
        alphaHost = null;
        betaHost = null;
        copy2dDescriptor = null;
        params = null;
        paramSlots = null;
        paramInts = null;
        paramFloats = null;
        paramCapacity = 0;
        if (!errors.isEmpty()) {
            RuntimeException first = errors.get(0);
            for (int i = 1; i < errors.size(); i++) {
                first.addSuppressed(errors.get(i));
            }
            throw first;
        }
    }

    private static void attempt(List<RuntimeException> errors, Runnable step) {
        try {
            step.run();
        } catch (RuntimeException e) {
            errors.add(e);
        }
    }

    @Override
    public String toString() {
        return "CudaDriverDevice[" + label + ", " + precision.optionName() + (closed ? ", closed" : "") + "]";
    }
}
