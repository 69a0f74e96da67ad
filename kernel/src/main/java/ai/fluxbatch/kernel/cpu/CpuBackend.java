package ai.fluxbatch.kernel.cpu;

import ai.fluxbatch.kernel.Backend;
import ai.fluxbatch.kernel.OpChecks;
import ai.fluxbatch.kernel.Shapes;
import ai.fluxbatch.kernel.Tensor;

/**
 * The CPU backend: float32 on the Java heap, Java Vector API kernels, one thread pool per backend; dense products
 * through OpenBLAS at the shapes where it measured faster ({@link DenseProducts}, {@link DenseRule}).
 */
public final class CpuBackend implements Backend {
    private final ParallelFor parallel;
    /** OpenBLAS's products and their native buffers; null where the Vector API runs every dense product. */
    private final BlasMatmul blas;
    /** The rule that picks OpenBLAS per shape, or every shape ({@link DenseProducts#OPENBLAS}). */
    private final DenseRule rule;

    public CpuBackend() {
        this(Runtime.getRuntime().availableProcessors());
    }

    /** With the dense products {@link DenseProducts#configured()} ({@code -Dfluxbatch.blas}). */
    public CpuBackend(int threads) {
        this(threads, DenseProducts.configured());
    }

    /**
     * @throws IllegalStateException for {@link DenseProducts#OPENBLAS} where OpenBLAS cannot load or is turned off
     */
    public CpuBackend(int threads, DenseProducts products) {
        if (threads < 1) {
            throw new IllegalArgumentException("threads must be at least 1, got " + threads);
        }
        this.parallel = new ParallelFor(threads);
        this.rule = DenseRule.of(products);
        this.blas = rule == null ? null : new BlasMatmul(parallel);
    }

    @Override
    public String name() {
        return "cpu(" + parallel.threads() + " threads" + (blas == null ? "" : ", OpenBLAS " + rule) + ")";
    }

    @Override
    public Tensor upload(float[] data, int... shape) {
        return new CpuTensor(data.clone(), shape);
    }

    @Override
    public float[] download(Tensor t) {
        if (t instanceof CpuBf16Tensor w) {
            float[] out = new float[w.bits.length];
            for (int i = 0; i < out.length; i++) {
                out[i] = CpuBf16Tensor.widen(w.bits[i]);
            }
            return out;
        }
        return cpu(t).data.clone();
    }

    /** Kept as given (a copy), two bytes a value; {@link #linear} and {@link #embedding} widen as they read. */
    @Override
    public Tensor uploadBf16(short[] bits, int... shape) {
        return new CpuBf16Tensor(bits.clone(), shape);
    }

    @Override
    public Tensor reshape(Tensor t, int... shape) {
        return new CpuTensor(cpu(t).data, shape);
    }

    /**
     * A float32 weight runs on the Vector API or OpenBLAS ({@link DenseRule}); a bfloat16 one on {@link Bf16Matmul},
     * the float32 product's bits on the widened values.
     */
    @Override
    public Tensor linear(Tensor x, Tensor weight, Tensor bias) {
        CpuTensor xt = cpu(x);
        CpuBf16Tensor w16 = weight instanceof CpuBf16Tensor w ? w : null;
        CpuTensor wt = w16 == null ? cpu(weight) : null;
        int[] ws = w16 == null ? wt.shapeRef() : w16.shapeRef();
        Shapes.requireRank("linear", "weight", ws, 2);
        int n = ws[0], k = ws[1];
        Shapes.requireEqual("linear", "input features", Shapes.last(xt.shapeRef()), k);
        float[] b = null;
        if (bias != null) {
            b = cpu(bias).data;
            Shapes.requireEqual("linear", "bias length", b.length, n);
        }
        int m = Shapes.rows(xt.shapeRef());
        CpuTensor out = CpuTensor.zeros(Shapes.withLast(xt.shapeRef(), n));
        if (w16 != null) {
            Bf16Matmul.matmul(parallel, xt.data, w16.bits, b, out.data, m, n, k);
        } else if (blas != null && rule.linear(m, n, k)) {
            blas.multiply(xt.data, wt.data, true, b, out.data, m, n, k);
        } else {
            VectorMatmul.matmul(parallel, xt.data, wt.data, b, out.data, m, n, k);
        }
        return out;
    }

    @Override
    public Tensor uploadTernary(byte[] packed, int out, int in, float[] scale) {
        return CpuTernaryTensor.fromHfPacked(parallel, packed, out, in, scale);
    }

    @Override
    public Tensor ternaryLinear(Tensor x, Tensor ternaryWeight, Tensor bias) {
        if (!(ternaryWeight instanceof CpuTernaryTensor w)) {
            throw new IllegalArgumentException(
                    "ternaryLinear: weight must be a ternary tensor made by uploadTernary," + " got " + ternaryWeight);
        }
        CpuTensor xt = cpu(x);
        Shapes.requireEqual("ternaryLinear", "input features", Shapes.last(xt.shapeRef()), w.in);
        float[] b = null;
        if (bias != null) {
            b = cpu(bias).data;
            Shapes.requireEqual("ternaryLinear", "bias length", b.length, w.out);
        }
        int m = Shapes.rows(xt.shapeRef());
        CpuTensor out = CpuTensor.zeros(Shapes.withLast(xt.shapeRef(), w.out));
        TernaryMatmul.matmul(parallel, xt.data, w, b, out.data, m);
        return out;
    }

    @Override
    public Tensor layerNorm(Tensor x, float eps) {
        CpuTensor xt = cpu(x);
        int c = Shapes.last(xt.shapeRef());
        CpuTensor out = CpuTensor.zeros(xt.shapeRef());
        parallel.run(Shapes.rows(xt.shapeRef()), Math.max(1, 65536 / Math.max(1, c)), (from, to) -> {
            for (int r = from; r < to; r++) {
                VectorMath.layerNormRow(xt.data, r * c, c, eps, out.data);
            }
        });
        return out;
    }

    @Override
    public Tensor layerNorm(Tensor x, Tensor weight, Tensor bias, float eps) {
        CpuTensor xt = cpu(x);
        float[] w = cpu(weight).data, b = cpu(bias).data;
        int c = Shapes.last(xt.shapeRef());
        Shapes.requireEqual("layerNorm", "weight length", w.length, c);
        Shapes.requireEqual("layerNorm", "bias length", b.length, c);
        CpuTensor out = CpuTensor.zeros(xt.shapeRef());
        parallel.run(Shapes.rows(xt.shapeRef()), Math.max(1, 65536 / Math.max(1, c)), (from, to) -> {
            for (int r = from; r < to; r++) {
                VectorMath.layerNormRow(xt.data, r * c, c, eps, out.data);
                VectorMath.affineRow(out.data, r * c, c, w, b);
            }
        });
        return out;
    }

    @Override
    public Tensor rmsNorm(Tensor x, Tensor scale, float eps) {
        CpuTensor xt = cpu(x);
        float[] s = cpu(scale).data;
        int c = Shapes.last(xt.shapeRef());
        Shapes.requireEqual("rmsNorm", "scale length", s.length, c);
        CpuTensor out = CpuTensor.zeros(xt.shapeRef());
        parallel.run(Shapes.rows(xt.shapeRef()), Math.max(1, 65536 / Math.max(1, c)), (from, to) -> {
            for (int r = from; r < to; r++) {
                VectorMath.rmsNormRow(xt.data, r * c, c, s, eps, out.data);
            }
        });
        return out;
    }

    @Override
    public Tensor gelu(Tensor x) {
        return elementwise(cpu(x), VectorMath::gelu);
    }

    @Override
    public Tensor silu(Tensor x) {
        return elementwise(cpu(x), VectorMath::silu);
    }

    @Override
    public Tensor quickGelu(Tensor x) {
        return elementwise(cpu(x), VectorMath::quickGelu);
    }

    @Override
    public Tensor mul(Tensor a, Tensor b) {
        return elementwise("mul", cpu(a), cpu(b), VectorMath::mul);
    }

    @Override
    public Tensor embedding(Tensor table, int[] ids) {
        if (table instanceof CpuBf16Tensor t16) {
            Shapes.requireRank("embedding", "table", t16.shapeRef(), 2);
            int c = t16.shapeRef()[1];
            OpChecks.tokenIds(ids, t16.shapeRef()[0]);
            CpuTensor out = CpuTensor.zeros(ids.length, c);
            for (int i = 0; i < ids.length; i++) {
                for (int j = 0, src = ids[i] * c; j < c; j++) {
                    out.data[i * c + j] = CpuBf16Tensor.widen(t16.bits[src + j]);
                }
            }
            return out;
        }
        CpuTensor tt = cpu(table);
        Shapes.requireRank("embedding", "table", tt.shapeRef(), 2);
        int c = tt.shapeRef()[1];
        OpChecks.tokenIds(ids, tt.shapeRef()[0]);
        CpuTensor out = CpuTensor.zeros(ids.length, c);
        for (int i = 0; i < ids.length; i++) {
            System.arraycopy(tt.data, ids[i] * c, out.data, i * c, c);
        }
        return out;
    }

    private interface ElementwiseKernel {
        void apply(float[] in, float[] out, int from, int to);
    }

    private interface BinaryKernel {
        void apply(float[] a, float[] b, float[] out, int from, int to);
    }

    private CpuTensor elementwise(String op, CpuTensor a, CpuTensor b, BinaryKernel kernel) {
        Shapes.requireSame(op, a.shapeRef(), b.shapeRef());
        CpuTensor out = CpuTensor.zeros(a.shapeRef());
        parallel.run(a.data.length, 1 << 15, (from, to) -> kernel.apply(a.data, b.data, out.data, from, to));
        return out;
    }

    private CpuTensor elementwise(CpuTensor x, ElementwiseKernel kernel) {
        CpuTensor out = CpuTensor.zeros(x.shapeRef());
        parallel.run(x.data.length, 1 << 15, (from, to) -> kernel.apply(x.data, out.data, from, to));
        return out;
    }

    @Override
    public Tensor add(Tensor a, Tensor b) {
        return elementwise("add", cpu(a), cpu(b), VectorMath::add);
    }

    @Override
    public Tensor modulate(Tensor x, Tensor shift, Tensor scale) {
        CpuTensor xt = cpu(x), sh = cpu(shift), sc = cpu(scale);
        int[] dims = OpChecks.batchRows("modulate", xt.shapeRef(), sh.shapeRef(), sc.shapeRef());
        int l = dims[1], c = dims[2];
        CpuTensor out = CpuTensor.zeros(xt.shapeRef());
        parallel.run(dims[0] * l, Math.max(1, 65536 / Math.max(1, c)), (from, to) -> {
            for (int r = from; r < to; r++) {
                VectorMath.modulateRow(xt.data, r * c, sh.data, sc.data, (r / l) * c, c, out.data);
            }
        });
        return out;
    }

    @Override
    public Tensor gatedAdd(Tensor x, Tensor gate, Tensor y) {
        CpuTensor xt = cpu(x), gt = cpu(gate), yt = cpu(y);
        Shapes.requireSame("gatedAdd", xt.shapeRef(), yt.shapeRef());
        int[] dims = OpChecks.batchRows("gatedAdd", xt.shapeRef(), gt.shapeRef(), gt.shapeRef());
        int l = dims[1], c = dims[2];
        CpuTensor out = CpuTensor.zeros(xt.shapeRef());
        parallel.run(dims[0] * l, Math.max(1, 65536 / Math.max(1, c)), (from, to) -> {
            for (int r = from; r < to; r++) {
                VectorMath.gatedAddRow(xt.data, gt.data, (r / l) * c, yt.data, r * c, c, out.data);
            }
        });
        return out;
    }

    @Override
    public Tensor columns(Tensor x, int start, int count) {
        CpuTensor xt = cpu(x);
        int c = Shapes.last(xt.shapeRef());
        OpChecks.columns(xt.shapeRef(), start, count);
        int rows = Shapes.rows(xt.shapeRef());
        CpuTensor out = CpuTensor.zeros(Shapes.withLast(xt.shapeRef(), count));
        for (int r = 0; r < rows; r++) {
            System.arraycopy(xt.data, r * c + start, out.data, r * count, count);
        }
        return out;
    }

    @Override
    public Tensor concatColumns(Tensor a, Tensor b) {
        CpuTensor at = cpu(a), bt = cpu(b);
        int ca = Shapes.last(at.shapeRef()), cb = Shapes.last(bt.shapeRef());
        OpChecks.concatColumns(at.shapeRef(), bt.shapeRef());
        int rows = Shapes.rows(at.shapeRef());
        CpuTensor out = CpuTensor.zeros(Shapes.withLast(at.shapeRef(), ca + cb));
        for (int r = 0; r < rows; r++) {
            System.arraycopy(at.data, r * ca, out.data, r * (ca + cb), ca);
            System.arraycopy(bt.data, r * cb, out.data, r * (ca + cb) + ca, cb);
        }
        return out;
    }

    @Override
    public Tensor concatRows(Tensor a, Tensor b) {
        CpuTensor at = cpu(a), bt = cpu(b);
        OpChecks.concatRows(at.shapeRef(), bt.shapeRef());
        int bs = at.shapeRef()[0], la = at.shapeRef()[1], lb = bt.shapeRef()[1], c = at.shapeRef()[2];
        CpuTensor out = CpuTensor.zeros(bs, la + lb, c);
        for (int i = 0; i < bs; i++) {
            System.arraycopy(at.data, i * la * c, out.data, i * (la + lb) * c, la * c);
            System.arraycopy(bt.data, i * lb * c, out.data, (i * (la + lb) + la) * c, lb * c);
        }
        return out;
    }

    @Override
    public Tensor sliceRows(Tensor x, int start, int count) {
        CpuTensor xt = cpu(x);
        OpChecks.sliceRows(xt.shapeRef(), start, count);
        int bs = xt.shapeRef()[0], l = xt.shapeRef()[1], c = xt.shapeRef()[2];
        CpuTensor out = CpuTensor.zeros(bs, count, c);
        for (int i = 0; i < bs; i++) {
            System.arraycopy(xt.data, (i * l + start) * c, out.data, i * count * c, count * c);
        }
        return out;
    }

    @Override
    public Tensor rope(Tensor x, Tensor pe) {
        return rotatePairs(x, pe, false);
    }

    /** Each pair {@code (x[2i], x[2i+1])} times the 2 x 2 matrix {@code pe[i]}, or its transpose (RoPE's backward). */
    private Tensor rotatePairs(Tensor x, Tensor pe, boolean transposed) {
        CpuTensor xt = cpu(x), pt = cpu(pe);
        OpChecks.rope(transposed ? "ropeBackward" : "rope", xt.shapeRef(), pt.shapeRef());
        int bs = xt.shapeRef()[0], l = xt.shapeRef()[1], h = xt.shapeRef()[2], d = xt.shapeRef()[3];
        CpuTensor out = CpuTensor.zeros(xt.shapeRef());
        float[] xs = xt.data, ps = pt.data, os = out.data;
        // pe[i] = (p0 p1; p2 p3); its transpose swaps the off-diagonal entries
        int offA = transposed ? 2 : 1, offB = transposed ? 1 : 2;
        parallel.run(bs * l, 64, (from, to) -> {
            for (int row = from; row < to; row++) {
                int po = row * (d / 2) * 4;
                for (int hi = 0; hi < h; hi++) {
                    int xo = (row * h + hi) * d;
                    for (int i = 0; i < d / 2; i++) {
                        float x0 = xs[xo + 2 * i], x1 = xs[xo + 2 * i + 1];
                        int p = po + 4 * i;
                        os[xo + 2 * i] = ps[p] * x0 + ps[p + offA] * x1;
                        os[xo + 2 * i + 1] = ps[p + offB] * x0 + ps[p + 3] * x1;
                    }
                }
            }
        });
        return out;
    }

    @Override
    public Tensor attention(Tensor q, Tensor k, Tensor v, int heads, float scale, Tensor bias, boolean causal) {
        CpuTensor qt = cpu(q), kt = cpu(k), vt = cpu(v);
        CpuTensor bt = bias == null ? null : cpu(bias);
        OpChecks.attention(qt.shapeRef(), kt.shapeRef(), vt.shapeRef(), heads, bt == null ? null : bt.shapeRef());
        int bs = qt.shapeRef()[0], l = qt.shapeRef()[1], c = qt.shapeRef()[2];
        float[] biasData = bt == null ? null : bt.data;
        float[] out = CpuAttention.attend(
                parallel, qt.data, kt.data, vt.data, bs, l, heads, c / heads, scale, biasData, causal);
        return new CpuTensor(out, qt.shapeRef());
    }

    @Override
    public Tensor conv2d(
            Tensor x, Tensor weight, Tensor bias, int stride, int padTop, int padBottom, int padLeft, int padRight) {
        CpuTensor xt = cpu(x), wt = cpu(weight);
        float[] bd = bias == null ? null : cpu(bias).data;
        OpChecks.Conv g = OpChecks.conv2d(
                xt.shapeRef(),
                wt.shapeRef(),
                bd == null ? -1 : bd.length,
                stride,
                padTop,
                padBottom,
                padLeft,
                padRight);
        float[] out = CpuConv2d.conv(
                parallel,
                blas != null && rule.conv() ? blas : null,
                xt.data,
                g.b(),
                g.c(),
                g.h(),
                g.w(),
                wt.data,
                bd,
                g.o(),
                g.kh(),
                g.kw(),
                stride,
                padTop,
                padLeft,
                g.ho(),
                g.wo());
        return new CpuTensor(out, new int[] {g.b(), g.o(), g.ho(), g.wo()});
    }

    @Override
    public Tensor groupNorm(Tensor x, int groups, Tensor weight, Tensor bias, float eps) {
        CpuTensor xt = cpu(x);
        int[] s = xt.shapeRef();
        float[] w = cpu(weight).data, bb = cpu(bias).data;
        int spatial = OpChecks.groupNorm(s, groups, w.length, bb.length);
        int b = s[0], c = s[1];
        return new CpuTensor(CpuGroupNorm.apply(parallel, xt.data, b, c, spatial, groups, w, bb, eps), s);
    }

    @Override
    public Tensor upsampleNearest2x(Tensor x) {
        CpuTensor xt = cpu(x);
        Shapes.requireRank("upsampleNearest2x", "x", xt.shapeRef(), 4);
        int[] s = xt.shapeRef();
        int h = s[2], w = s[3];
        CpuTensor out = CpuTensor.zeros(s[0], s[1], 2 * h, 2 * w);
        float[] in = xt.data, os = out.data;
        parallel.run(s[0] * s[1] * h, Math.max(1, 16384 / Math.max(1, w)), (from, to) -> {
            for (int row = from; row < to; row++) {
                int src = row * w;
                int dst = 4 * row * w;
                for (int i = 0; i < w; i++) {
                    float v = in[src + i];
                    os[dst + 2 * i] = v;
                    os[dst + 2 * i + 1] = v;
                }
                System.arraycopy(os, dst, os, dst + 2 * w, 2 * w);
            }
        });
        return out;
    }

    @Override
    public Tensor transposeLast2(Tensor x) {
        CpuTensor xt = cpu(x);
        int[] s = xt.shapeRef();
        int[] t = OpChecks.transposedLast2(s);
        int m = s[s.length - 2], n = s[s.length - 1];
        CpuTensor out = CpuTensor.zeros(t);
        int matrices = m * n == 0 ? 0 : xt.data.length / (m * n);
        int tile = 32;
        int mTiles = (m + tile - 1) / tile;
        float[] in = xt.data, os = out.data;
        parallel.run(matrices * mTiles, Math.max(1, 65536 / Math.max(1, tile * n)), (from, to) -> {
            for (int task = from; task < to; task++) {
                int base = (task / mTiles) * m * n;
                int i0 = (task % mTiles) * tile, i1 = Math.min(m, i0 + tile);
                for (int j0 = 0; j0 < n; j0 += tile) {
                    int j1 = Math.min(n, j0 + tile);
                    for (int i = i0; i < i1; i++) {
                        for (int j = j0; j < j1; j++) {
                            os[base + j * m + i] = in[base + i * n + j];
                        }
                    }
                }
            }
        });
        return out;
    }

    @Override
    public void close() {
        parallel.shutdown();
        if (blas != null) {
            blas.close();
        }
    }

    private static CpuTensor cpu(Tensor t) {
        if (t instanceof CpuTensor c) {
            return c;
        }
        if (t instanceof CpuTernaryTensor) {
            throw new IllegalArgumentException("a ternary weight " + t + " can only be used by ternaryLinear;"
                    + " this operation needs a float tensor");
        }
        if (t instanceof CpuBf16Tensor) {
            throw new IllegalArgumentException("a bfloat16 weight " + t + " can only be used by linear (as its weight),"
                    + " embedding (as its table) and download; this operation needs a float tensor");
        }
        throw new IllegalArgumentException("the CPU backend got a tensor of another backend: " + t);
    }

    private static CpuTernaryTensor ternary(String op, Tensor t) {
        if (t instanceof CpuTernaryTensor w) {
            return w;
        }
        throw new IllegalArgumentException(
                op + ": weight must be a ternary tensor made by uploadTernary of the CPU backend, got " + t);
    }

    // ---- Reverse mode (the contract is in Backend)

    @Override
    public Tensor linearBackward(Tensor dy, Tensor weight) {
        CpuTensor dt = cpu(dy), wt = cpu(weight);
        Shapes.requireRank("linearBackward", "weight", wt.shapeRef(), 2);
        int n = wt.shapeRef()[0], k = wt.shapeRef()[1];
        Shapes.requireEqual("linearBackward", "features of dy", Shapes.last(dt.shapeRef()), n);
        CpuTensor out = CpuTensor.zeros(Shapes.withLast(dt.shapeRef(), k));
        int m = Shapes.rows(dt.shapeRef());
        if (blas != null && rule.linearBackward(m, n, k)) {
            blas.multiply(dt.data, wt.data, false, null, out.data, m, k, n);
        } else {
            TransposedMatmul.dense(parallel, dt.data, wt.data, m, n, k, out.data);
        }
        return out;
    }

    @Override
    public TernaryLinearGrads ternaryLinearBackward(Tensor x, Tensor ternaryWeight, Tensor dy, boolean inputGrad) {
        String op = "ternaryLinearBackward";
        CpuTernaryTensor w = ternary(op, ternaryWeight);
        CpuTensor xt = cpu(x), dt = cpu(dy);
        Shapes.requireEqual(op, "input features", Shapes.last(xt.shapeRef()), w.in);
        Shapes.requireSame(op + " dy", dt.shapeRef(), Shapes.withLast(xt.shapeRef(), w.out));
        int m = Shapes.rows(xt.shapeRef());
        // the scale's gradient needs x . codes^T without the scale: the forward with a unit scale, not y / scale
        float[] z = new float[dt.data.length];
        TernaryMatmul.matmul(parallel, xt.data, w.unitScale(), null, z, m);
        float[] scaleGrad = RowSums.sum(parallel, dt.data, z, 1, m, w.out);
        float[] biasGrad = RowSums.sum(parallel, dt.data, null, 1, m, w.out);
        CpuTensor input = null;
        if (inputGrad) {
            input = CpuTensor.zeros(xt.shapeRef());
            TransposedMatmul.ternary(parallel, dt.data, w, input.data, m);
        }
        return new TernaryLinearGrads(
                input, new CpuTensor(scaleGrad, new int[] {w.out}), new CpuTensor(biasGrad, new int[] {w.out}));
    }

    @Override
    public Tensor withTernaryScale(Tensor ternaryWeight, float[] scale) {
        return ternary("withTernaryScale", ternaryWeight).withScale(scale);
    }

    @Override
    public Tensor layerNormBackward(Tensor x, Tensor dy, float eps) {
        CpuTensor xt = cpu(x), dt = cpu(dy);
        Shapes.requireSame("layerNormBackward dy", dt.shapeRef(), xt.shapeRef());
        int c = Shapes.last(xt.shapeRef());
        CpuTensor out = CpuTensor.zeros(xt.shapeRef());
        parallel.run(Shapes.rows(xt.shapeRef()), Math.max(1, 32768 / Math.max(1, c)), (from, to) -> {
            for (int r = from; r < to; r++) {
                VectorMath.layerNormBackwardRow(xt.data, dt.data, r * c, c, eps, out.data);
            }
        });
        return out;
    }

    @Override
    public Tensor rmsNormBackward(Tensor x, Tensor scale, Tensor dy, float eps) {
        CpuTensor xt = cpu(x), dt = cpu(dy);
        float[] s = cpu(scale).data;
        int c = Shapes.last(xt.shapeRef());
        Shapes.requireEqual("rmsNormBackward", "scale length", s.length, c);
        Shapes.requireSame("rmsNormBackward dy", dt.shapeRef(), xt.shapeRef());
        CpuTensor out = CpuTensor.zeros(xt.shapeRef());
        parallel.run(Shapes.rows(xt.shapeRef()), Math.max(1, 32768 / Math.max(1, c)), (from, to) -> {
            for (int r = from; r < to; r++) {
                VectorMath.rmsNormBackwardRow(xt.data, dt.data, r * c, c, s, eps, out.data);
            }
        });
        return out;
    }

    @Override
    public Tensor geluBackward(Tensor x, Tensor dy) {
        return elementwise("geluBackward dy", cpu(x), cpu(dy), VectorMath::geluBackward);
    }

    @Override
    public Tensor siluBackward(Tensor x, Tensor dy) {
        return elementwise("siluBackward dy", cpu(x), cpu(dy), VectorMath::siluBackward);
    }

    @Override
    public ModulateGrads modulateBackward(Tensor x, Tensor scale, Tensor dy) {
        CpuTensor xt = cpu(x), sc = cpu(scale), dt = cpu(dy);
        int[] dims = OpChecks.batchRows("modulateBackward", xt.shapeRef(), sc.shapeRef(), sc.shapeRef());
        Shapes.requireSame("modulateBackward dy", dt.shapeRef(), xt.shapeRef());
        int bs = dims[0], l = dims[1], c = dims[2];
        CpuTensor input = CpuTensor.zeros(xt.shapeRef());
        parallel.run(bs * l, Math.max(1, 65536 / Math.max(1, c)), (from, to) -> {
            for (int r = from; r < to; r++) {
                VectorMath.mulOnePlusRow(dt.data, r * c, sc.data, (r / l) * c, input.data, r * c, c);
            }
        });
        float[] shiftGrad = RowSums.sum(parallel, dt.data, null, bs, l, c);
        float[] scaleGrad = RowSums.sum(parallel, dt.data, xt.data, bs, l, c);
        return new ModulateGrads(
                input, new CpuTensor(shiftGrad, sc.shapeRef()), new CpuTensor(scaleGrad, sc.shapeRef()));
    }

    @Override
    public GatedAddGrads gatedAddBackward(Tensor gate, Tensor y, Tensor dy) {
        CpuTensor gt = cpu(gate), yt = cpu(y), dt = cpu(dy);
        int[] dims = OpChecks.batchRows("gatedAddBackward", yt.shapeRef(), gt.shapeRef(), gt.shapeRef());
        Shapes.requireSame("gatedAddBackward dy", dt.shapeRef(), yt.shapeRef());
        int bs = dims[0], l = dims[1], c = dims[2];
        CpuTensor update = CpuTensor.zeros(yt.shapeRef());
        parallel.run(bs * l, Math.max(1, 65536 / Math.max(1, c)), (from, to) -> {
            for (int r = from; r < to; r++) {
                VectorMath.mulRow(dt.data, r * c, gt.data, (r / l) * c, update.data, r * c, c);
            }
        });
        float[] gateGrad = RowSums.sum(parallel, dt.data, yt.data, bs, l, c);
        return new GatedAddGrads(new CpuTensor(gateGrad, gt.shapeRef()), update);
    }

    @Override
    public Tensor ropeBackward(Tensor dy, Tensor pe) {
        return rotatePairs(dy, pe, true);
    }

    @Override
    public AttentionGrads attentionBackward(Tensor q, Tensor k, Tensor v, Tensor dOut, int heads, float scale) {
        CpuTensor qt = cpu(q), kt = cpu(k), vt = cpu(v), dt = cpu(dOut);
        String op = "attentionBackward";
        Shapes.requireRank(op, "q", qt.shapeRef(), 3);
        Shapes.requireSame(op + " k", kt.shapeRef(), qt.shapeRef());
        Shapes.requireSame(op + " v", vt.shapeRef(), qt.shapeRef());
        Shapes.requireSame(op + " dOut", dt.shapeRef(), qt.shapeRef());
        int bs = qt.shapeRef()[0], l = qt.shapeRef()[1], c = qt.shapeRef()[2];
        if (heads < 1 || c % heads != 0) {
            throw new IllegalArgumentException(op + ": " + c + " features do not split into " + heads + " heads");
        }
        float[][] g = CpuAttentionBackward.backward(
                parallel, qt.data, kt.data, vt.data, dt.data, bs, l, heads, c / heads, scale);
        return new AttentionGrads(
                new CpuTensor(g[0], qt.shapeRef()),
                new CpuTensor(g[1], qt.shapeRef()),
                new CpuTensor(g[2], qt.shapeRef()));
    }
}
