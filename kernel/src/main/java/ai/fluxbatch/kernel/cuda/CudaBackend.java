package ai.fluxbatch.kernel.cuda;

import ai.fluxbatch.kernel.Backend;
import ai.fluxbatch.kernel.HfTernaryPacking;
import ai.fluxbatch.kernel.OpChecks;
import ai.fluxbatch.kernel.Shapes;
import ai.fluxbatch.kernel.Tensor;
import ai.fluxbatch.kernel.TensorScope;
import java.util.Arrays;

/**
 * The backend on an NVIDIA GPU: tensors live in device memory from upload to download, every operation is queued on
 * the device's one stream (no host round trip between operations), memory comes from a caching pool that hands the
 * same blocks back step after step, and {@link #openScope()} frees a block's intermediates when it ends. Dense
 * products (linear layers, convolutions as im2col, attention over heads of more than 128 features) go to cuBLAS; the
 * 1.58-bit products to {@code ternary_matmul.cu}; everything else, attention over smaller heads included (the flash
 * kernels, see {@link AttentionPath}), to {@code fluxbatch_ops.cu} (see {@link OpsKernels}). The reverse-mode
 * operations split the same way (cuBLAS for the dense gradients and attention's, the ternary input gradient's kernel
 * below {@link TernaryLaunch#DENSE_FROM_M} rows), and every sum over tokens is {@link OpsKernels#SUM_ROWS}, in one
 * fixed order: the same bits on every run.
 */
public final class CudaBackend implements Backend {
    /**
     * Workspace caps: attention scores of a chunk of heads on the GEMM path (attentionBackward keeps two buffers a
     * head: probabilities and their gradients; the flash forward takes none), and im2col columns of a chunk of
     * positions.
     */
    public record Workspace(long attentionBytes, long im2colBytes) {
        public static final Workspace DEFAULT = new Workspace(1L << 30, 512L << 20);
    }

    /**
     * How {@link #attention} computes. {@link #FLASH} (the default): heads of up to {@link OpsKernels#FLASH_MAX_HEAD}
     * features through the flash kernels ({@link OpsKernels#FLASH_ATTENTION_D32} ...: tiled, online softmax in float32,
     * no score matrix, one launch per call), larger heads (FLUX.1's autoencoder: one head of 512) as {@link #GEMM}.
     * {@link #GEMM}: per sample and chunk of heads, a cuBLAS scores GEMM, {@link OpsKernels#SOFTMAX_ROWS} and a second
     * GEMM, the scores of a chunk in the attention workspace ({@link Workspace#attentionBytes()}); it follows the
     * device's {@link GemmPrecision} (BF16 tensor cores), where the flash kernels are float32 on the SIMT cores
     * whatever the precision.
     *
     * <p>Unverified on a real GPU (none was at hand when the kernels were written; they are checked on the host
     * emulation and, where a GPU is, by {@code CudaFlashAttentionOnGpuTest}): their speed against {@link #GEMM}
     * (at FLUX.1-dev's 4,608 tokens the GEMM path at BF16 may well be faster), occupancy (ptxas: 96 to 156 registers
     * a thread, 21 to 37 KiB of shared memory a block of 128 threads) and bank conflicts. {@code CudaAttentionBenchmark}
     * times both on a GPU; {@code -Dfluxbatch.cuda.attention=gemm} switches a backend built without an explicit path
     * back to GEMM.
     */
    public enum AttentionPath {
        FLASH,
        GEMM;

        /** The system property naming the path of a backend built without one: {@code flash} or {@code gemm}. */
        public static final String PROPERTY = "fluxbatch.cuda.attention";

        /** {@link #PROPERTY}'s path, {@link #FLASH} when it is not set. */
        public static AttentionPath fromSystemProperty() {
            String value = System.getProperty(PROPERTY);
            if (value == null || value.isBlank() || value.trim().equalsIgnoreCase("flash")) {
                return FLASH;
            }
            if (value.trim().equalsIgnoreCase("gemm")) {
                return GEMM;
            }
            throw new IllegalArgumentException(
                    "-D" + PROPERTY + "=" + value + ": expected flash (the default) or gemm (cuBLAS + softmax)");
        }
    }

    private static final String OPS = OpsKernels.MODULE;
    private static final String[] AFFINE = {"weight", "bias"};

    private final Device device;
    private final DeviceMemoryPool pool;
    private final DeviceScopes scopes = new DeviceScopes();
    private final Workspace workspace;
    private final AttentionPath attentionPath;

    /** The default workspace; attention as {@link AttentionPath#fromSystemProperty()} says (flash by default). */
    public CudaBackend(Device device) {
        this(device, Workspace.DEFAULT);
    }

    /** Attention as {@link AttentionPath#fromSystemProperty()} says (flash by default). */
    public CudaBackend(Device device, Workspace workspace) {
        this(device, workspace, AttentionPath.fromSystemProperty());
    }

    public CudaBackend(Device device, Workspace workspace, AttentionPath attentionPath) {
        this.device = device;
        this.pool = new DeviceMemoryPool(device);
        this.workspace = workspace;
        this.attentionPath = attentionPath;
    }

    /** The backend on CUDA device {@code ordinal} (an index under CUDA_VISIBLE_DEVICES). */
    public static CudaBackend open(int ordinal, GemmPrecision precision) {
        return new CudaBackend(CudaDriverDevice.open(ordinal, precision));
    }

    @Override
    public String name() {
        return "cuda(" + device.describe() + ")";
    }

    public Device device() {
        return device;
    }

    public AttentionPath attentionPath() {
        return attentionPath;
    }

    public DeviceMemoryPool.Stats memory() {
        return pool.stats();
    }

    @Override
    public TensorScope openScope() {
        return scopes.open();
    }

    @Override
    public Tensor retain(Tensor t) {
        scopes.detach(t);
        return t;
    }

    private DeviceStorage storage(long bytes) {
        DeviceStorage s = new DeviceStorage(pool, bytes);
        scopes.register(s);
        return s;
    }

    private CudaTensor empty(int... shape) {
        long n = Shapes.numel(shape);
        if (n > Integer.MAX_VALUE) {
            throw new IllegalArgumentException("tensor " + Tensor.describe(shape) + " has " + n
                    + " elements; the CUDA kernels index at most " + Integer.MAX_VALUE);
        }
        return new CudaTensor(storage(4 * n), shape);
    }

    private CudaTensor cuda(Tensor t) {
        if (t instanceof CudaTensor c) {
            if (c.storage.pool() != pool) {
                throw new IllegalArgumentException("tensor " + t + " belongs to another CUDA backend");
            }
            return c;
        }
        if (t instanceof CudaTernaryTensor) {
            throw new IllegalArgumentException("a ternary weight " + t + " can only be used by ternaryLinear;"
                    + " this operation needs a float tensor");
        }
        if (t instanceof CudaBf16Tensor) {
            throw new IllegalArgumentException("a bfloat16 weight " + t + " can only be used by linear (as its weight),"
                    + " embedding (as its table) and download; this operation needs a float tensor");
        }
        throw new IllegalArgumentException("the CUDA backend got a tensor of another backend: " + t);
    }

    /** {@code t} as a bfloat16 weight of this backend, or null when it is another kind of tensor. */
    private CudaBf16Tensor bf16(Tensor t) {
        if (t instanceof CudaBf16Tensor w) {
            if (w.storage.pool() != pool) {
                throw new IllegalArgumentException("tensor " + t + " belongs to another CUDA backend");
            }
            return w;
        }
        return null;
    }

    private long ptr(Tensor t) {
        return cuda(t).pointer();
    }

    private static int n(Tensor t) {
        return (int) t.numel();
    }

    @Override
    public Tensor upload(float[] data, int... shape) {
        if (Shapes.numel(shape) != data.length) {
            throw new IllegalArgumentException(
                    "upload: " + data.length + " values do not fill shape " + Tensor.describe(shape));
        }
        CudaTensor t = empty(shape);
        if (data.length > 0) {
            device.upload(t.pointer(), data, 0, data.length);
        }
        return t;
    }

    /**
     * Kept as uploaded, two bytes a value; {@link #linear} widens the whole weight into a float32 scratch for one GEMM
     * ({@link OpsKernels#BF16_WIDEN}, freed when the product is queued), {@link #embedding} the rows it gathers.
     */
    @Override
    public Tensor uploadBf16(short[] bits, int... shape) {
        long n = Shapes.numel(shape);
        if (n != bits.length) {
            throw new IllegalArgumentException(
                    "uploadBf16: " + bits.length + " values do not fill shape " + Tensor.describe(shape));
        }
        int[] words = new int[(bits.length + 1) / 2];
        for (int i = 0; i < bits.length; i++) {
            words[i / 2] |= (bits[i] & 0xFFFF) << (16 * (i % 2));
        }
        CudaBf16Tensor t = new CudaBf16Tensor(storage(4L * Math.max(1, words.length)), shape);
        if (words.length > 0) {
            device.upload(t.pointer(), words);
        }
        return t;
    }

    /** A bfloat16 weight widened to float32 into {@code scratch} ({@code 4 numel} bytes). */
    private void widen(CudaBf16Tensor w, long scratch) {
        long n = Shapes.numel(w.shapeRef());
        launch(
                OpsKernels.BF16_WIDEN,
                OpsKernels.elementwise(n),
                new KernelArgs().ptr(w.pointer()).ptr(scratch).i((int) n));
    }

    @Override
    public float[] download(Tensor t) {
        CudaBf16Tensor w = bf16(t);
        if (w != null) {
            float[] out = new float[(int) Shapes.numel(w.shapeRef())];
            if (out.length > 0) {
                DeviceStorage scratch = storage(4L * out.length);
                try {
                    widen(w, scratch.pointer("widened bfloat16 weight"));
                    device.download(scratch.pointer("widened bfloat16 weight"), out);
                } finally {
                    scratch.release();
                }
            }
            return out;
        }
        float[] out = new float[n(cuda(t))];
        if (out.length > 0) {
            device.download(ptr(t), out);
        }
        return out;
    }

    @Override
    public Tensor reshape(Tensor t, int... shape) {
        CudaTensor c = cuda(t);
        if (Shapes.numel(shape) != c.numel()) {
            throw new IllegalArgumentException("reshape: " + c + " has " + c.numel() + " elements, shape "
                    + Tensor.describe(shape) + " needs " + Shapes.numel(shape));
        }
        c.pointer();
        return new CudaTensor(c.storage, shape);
    }

    private void launch(String kernel, LaunchGeometry geometry, KernelArgs args) {
        device.launch(OPS, kernel, geometry, args);
    }

    private Tensor unary(String kernel, Tensor x) {
        CudaTensor out = empty(cuda(x).shapeRef());
        int n = n(out);
        if (n > 0) {
            launch(
                    kernel,
                    OpsKernels.elementwise(n),
                    new KernelArgs().ptr(ptr(x)).ptr(out.pointer()).i(n));
        }
        return out;
    }

    private Tensor binary(String op, String kernel, Tensor a, Tensor b) {
        Shapes.requireSame(op, cuda(a).shapeRef(), cuda(b).shapeRef());
        CudaTensor out = empty(cuda(a).shapeRef());
        int n = n(out);
        if (n > 0) {
            launch(
                    kernel,
                    OpsKernels.elementwise(n),
                    new KernelArgs().ptr(ptr(a)).ptr(ptr(b)).ptr(out.pointer()).i(n));
        }
        return out;
    }

    /**
     * {@code y [M, N] = x [M, K] . w [N, K]^T}. Column-major, y is {@code y^T [N, M]}, x is {@code x^T [K, M]} and w
     * is {@code w^T [K, N]}, so cuBLAS computes {@code y^T = (w^T)^T x^T}. K = 0 writes zeros (beta = 0).
     */
    private void matmulNt(long x, long w, long y, int m, int n, int k) {
        device.gemm(true, false, n, m, k, 1f, w, k, 0, x, k, 0, 0f, y, n, 0, 1);
    }

    private void addBiasRows(CudaTensor out, Tensor bias, int rows, int cols) {
        Shapes.requireEqual("linear", "bias length", n(cuda(bias)), cols);
        launch(
                OpsKernels.ADD_BIAS_ROWS,
                OpsKernels.elementwise((long) rows * cols),
                new KernelArgs().ptr(out.pointer()).ptr(ptr(bias)).i(rows).i(cols));
    }

    @Override
    public Tensor linear(Tensor x, Tensor weight, Tensor bias) {
        CudaBf16Tensor w16 = bf16(weight);
        CudaTensor xt = cuda(x);
        int[] ws = w16 != null ? w16.shapeRef() : cuda(weight).shapeRef();
        Shapes.requireRank("linear", "weight", ws, 2);
        int n = ws[0], k = ws[1];
        Shapes.requireEqual("linear", "input features", Shapes.last(xt.shapeRef()), k);
        if (bias != null) {
            Shapes.requireEqual("linear", "bias length", n(cuda(bias)), n);
        }
        int m = Shapes.rows(xt.shapeRef());
        CudaTensor out = empty(Shapes.withLast(xt.shapeRef(), n));
        if (m > 0 && n > 0) {
            if (w16 == null) {
                matmulNt(xt.pointer(), ptr(weight), out.pointer(), m, n, k);
            } else if (k == 0) { // writes zeros; nothing to widen
                matmulNt(xt.pointer(), w16.pointer(), out.pointer(), m, n, k);
            } else {
                DeviceStorage widened = storage(4L * n * k);
                try {
                    long scratch = widened.pointer("widened bfloat16 weight");
                    widen(w16, scratch);
                    matmulNt(xt.pointer(), scratch, out.pointer(), m, n, k);
                } finally {
                    widened.release();
                }
            }
            if (bias != null) {
                addBiasRows(out, bias, m, n);
            }
        }
        return out;
    }

    @Override
    public Tensor uploadTernary(byte[] packed, int out, int in, float[] scale) {
        int[] words = GpuTernaryLayout.fromHfPacked(packed, out, in);
        HfTernaryPacking.checkScale(scale, out, in);
        DeviceStorage codes = storage(4L * words.length);
        DeviceStorage scales = storage(4L * out);
        CudaTernaryTensor t = new CudaTernaryTensor(out, in, codes, scales);
        if (words.length > 0) {
            device.upload(codes.pointer(t), words);
        }
        if (out > 0) {
            device.upload(scales.pointer(t), scale, 0, out);
        }
        return t;
    }

    private CudaTernaryTensor ternary(String op, Tensor t) {
        if (!(t instanceof CudaTernaryTensor w) || w.codes.pool() != pool) {
            throw new IllegalArgumentException(
                    op + ": weight must be a ternary tensor made by this backend's" + " uploadTernary, got " + t);
        }
        return w;
    }

    @Override
    public Tensor ternaryLinear(Tensor x, Tensor ternaryWeight, Tensor bias) {
        CudaTernaryTensor w = ternary("ternaryLinear", ternaryWeight);
        CudaTensor xt = cuda(x);
        Shapes.requireEqual("ternaryLinear", "input features", Shapes.last(xt.shapeRef()), w.in);
        long biasPointer = 0;
        if (bias != null) {
            Shapes.requireEqual("ternaryLinear", "bias length", n(cuda(bias)), w.out);
            biasPointer = ptr(bias);
        }
        int m = Shapes.rows(xt.shapeRef());
        CudaTensor out = empty(Shapes.withLast(xt.shapeRef(), w.out));
        if (m >= TernaryLaunch.DENSE_FROM_M && w.out > 0 && w.in > 0) {
            ternaryAsGemm(xt, w, biasPointer, out, m);
        } else if (m > 0 && w.out > 0 && w.in > 0) {
            ternaryKernels(xt.pointer(), w, w.scale.pointer(w), biasPointer, out.pointer(), m);
        }
        return out;
    }

    /** {@code y [m, out] = x [m, in] . codes^T * scale + bias} by the kernels of ternary_matmul.cu, in launches. */
    private void ternaryKernels(long x, CudaTernaryTensor w, long scale, long bias, long y, int m) {
        for (int m0 = 0; m0 < m; m0 += TernaryLaunch.MAX_ROWS_PER_LAUNCH) {
            int rows = Math.min(TernaryLaunch.MAX_ROWS_PER_LAUNCH, m - m0);
            TernaryLaunch plan = TernaryLaunch.plan(rows, w.out, w.in);
            device.launch(
                    CudaModules.TERNARY_MATMUL,
                    plan.kernel(),
                    plan.geometry(),
                    new KernelArgs()
                            .ptr(x + 4L * m0 * w.in)
                            .ptr(w.codes.pointer(w))
                            .ptr(scale)
                            .ptr(bias)
                            .ptr(y + 4L * m0 * w.out)
                            .i(rows)
                            .i(w.out)
                            .i(w.in));
        }
    }

    /** The codes of {@code w} decoded to floats {@code [out, in]} into {@code scratch}. */
    private void decodeTernary(CudaTernaryTensor w, long scratch) {
        launch(
                OpsKernels.TERNARY_DECODE,
                OpsKernels.elementwise((long) w.out * w.in),
                new KernelArgs().ptr(w.codes.pointer(w)).ptr(scratch).i(w.out).i(w.in));
    }

    /** The large-M path: codes decoded to floats in a scratch weight, one GEMM, then scale and bias. */
    private void ternaryAsGemm(CudaTensor x, CudaTernaryTensor w, long biasPointer, CudaTensor out, int m) {
        long weights = (long) w.out * w.in;
        DeviceStorage decoded = storage(4 * weights);
        try {
            long scratch = decoded.pointer("decoded ternary weight");
            decodeTernary(w, scratch);
            matmulNt(x.pointer(), scratch, out.pointer(), m, w.out, w.in);
            launch(
                    OpsKernels.SCALE_BIAS_ROWS,
                    OpsKernels.elementwise((long) m * w.out),
                    new KernelArgs()
                            .ptr(out.pointer())
                            .ptr(w.scale.pointer(w))
                            .ptr(biasPointer)
                            .i(m)
                            .i(w.out));
        } finally {
            decoded.release();
        }
    }

    /** A per-row normalization; {@code vectors} are the kernel's per-column parameters (none, or weight, bias). */
    private Tensor rowKernel(String kernel, String op, Tensor x, float eps, String[] names, Tensor... vectors) {
        CudaTensor xt = cuda(x);
        int c = Shapes.last(xt.shapeRef()), rows = Shapes.rows(xt.shapeRef());
        KernelArgs args = new KernelArgs().ptr(xt.pointer());
        for (int i = 0; i < names.length; i++) {
            if (vectors.length == 0) {
                args.ptr(0);
            } else {
                Shapes.requireEqual(op, names[i] + " length", n(cuda(vectors[i])), c);
                args.ptr(ptr(vectors[i]));
            }
        }
        CudaTensor out = empty(xt.shapeRef());
        args.ptr(out.pointer()).i(rows).i(c).f(eps);
        if (rows > 0 && c > 0) {
            launch(kernel, OpsKernels.rows(rows), args);
        }
        return out;
    }

    @Override
    public Tensor layerNorm(Tensor x, float eps) {
        return rowKernel(OpsKernels.LAYER_NORM, "layerNorm", x, eps, AFFINE);
    }

    @Override
    public Tensor layerNorm(Tensor x, Tensor weight, Tensor bias, float eps) {
        return rowKernel(OpsKernels.LAYER_NORM, "layerNorm", x, eps, AFFINE, weight, bias);
    }

    @Override
    public Tensor rmsNorm(Tensor x, Tensor scale, float eps) {
        return rowKernel(OpsKernels.RMS_NORM, "rmsNorm", x, eps, new String[] {"scale"}, scale);
    }

    @Override
    public Tensor gelu(Tensor x) {
        return unary(OpsKernels.GELU_TANH, x);
    }

    @Override
    public Tensor silu(Tensor x) {
        return unary(OpsKernels.SILU, x);
    }

    @Override
    public Tensor quickGelu(Tensor x) {
        return unary(OpsKernels.QUICK_GELU, x);
    }

    @Override
    public Tensor mul(Tensor a, Tensor b) {
        return binary("mul", OpsKernels.MUL, a, b);
    }

    @Override
    public Tensor add(Tensor a, Tensor b) {
        return binary("add", OpsKernels.ADD, a, b);
    }

    @Override
    public Tensor embedding(Tensor table, int[] ids) {
        CudaBf16Tensor t16 = bf16(table);
        int[] ts = t16 != null ? t16.shapeRef() : cuda(table).shapeRef();
        Shapes.requireRank("embedding", "table", ts, 2);
        int c = ts[1];
        OpChecks.tokenIds(ids, ts[0]);
        CudaTensor out = empty(ids.length, c);
        if (ids.length > 0 && c > 0) {
            DeviceStorage idBuffer = storage(4L * ids.length);
            try {
                device.upload(idBuffer.pointer("token ids"), ids);
                launch(
                        t16 != null ? OpsKernels.EMBEDDING_BF16 : OpsKernels.EMBEDDING,
                        OpsKernels.elementwise((long) ids.length * c),
                        new KernelArgs()
                                .ptr(t16 != null ? t16.pointer() : ptr(table))
                                .ptr(idBuffer.pointer("token ids"))
                                .ptr(out.pointer())
                                .i(ids.length)
                                .i(c));
            } finally {
                idBuffer.release();
            }
        }
        return out;
    }

    private Tensor perSample(String op, String kernel, Tensor x, Tensor a, Tensor b, Tensor y) {
        CudaTensor xt = cuda(x);
        int[] s = OpChecks.batchRows(op, xt.shapeRef(), cuda(a).shapeRef(), cuda(b).shapeRef());
        KernelArgs args = new KernelArgs().ptr(xt.pointer()).ptr(ptr(a));
        args.ptr(y != null ? ptr(y) : ptr(b));
        CudaTensor out = empty(s);
        args.ptr(out.pointer()).i(s[0]).i(s[1]).i(s[2]);
        if (n(out) > 0) {
            launch(kernel, OpsKernels.elementwise(n(out)), args);
        }
        return out;
    }

    @Override
    public Tensor modulate(Tensor x, Tensor shift, Tensor scale) {
        return perSample("modulate", OpsKernels.MODULATE, x, shift, scale, null);
    }

    @Override
    public Tensor gatedAdd(Tensor x, Tensor gate, Tensor y) {
        Shapes.requireSame("gatedAdd", cuda(x).shapeRef(), cuda(y).shapeRef());
        return perSample("gatedAdd", OpsKernels.GATED_ADD, x, gate, gate, y);
    }

    private void copyRows(long dst, long dstPitch, long src, long srcPitch, long width, long height) {
        if (width > 0 && height > 0) {
            device.copy2d(dst, dstPitch, src, srcPitch, width, height);
        }
    }

    @Override
    public Tensor columns(Tensor x, int start, int count) {
        CudaTensor xt = cuda(x);
        OpChecks.columns(xt.shapeRef(), start, count);
        int c = Shapes.last(xt.shapeRef());
        CudaTensor out = empty(Shapes.withLast(xt.shapeRef(), count));
        copyRows(out.pointer(), 4L * count, xt.pointer() + 4L * start, 4L * c, 4L * count, Shapes.rows(xt.shapeRef()));
        return out;
    }

    @Override
    public Tensor concatColumns(Tensor a, Tensor b) {
        CudaTensor at = cuda(a), bt = cuda(b);
        OpChecks.concatColumns(at.shapeRef(), bt.shapeRef());
        long ca = Shapes.last(at.shapeRef()), cb = Shapes.last(bt.shapeRef()), rows = Shapes.rows(at.shapeRef());
        CudaTensor out = empty(Shapes.withLast(at.shapeRef(), (int) (ca + cb)));
        copyRows(out.pointer(), 4 * (ca + cb), at.pointer(), 4 * ca, 4 * ca, rows);
        copyRows(out.pointer() + 4 * ca, 4 * (ca + cb), bt.pointer(), 4 * cb, 4 * cb, rows);
        return out;
    }

    @Override
    public Tensor concatRows(Tensor a, Tensor b) {
        CudaTensor at = cuda(a), bt = cuda(b);
        OpChecks.concatRows(at.shapeRef(), bt.shapeRef());
        int bs = at.shapeRef()[0];
        long la = at.shapeRef()[1], lb = bt.shapeRef()[1], c = at.shapeRef()[2];
        CudaTensor out = empty(bs, (int) (la + lb), (int) c);
        copyRows(out.pointer(), 4 * (la + lb) * c, at.pointer(), 4 * la * c, 4 * la * c, bs);
        copyRows(out.pointer() + 4 * la * c, 4 * (la + lb) * c, bt.pointer(), 4 * lb * c, 4 * lb * c, bs);
        return out;
    }

    @Override
    public Tensor sliceRows(Tensor x, int start, int count) {
        CudaTensor xt = cuda(x);
        OpChecks.sliceRows(xt.shapeRef(), start, count);
        int bs = xt.shapeRef()[0];
        long l = xt.shapeRef()[1], c = xt.shapeRef()[2];
        CudaTensor out = empty(bs, count, (int) c);
        copyRows(out.pointer(), 4L * count * c, xt.pointer() + 4L * start * c, 4 * l * c, 4L * count * c, bs);
        return out;
    }

    @Override
    public Tensor rope(Tensor x, Tensor pe) {
        return rotatePairs(OpsKernels.ROPE, x, pe);
    }

    /** RoPE ({@link OpsKernels#ROPE}) or its backward ({@link OpsKernels#ROPE_BACKWARD}): one thread a pair. */
    private Tensor rotatePairs(String kernel, Tensor x, Tensor pe) {
        CudaTensor xt = cuda(x), pt = cuda(pe);
        OpChecks.rope(kernel.equals(OpsKernels.ROPE) ? "rope" : "ropeBackward", xt.shapeRef(), pt.shapeRef());
        int[] s = xt.shapeRef();
        CudaTensor out = empty(s);
        long pairs = n(out) / 2;
        if (pairs > 0) {
            launch(
                    kernel,
                    OpsKernels.elementwise(pairs),
                    new KernelArgs()
                            .ptr(xt.pointer())
                            .ptr(pt.pointer())
                            .ptr(out.pointer())
                            .i(s[0])
                            .i(s[1])
                            .i(s[2])
                            .i(s[3]));
        }
        return out;
    }

    /**
     * With {@link AttentionPath#FLASH} and heads of up to {@link OpsKernels#FLASH_MAX_HEAD} features: one launch of
     * the flash kernel for the head size over all samples and heads, no workspace. Otherwise ({@link
     * AttentionPath#GEMM}, larger heads, or more than 65,535 samples or heads for the grid), per sample and per chunk
     * of heads: scores {@code S = scale Q K^T} by one strided batched GEMM over the heads (a head is a column window
     * of the {@code [L, H D]} rows, so no copy), bias, mask and softmax in place, then {@code O = P V} by a second GEMM
     * straight into the head's columns of the output. The chunk is as many heads as fit the attention workspace.
     */
    @Override
    public Tensor attention(Tensor q, Tensor k, Tensor v, int heads, float scale, Tensor bias, boolean causal) {
        CudaTensor qt = cuda(q), kt = cuda(k), vt = cuda(v);
        CudaTensor bt = bias == null ? null : cuda(bias);
        OpChecks.attention(qt.shapeRef(), kt.shapeRef(), vt.shapeRef(), heads, bt == null ? null : bt.shapeRef());
        int bs = qt.shapeRef()[0], l = qt.shapeRef()[1], c = qt.shapeRef()[2], d = c / heads;
        CudaTensor out = empty(qt.shapeRef());
        if (n(out) == 0) {
            return out;
        }
        if (attentionPath == AttentionPath.FLASH
                && d <= OpsKernels.FLASH_MAX_HEAD
                && bs <= LaunchGeometry.MAX_GRID_YZ
                && heads <= LaunchGeometry.MAX_GRID_YZ) {
            launch(
                    OpsKernels.flashAttentionKernel(d),
                    OpsKernels.flashAttention(bs, l, heads),
                    new KernelArgs()
                            .ptr(qt.pointer())
                            .ptr(kt.pointer())
                            .ptr(vt.pointer())
                            .ptr(bt == null ? 0 : bt.pointer())
                            .ptr(out.pointer())
                            .i(bs)
                            .i(l)
                            .i(heads)
                            .i(d)
                            .f(scale)
                            .i(causal ? 1 : 0));
            return out;
        }
        long scoresPerHead = (long) l * l;
        int chunk = headsPerChunk("attention", l, heads, 1);
        DeviceStorage scores = storage(4 * chunk * scoresPerHead);
        try {
            long s = scores.pointer("attention scores");
            for (int b = 0; b < bs; b++) {
                long rowBase = 4L * b * l * c;
                for (int h0 = 0; h0 < heads; h0 += chunk) {
                    int hc = Math.min(chunk, heads - h0);
                    long head = rowBase + 4L * h0 * d;
                    long biasPointer = bt == null ? 0 : bt.pointer() + 4 * h0 * scoresPerHead;
                    probabilities(qt, kt, head, c, d, l, hc, scale, biasPointer, causal, s);
                    device.gemm(
                            false,
                            false,
                            d,
                            l,
                            l,
                            1f,
                            vt.pointer() + head,
                            c,
                            d,
                            s,
                            l,
                            scoresPerHead,
                            0f,
                            out.pointer() + head,
                            c,
                            d,
                            hc);
                }
            }
        } finally {
            scores.release();
        }
        return out;
    }

    /**
     * Per image: im2col of a chunk of output positions (as many as fit the im2col workspace), then one GEMM
     * {@code out[:, chunk] = W [O, C kh kw] . col}; a 1 x 1 convolution with stride 1 and no padding multiplies the
     * image directly. Bias last, over all positions.
     */
    @Override
    public Tensor conv2d(
            Tensor x, Tensor weight, Tensor bias, int stride, int padTop, int padBottom, int padLeft, int padRight) {
        CudaTensor xt = cuda(x), wt = cuda(weight);
        CudaTensor bt = bias == null ? null : cuda(bias);
        OpChecks.Conv g = OpChecks.conv2d(
                xt.shapeRef(), wt.shapeRef(), bt == null ? -1 : n(bt), stride, padTop, padBottom, padLeft, padRight);
        CudaTensor out = empty(g.b(), g.o(), g.ho(), g.wo());
        int positions = g.ho() * g.wo(), k = g.c() * g.kh() * g.kw();
        if (n(out) == 0) {
            return out;
        }
        if (k == 0) {
            throw new IllegalArgumentException(
                    "conv2d: a convolution over 0 input channels is not supported on the" + " CUDA backend");
        }
        boolean direct = g.kh() == 1
                && g.kw() == 1
                && stride == 1
                && padTop == 0
                && padBottom == 0
                && padLeft == 0
                && padRight == 0;
        int chunk = direct ? positions : (int) Math.max(1, Math.min(positions, workspace.im2colBytes() / (4L * k)));
        DeviceStorage col = direct ? null : storage(4L * k * chunk);
        try {
            for (int b = 0; b < g.b(); b++) {
                long image = xt.pointer() + 4L * b * g.c() * g.h() * g.w();
                long target = out.pointer() + 4L * b * g.o() * positions;
                for (int p0 = 0; p0 < positions; p0 += chunk) {
                    int pc = Math.min(chunk, positions - p0);
                    long columns = image;
                    if (!direct) {
                        columns = col.pointer("im2col workspace");
                        launch(
                                OpsKernels.IM2COL,
                                OpsKernels.elementwise((long) k * pc),
                                new KernelArgs()
                                        .ptr(image)
                                        .ptr(columns)
                                        .i(g.c())
                                        .i(g.h())
                                        .i(g.w())
                                        .i(g.kh())
                                        .i(g.kw())
                                        .i(stride)
                                        .i(padTop)
                                        .i(padLeft)
                                        .i(g.wo())
                                        .i(p0)
                                        .i(pc));
                    }
                    device.gemm(
                            false,
                            false,
                            pc,
                            g.o(),
                            k,
                            1f,
                            columns,
                            pc,
                            0,
                            wt.pointer(),
                            k,
                            0,
                            0f,
                            target + 4L * p0,
                            positions,
                            0,
                            1);
                }
            }
        } finally {
            if (col != null) {
                col.release();
            }
        }
        if (bt != null) {
            launch(
                    OpsKernels.ADD_BIAS_CHANNELS,
                    OpsKernels.elementwise(n(out)),
                    new KernelArgs()
                            .ptr(out.pointer())
                            .ptr(bt.pointer())
                            .i(g.b())
                            .i(g.o())
                            .i(positions));
        }
        return out;
    }

    @Override
    public Tensor groupNorm(Tensor x, int groups, Tensor weight, Tensor bias, float eps) {
        CudaTensor xt = cuda(x), wt = cuda(weight), bt = cuda(bias);
        int[] s = xt.shapeRef();
        int spatial = OpChecks.groupNorm(s, groups, n(wt), n(bt));
        CudaTensor out = empty(s);
        if (n(out) > 0) {
            launch(
                    OpsKernels.GROUP_NORM,
                    LaunchGeometry.of(s[0] * groups, OpsKernels.BLOCK),
                    new KernelArgs()
                            .ptr(xt.pointer())
                            .ptr(wt.pointer())
                            .ptr(bt.pointer())
                            .ptr(out.pointer())
                            .i(s[0])
                            .i(s[1])
                            .i(spatial)
                            .i(groups)
                            .f(eps));
        }
        return out;
    }

    @Override
    public Tensor upsampleNearest2x(Tensor x) {
        CudaTensor xt = cuda(x);
        Shapes.requireRank("upsampleNearest2x", "x", xt.shapeRef(), 4);
        int[] s = xt.shapeRef();
        CudaTensor out = empty(s[0], s[1], 2 * s[2], 2 * s[3]);
        if (n(out) > 0) {
            launch(
                    OpsKernels.UPSAMPLE_NEAREST_2X,
                    OpsKernels.elementwise(n(out)),
                    new KernelArgs()
                            .ptr(xt.pointer())
                            .ptr(out.pointer())
                            .i(s[0] * s[1])
                            .i(s[2])
                            .i(s[3]));
        }
        return out;
    }

    @Override
    public Tensor transposeLast2(Tensor x) {
        CudaTensor xt = cuda(x);
        int[] s = xt.shapeRef();
        int[] t = OpChecks.transposedLast2(s);
        int m = s[s.length - 2], n = s[s.length - 1];
        CudaTensor out = empty(t);
        if (n(out) == 0) {
            return out;
        }
        int matrices = n(out) / (m * n);
        for (int b0 = 0; b0 < matrices; b0 += LaunchGeometry.MAX_GRID_YZ) {
            int count = Math.min(LaunchGeometry.MAX_GRID_YZ, matrices - b0);
            long offset = 4L * b0 * m * n;
            launch(
                    OpsKernels.TRANSPOSE_LAST2,
                    OpsKernels.transpose(count, m, n),
                    new KernelArgs()
                            .ptr(xt.pointer() + offset)
                            .ptr(out.pointer() + offset)
                            .i(m)
                            .i(n));
        }
        return out;
    }

    /** Frees every tensor of this backend, then the device (even when freeing failed, e.g. after a GPU fault). */
    @Override
    public void close() {
        try {
            pool.close();
        } finally {
            device.close();
        }
    }

    // ---- reverse mode ----------------------------------------------------------------------------------------

    /** {@code n} floats at {@code y} set to {@code value}. */
    private void fill(long y, float value, long n) {
        if (n > 0) {
            launch(
                    OpsKernels.FILL,
                    OpsKernels.elementwise(n),
                    new KernelArgs().ptr(y).f(value).i((int) n));
        }
    }

    @Override
    public Tensor zeros(int... shape) {
        CudaTensor out = empty(shape);
        fill(out.pointer(), 0f, out.numel());
        return out;
    }

    /**
     * {@code y [m, n] = a [m, k] . b [k, n]}, all row-major: column-major, {@code y^T = b^T a^T} with b^T
     * {@code [n, k]} (ld n) and a^T {@code [k, m]} (ld k). k = 0 is the caller's to handle.
     */
    private void matmulNn(long a, long b, long y, int m, int n, int k) {
        device.gemm(false, false, n, m, k, 1f, b, n, 0, a, k, 0, 0f, y, n, 0, 1);
    }

    /**
     * {@code y[b, c] = sum over l of a[b, l, c] v[b, l, c]} (of a alone when {@code v} is 0) for {@code [B, L, C]}, in
     * launches of at most 65535 samples; zeros when L is 0.
     */
    private void sumRows(long a, long v, long y, int b, int l, int c) {
        if (b == 0 || c == 0) {
            return;
        }
        if (l == 0) {
            fill(y, 0f, (long) b * c);
            return;
        }
        for (int b0 = 0; b0 < b; b0 += LaunchGeometry.MAX_GRID_YZ) {
            int count = Math.min(LaunchGeometry.MAX_GRID_YZ, b - b0);
            long rows = 4L * b0 * l * c;
            launch(
                    OpsKernels.SUM_ROWS,
                    OpsKernels.sumRows(count, c),
                    new KernelArgs()
                            .ptr(a + rows)
                            .ptr(v == 0 ? 0 : v + rows)
                            .ptr(y + 4L * b0 * c)
                            .i(count)
                            .i(l)
                            .i(c));
        }
    }

    /** {@code dx [..., K] = dy [..., N] . weight [N, K]} by one cuBLAS GEMM (at the device's GEMM precision). */
    @Override
    public Tensor linearBackward(Tensor dy, Tensor weight) {
        CudaTensor gt = cuda(dy), wt = cuda(weight);
        Shapes.requireRank("linearBackward", "weight", wt.shapeRef(), 2);
        int n = wt.shapeRef()[0], k = wt.shapeRef()[1];
        Shapes.requireEqual("linearBackward", "output features of dy", Shapes.last(gt.shapeRef()), n);
        int m = Shapes.rows(gt.shapeRef());
        CudaTensor out = empty(Shapes.withLast(gt.shapeRef(), k));
        if (m > 0 && k > 0) {
            if (n == 0) {
                fill(out.pointer(), 0f, out.numel());
            } else {
                matmulNn(gt.pointer(), wt.pointer(), out.pointer(), m, k, n);
            }
        }
        return out;
    }

    /**
     * The bias gradient is a {@link OpsKernels#SUM_ROWS} of dy; the scale gradient one of {@code dy * z} with
     * {@code z = x . codes^T} unscaled (the forward product run with unit scales), so a zero scale is no problem; the
     * input gradient {@code (dy * scale) . codes} is {@link TernaryLaunch#INPUT_GRAD_KERNEL} below
     * {@link TernaryLaunch#DENSE_FROM_M} rows and, from there on, a cuBLAS GEMM with the codes decoded once into a
     * scratch weight that z's GEMM shares.
     */
    @Override
    public TernaryLinearGrads ternaryLinearBackward(Tensor x, Tensor ternaryWeight, Tensor dy, boolean inputGrad) {
        CudaTernaryTensor w = ternary("ternaryLinearBackward", ternaryWeight);
        CudaTensor xt = cuda(x), gt = cuda(dy);
        Shapes.requireEqual("ternaryLinearBackward", "input features", Shapes.last(xt.shapeRef()), w.in);
        Shapes.requireSame("ternaryLinearBackward dy", gt.shapeRef(), Shapes.withLast(xt.shapeRef(), w.out));
        int m = Shapes.rows(xt.shapeRef());
        CudaTensor dx = inputGrad ? empty(xt.shapeRef()) : null;
        CudaTensor dScale = empty(w.out), dBias = empty(w.out);
        sumRows(gt.pointer(), 0, dBias.pointer(), 1, m, w.out);
        if (m == 0) {
            fill(dScale.pointer(), 0f, w.out);
            return new TernaryLinearGrads(dx, dScale, dBias);
        }
        DeviceStorage z = storage(4L * m * w.out);
        DeviceStorage decoded = m >= TernaryLaunch.DENSE_FROM_M ? storage(4L * w.out * w.in) : null;
        try {
            long zp = z.pointer("x . codes^T");
            long codes = 0;
            if (decoded != null) {
                codes = decoded.pointer("decoded ternary weight");
                decodeTernary(w, codes);
                matmulNt(xt.pointer(), codes, zp, m, w.out, w.in);
            } else {
                float[] ones = new float[w.out];
                Arrays.fill(ones, 1f);
                DeviceStorage unit = storage(4L * w.out);
                try {
                    long up = unit.pointer("unit scales");
                    device.upload(up, ones, 0, ones.length);
                    ternaryKernels(xt.pointer(), w, up, 0, zp, m);
                } finally {
                    unit.release();
                }
            }
            sumRows(gt.pointer(), zp, dScale.pointer(), 1, m, w.out);
            if (dx != null && decoded != null) {
                // z is spent: it takes dy * scale (a copy scaled in place), then one GEMM with the decoded codes
                device.copy(zp, gt.pointer(), 4L * m * w.out);
                launch(
                        OpsKernels.SCALE_BIAS_ROWS,
                        OpsKernels.elementwise((long) m * w.out),
                        new KernelArgs()
                                .ptr(zp)
                                .ptr(w.scale.pointer(w))
                                .ptr(0)
                                .i(m)
                                .i(w.out));
                matmulNn(zp, codes, dx.pointer(), m, w.in, w.out);
            } else if (dx != null) {
                device.launch(
                        CudaModules.TERNARY_MATMUL,
                        TernaryLaunch.INPUT_GRAD_KERNEL,
                        TernaryLaunch.inputGrad(m, w.in),
                        new KernelArgs()
                                .ptr(gt.pointer())
                                .ptr(w.codes.pointer(w))
                                .ptr(w.scale.pointer(w))
                                .ptr(dx.pointer())
                                .i(m)
                                .i(w.out)
                                .i(w.in));
            }
        } finally {
            z.release();
            if (decoded != null) {
                decoded.release();
            }
        }
        return new TernaryLinearGrads(dx, dScale, dBias);
    }

    /** A new weight on the device codes of {@code ternaryWeight} (not copied) with {@code scale} uploaded. */
    @Override
    public Tensor withTernaryScale(Tensor ternaryWeight, float[] scale) {
        CudaTernaryTensor w = ternary("withTernaryScale", ternaryWeight);
        HfTernaryPacking.checkScale(scale, w.out, w.in);
        w.codes.pointer(w); // the codes are still there
        DeviceStorage scales = storage(4L * w.out);
        CudaTernaryTensor t = w.withScale(scales);
        device.upload(scales.pointer(t), scale, 0, w.out);
        return t;
    }

    /** A row kernel over {@code x} and {@code dy} of one shape: {@code (x, [vector,] dy, y, rows, cols, eps)}. */
    private Tensor rowBackward(String kernel, String op, Tensor x, Tensor vector, Tensor dy, float eps) {
        CudaTensor xt = cuda(x), gt = cuda(dy);
        Shapes.requireSame(op, gt.shapeRef(), xt.shapeRef());
        int c = Shapes.last(xt.shapeRef()), rows = Shapes.rows(xt.shapeRef());
        KernelArgs args = new KernelArgs().ptr(xt.pointer());
        if (vector != null) {
            Shapes.requireEqual(op, "scale length", n(cuda(vector)), c);
            args.ptr(ptr(vector));
        }
        CudaTensor out = empty(xt.shapeRef());
        args.ptr(gt.pointer()).ptr(out.pointer()).i(rows).i(c).f(eps);
        if (rows > 0 && c > 0) {
            launch(kernel, OpsKernels.rows(rows), args);
        }
        return out;
    }

    @Override
    public Tensor layerNormBackward(Tensor x, Tensor dy, float eps) {
        return rowBackward(OpsKernels.LAYER_NORM_BACKWARD, "layerNormBackward", x, null, dy, eps);
    }

    @Override
    public Tensor rmsNormBackward(Tensor x, Tensor scale, Tensor dy, float eps) {
        return rowBackward(OpsKernels.RMS_NORM_BACKWARD, "rmsNormBackward", x, scale, dy, eps);
    }

    private Tensor activationBackward(String op, String kernel, Tensor x, Tensor dy) {
        CudaTensor xt = cuda(x), gt = cuda(dy);
        Shapes.requireSame(op, gt.shapeRef(), xt.shapeRef());
        CudaTensor out = empty(xt.shapeRef());
        int n = n(out);
        if (n > 0) {
            launch(
                    kernel,
                    OpsKernels.elementwise(n),
                    new KernelArgs()
                            .ptr(xt.pointer())
                            .ptr(gt.pointer())
                            .ptr(out.pointer())
                            .i(n));
        }
        return out;
    }

    @Override
    public Tensor geluBackward(Tensor x, Tensor dy) {
        return activationBackward("geluBackward", OpsKernels.GELU_TANH_BACKWARD, x, dy);
    }

    @Override
    public Tensor siluBackward(Tensor x, Tensor dy) {
        return activationBackward("siluBackward", OpsKernels.SILU_BACKWARD, x, dy);
    }

    /** {@code (offset + v[b]) * x[b, l]} for {@code x [B, L, C]}, {@code v [B, C]}. */
    private CudaTensor mulPerSample(CudaTensor x, CudaTensor v, float offset) {
        int[] s = x.shapeRef();
        CudaTensor out = empty(s);
        if (n(out) > 0) {
            launch(
                    OpsKernels.MUL_PER_SAMPLE,
                    OpsKernels.elementwise(n(out)),
                    new KernelArgs()
                            .ptr(x.pointer())
                            .ptr(v.pointer())
                            .f(offset)
                            .ptr(out.pointer())
                            .i(s[0])
                            .i(s[1])
                            .i(s[2]));
        }
        return out;
    }

    /** The per-sample sums over tokens {@code [B, C]} of {@code a [B, L, C]} (times {@code v}, or null). */
    private CudaTensor sumOverTokens(CudaTensor a, CudaTensor v) {
        int[] s = a.shapeRef();
        CudaTensor out = empty(s[0], s[2]);
        sumRows(a.pointer(), v == null ? 0 : v.pointer(), out.pointer(), s[0], s[1], s[2]);
        return out;
    }

    @Override
    public ModulateGrads modulateBackward(Tensor x, Tensor scale, Tensor dy) {
        CudaTensor xt = cuda(x), st = cuda(scale), gt = cuda(dy);
        OpChecks.batchRows("modulateBackward", xt.shapeRef(), st.shapeRef(), st.shapeRef());
        Shapes.requireSame("modulateBackward dy", gt.shapeRef(), xt.shapeRef());
        return new ModulateGrads(mulPerSample(gt, st, 1f), sumOverTokens(gt, null), sumOverTokens(gt, xt));
    }

    @Override
    public GatedAddGrads gatedAddBackward(Tensor gate, Tensor y, Tensor dy) {
        CudaTensor at = cuda(gate), yt = cuda(y), gt = cuda(dy);
        OpChecks.batchRows("gatedAddBackward", yt.shapeRef(), at.shapeRef(), at.shapeRef());
        Shapes.requireSame("gatedAddBackward dy", gt.shapeRef(), yt.shapeRef());
        return new GatedAddGrads(sumOverTokens(gt, yt), mulPerSample(gt, at, 0f));
    }

    @Override
    public Tensor ropeBackward(Tensor dy, Tensor pe) {
        return rotatePairs(OpsKernels.ROPE_BACKWARD, dy, pe);
    }

    /**
     * How many heads of {@code l x l} scores an attention call handles at once: as many as fit the attention workspace
     * with {@code buffersPerHead} score buffers a head, at least one, and within the kernels' int indexing.
     */
    private int headsPerChunk(String op, int l, int heads, int buffersPerHead) {
        long scoresPerHead = (long) l * l;
        if (scoresPerHead > Integer.MAX_VALUE) {
            throw new IllegalArgumentException(op + " over " + l + " tokens: one head's " + scoresPerHead
                    + " scores exceed the kernels' int indexing");
        }
        int chunk =
                (int) Math.max(1, Math.min(heads, workspace.attentionBytes() / (4L * buffersPerHead * scoresPerHead)));
        if (chunk * scoresPerHead > Integer.MAX_VALUE) {
            chunk = (int) Math.max(1, Integer.MAX_VALUE / scoresPerHead);
        }
        return chunk;
    }

    /**
     * {@code softmax(scale Q K^T + bias)} of {@code hc} heads starting at byte offset {@code head} of the {@code [L, C]}
     * rows of q and k, into {@code out} (row i of head h at {@code out + (h L + i) L}): one strided batched GEMM, then
     * {@link OpsKernels#SOFTMAX_ROWS} in place ({@code bias} a device pointer or 0, keys after the query masked when
     * {@code causal}).
     */
    private void probabilities(
            CudaTensor qt,
            CudaTensor kt,
            long head,
            int c,
            int d,
            int l,
            int hc,
            float scale,
            long bias,
            boolean causal,
            long out) {
        long scoresPerHead = (long) l * l;
        device.gemm(
                true,
                false,
                l,
                l,
                d,
                scale,
                kt.pointer() + head,
                c,
                d,
                qt.pointer() + head,
                c,
                d,
                0f,
                out,
                l,
                scoresPerHead,
                hc);
        launch(
                OpsKernels.SOFTMAX_ROWS,
                OpsKernels.rows(hc * l),
                new KernelArgs().ptr(out).ptr(bias).i(hc * l).i(l).i(l).i(causal ? 1 : 0));
    }

    /**
     * Per sample and per chunk of heads, like {@link #attention}: {@code P} recomputed (scores GEMM, then
     * {@link OpsKernels#SOFTMAX_ROWS}), {@code dV = P^T dOut} and {@code dP = dOut V^T} by strided batched GEMMs,
     * {@code dS} in place of dP by {@link OpsKernels#SOFTMAX_BACKWARD_ROWS}, then {@code dQ = scale dS K} and
     * {@code dK = scale dS^T Q} straight into the heads' columns. Two score buffers per head, so a chunk is as many
     * heads as fit the attention workspace twice.
     */
    @Override
    public AttentionGrads attentionBackward(Tensor q, Tensor k, Tensor v, Tensor dOut, int heads, float scale) {
        CudaTensor qt = cuda(q), kt = cuda(k), vt = cuda(v), gt = cuda(dOut);
        OpChecks.attention(qt.shapeRef(), kt.shapeRef(), vt.shapeRef(), heads, null);
        Shapes.requireSame("attentionBackward dOut", gt.shapeRef(), qt.shapeRef());
        int bs = qt.shapeRef()[0], l = qt.shapeRef()[1], c = qt.shapeRef()[2], d = c / heads;
        CudaTensor dq = empty(qt.shapeRef()), dk = empty(qt.shapeRef()), dv = empty(qt.shapeRef());
        if (n(dq) == 0) {
            return new AttentionGrads(dq, dk, dv);
        }
        long scoresPerHead = (long) l * l;
        int chunk = headsPerChunk("attentionBackward", l, heads, 2);
        DeviceStorage probabilities = storage(4 * chunk * scoresPerHead);
        DeviceStorage gradients = storage(4 * chunk * scoresPerHead);
        try {
            long p = probabilities.pointer("attention probabilities");
            long g = gradients.pointer("attention score gradients");
            for (int b = 0; b < bs; b++) {
                long rowBase = 4L * b * l * c;
                for (int h0 = 0; h0 < heads; h0 += chunk) {
                    int hc = Math.min(chunk, heads - h0);
                    long head = rowBase + 4L * h0 * d;
                    // P = softmax(scale Q K^T), row i of head h at p + (h L + i) L
                    probabilities(qt, kt, head, c, d, l, hc, scale, 0, false, p);
                    // dV^T [D, L] = dOut^T [D, L] . P [L, L]: P's column-major view is P^T, so transposed
                    device.gemm(
                            false,
                            true,
                            d,
                            l,
                            l,
                            1f,
                            gt.pointer() + head,
                            c,
                            d,
                            p,
                            l,
                            scoresPerHead,
                            0f,
                            dv.pointer() + head,
                            c,
                            d,
                            hc);
                    // dP [L, L] = dOut V^T, laid out like the scores
                    device.gemm(
                            true,
                            false,
                            l,
                            l,
                            d,
                            1f,
                            vt.pointer() + head,
                            c,
                            d,
                            gt.pointer() + head,
                            c,
                            d,
                            0f,
                            g,
                            l,
                            scoresPerHead,
                            hc);
                    launch(
                            OpsKernels.SOFTMAX_BACKWARD_ROWS,
                            OpsKernels.rows(hc * l),
                            new KernelArgs().ptr(p).ptr(g).i(hc * l).i(l));
                    // dQ^T = scale K^T dS^T, like the forward's O^T = V^T P^T; dK^T = scale Q^T dS, like dV
                    device.gemm(
                            false,
                            false,
                            d,
                            l,
                            l,
                            scale,
                            kt.pointer() + head,
                            c,
                            d,
                            g,
                            l,
                            scoresPerHead,
                            0f,
                            dq.pointer() + head,
                            c,
                            d,
                            hc);
                    device.gemm(
                            false,
                            true,
                            d,
                            l,
                            l,
                            scale,
                            qt.pointer() + head,
                            c,
                            d,
                            g,
                            l,
                            scoresPerHead,
                            0f,
                            dk.pointer() + head,
                            c,
                            d,
                            hc);
                }
            }
        } finally {
            probabilities.release();
            gradients.release();
        }
        return new AttentionGrads(dq, dk, dv);
    }
}
