package ai.fluxbatch.kernel.cpu;

import java.util.Arrays;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorSpecies;

/**
 * 2-D convolution over {@code [B, C, H, W]} images. The general case is im2col + {@link TransposedMatmul}, one tile of
 * output positions at a time: a task gathers the patches of a tile as columns {@code [K, tile]} with
 * {@code K = C*kh*kw} in the weight's own order (with stride 1 a row of it is a run of an input row, one copy),
 * multiplies {@code weight [O, K] . patches} on its own thread into {@code [O, tile]} (every output one chain of fused
 * multiply-adds over K in order, so the tiling changes no bit), and copies each output channel's run into place with
 * its bias. A full im2col would not fit: 128 channels at 1024 x 1024 with a 3 x 3 kernel is 1,048,576 positions x
 * 1,152 floats = 4.8 GB. Tiles bound the scratch memory instead: a tile's patches hold about {@link #TILE_FLOATS}
 * floats (512 KiB, so they are still in the core's cache when the matmul reads them), its positions a whole number
 * of the product's column tiles ({@link TernaryMatmul#NW}, at least one), plus its {@code [O, tile]} result, and at
 * most one tile per thread is live (there: 64 positions, 0.3 MiB of patches + 32 KiB of result per thread). Tasks
 * split the positions, so the weight matrix is shared and read from cache by every thread. 1 x 1 convolutions
 * with stride 1 and no padding need no patches: they multiply {@code weight [O, C]} by the image {@code [C, H*W]}
 * directly, vectorized along the positions. With {@link DenseProducts#OPENBLAS} each tile's product is one
 * single-threaded OpenBLAS sgemm instead (every shape and kernel size, through the patches; {@link DenseRule} keeps
 * the Vector API otherwise, faster at the autoencoders' shapes).
 */
final class CpuConv2d {
    /** About how many floats the patches of one tile hold. */
    static final int TILE_FLOATS = 1 << 17;

    private static final ParallelFor SERIAL = new ParallelFor(1);
    private static final VectorSpecies<Float> S = FloatVector.SPECIES_PREFERRED;
    /** Positions per task of the 1 x 1 kernel: a multiple of every vector length, a few KiB of each channel. */
    private static final int POINTWISE_CHUNK = 512;

    private CpuConv2d() {}

    /**
     * Output {@code [b, o, ho, wo]} of {@code x [b, c, h, w]} and {@code weight [o, c, kh, kw]}; the im2col products
     * through OpenBLAS where {@code blas} is given, else through {@link TransposedMatmul}.
     */
    static float[] conv(
            ParallelFor parallel,
            BlasMatmul blas,
            float[] x,
            int b,
            int c,
            int h,
            int w,
            float[] weight,
            float[] bias,
            int o,
            int kh,
            int kw,
            int stride,
            int padTop,
            int padLeft,
            int ho,
            int wo) {
        int positions = ho * wo;
        float[] out = new float[Math.toIntExact((long) b * o * positions)];
        if (blas == null && kh == 1 && kw == 1 && stride == 1 && padTop == 0 && padLeft == 0 && ho == h && wo == w) {
            pointwise(parallel, x, weight, bias, out, b, c, o, positions);
            return out;
        }
        Im2col g = new Im2col(x, c, h, w, kh, kw, stride, padTop, padLeft, wo);
        int k = g.k();
        int tile = Math.min(positions, Math.max(1, TILE_FLOATS / k / TernaryMatmul.NW) * TernaryMatmul.NW);
        int tiles = (positions + tile - 1) / tile;
        long flopsPerTile = 2L * k * o * tile;
        int grain = (int) Math.max(1, 2_000_000 / Math.max(1, flopsPerTile));
        if (blas != null) {
            blas.tiles(weight, o, k, b * tiles, grain, (from, to, products) -> {
                float[] patches = new float[Math.toIntExact((long) k * tile)];
                float[] tileOut = new float[Math.toIntExact((long) o * tile)];
                for (int t = from; t < to; t++) {
                    int bi = t / tiles, p0 = (t % tiles) * tile, count = Math.min(positions, p0 + tile) - p0;
                    g.gather(bi, p0, count, patches);
                    products.multiply(patches, count, tileOut);
                    place(tileOut, bias, out, bi * o * positions + p0, o, count, positions);
                }
            });
            return out;
        }
        parallel.run(b * tiles, grain, (from, to) -> {
            float[] patches = new float[Math.toIntExact((long) k * tile)];
            float[] tileOut = new float[Math.toIntExact((long) o * tile)];
            for (int t = from; t < to; t++) {
                int bi = t / tiles, p0 = (t % tiles) * tile, count = Math.min(positions, p0 + tile) - p0;
                g.gather(bi, p0, count, patches);
                TransposedMatmul.dense(SERIAL, weight, patches, o, k, count, tileOut);
                place(tileOut, bias, out, bi * o * positions + p0, o, count, positions);
            }
        });
        return out;
    }

    /** Each output channel's run of a tile's result {@code [o, count]} into place, with its bias. */
    private static void place(
            float[] tileOut, float[] bias, float[] out, int outBase, int o, int count, int positions) {
        for (int oc = 0; oc < o; oc++) {
            int dst = outBase + oc * positions;
            float bv = bias == null ? 0f : bias[oc];
            for (int i = 0; i < count; i++) {
                out[dst + i] = tileOut[oc * count + i] + bv;
            }
        }
    }

    /** One image batch's geometry for gathering patches: {@code k = c * kh * kw} rows, one column per position. */
    private record Im2col(float[] x, int c, int h, int w, int kh, int kw, int stride, int padTop, int padLeft, int wo) {
        int k() {
            return c * kh * kw;
        }

        /** The patches of positions {@code [p0, p0 + count)} of image {@code bi} as columns {@code [k, count]}. */
        void gather(int bi, int p0, int count, float[] patches) {
            int xBase = bi * c * h * w;
            for (int i = 0; i < count; ) {
                int oy = (p0 + i) / wo, ox = (p0 + i) % wo;
                int run = Math.min(count - i, wo - ox);
                im2colRun(x, xBase, c, h, w, kh, kw, stride, padTop, padLeft, oy, ox, run, patches, i, count);
                i += run;
            }
        }
    }

    /**
     * The patches of {@code run} consecutive output positions of row {@code oy}, from column {@code ox0}, into columns
     * {@code first, first + 1, ...} of {@code patches} ([k][count]: one row per weight input, in the order channel,
     * dy, dx), zeros where a patch overhangs the image. With stride 1 each row's run is one copy of an input row's run.
     */
    private static void im2colRun(
            float[] x,
            int xBase,
            int c,
            int h,
            int w,
            int kh,
            int kw,
            int stride,
            int padTop,
            int padLeft,
            int oy,
            int ox0,
            int run,
            float[] patches,
            int first,
            int count) {
        for (int ci = 0; ci < c; ci++) {
            int plane = xBase + ci * h * w;
            for (int dy = 0; dy < kh; dy++) {
                int iy = oy * stride - padTop + dy;
                for (int dx = 0; dx < kw; dx++) {
                    int dst = ((ci * kh + dy) * kw + dx) * count + first;
                    if (iy < 0 || iy >= h) {
                        Arrays.fill(patches, dst, dst + run, 0f);
                        continue;
                    }
                    int src = plane + iy * w;
                    int ix0 = ox0 * stride - padLeft + dx;
                    if (stride != 1) {
                        for (int i = 0, ix = ix0; i < run; i++, ix += stride) {
                            patches[dst + i] = ix >= 0 && ix < w ? x[src + ix] : 0f;
                        }
                        continue;
                    }
                    // columns [lo, hi) of the run fall inside the input row, those before and after in the padding
                    int lo = Math.min(run, Math.max(0, -ix0)), hi = Math.max(lo, Math.min(run, w - ix0));
                    Arrays.fill(patches, dst, dst + lo, 0f);
                    if (hi > lo) {
                        System.arraycopy(x, src + ix0 + lo, patches, dst + lo, hi - lo);
                    }
                    Arrays.fill(patches, dst + hi, dst + run, 0f);
                }
            }
        }
    }

    /**
     * {@code out[b, o, p] = sum_c weight[o, c] * x[b, c, p] + bias[o]}: a 4-channel x 2-vector register tile, the
     * channel loop innermost, so each loaded vector of x serves four output channels.
     */
    static void pointwise(
            ParallelFor parallel,
            float[] x,
            float[] weight,
            float[] bias,
            float[] out,
            int b,
            int c,
            int o,
            int positions) {
        int chunks = (positions + POINTWISE_CHUNK - 1) / POINTWISE_CHUNK;
        long flopsPerTask = 2L * c * o * Math.min(positions, POINTWISE_CHUNK);
        int grain = (int) Math.max(1, 2_000_000 / Math.max(1, flopsPerTask));
        parallel.run(b * chunks, grain, (from, to) -> {
            for (int t = from; t < to; t++) {
                int bi = t / chunks;
                int p0 = (t % chunks) * POINTWISE_CHUNK;
                int p1 = Math.min(positions, p0 + POINTWISE_CHUNK);
                pointwiseTile(x, bi * c * positions, weight, bias, out, bi * o * positions, c, o, positions, p0, p1);
            }
        });
    }

    private static void pointwiseTile(
            float[] x,
            int xBase,
            float[] w,
            float[] bias,
            float[] out,
            int outBase,
            int c,
            int o,
            int positions,
            int p0,
            int p1) {
        int len = S.length();
        int oc = 0;
        for (; oc + 4 <= o; oc += 4) {
            float b0 = biasAt(bias, oc), b1 = biasAt(bias, oc + 1);
            float b2 = biasAt(bias, oc + 2), b3 = biasAt(bias, oc + 3);
            int w0 = oc * c, w1 = w0 + c, w2 = w1 + c, w3 = w2 + c;
            int o0 = outBase + oc * positions, o1 = o0 + positions, o2 = o1 + positions, o3 = o2 + positions;
            int p = p0;
            for (; p + 2 * len <= p1; p += 2 * len) {
                FloatVector a00 = FloatVector.broadcast(S, b0), a01 = a00;
                FloatVector a10 = FloatVector.broadcast(S, b1), a11 = a10;
                FloatVector a20 = FloatVector.broadcast(S, b2), a21 = a20;
                FloatVector a30 = FloatVector.broadcast(S, b3), a31 = a30;
                for (int ci = 0; ci < c; ci++) {
                    int xo = xBase + ci * positions + p;
                    FloatVector v0 = FloatVector.fromArray(S, x, xo);
                    FloatVector v1 = FloatVector.fromArray(S, x, xo + len);
                    FloatVector s = FloatVector.broadcast(S, w[w0 + ci]);
                    a00 = v0.fma(s, a00);
                    a01 = v1.fma(s, a01);
                    s = FloatVector.broadcast(S, w[w1 + ci]);
                    a10 = v0.fma(s, a10);
                    a11 = v1.fma(s, a11);
                    s = FloatVector.broadcast(S, w[w2 + ci]);
                    a20 = v0.fma(s, a20);
                    a21 = v1.fma(s, a21);
                    s = FloatVector.broadcast(S, w[w3 + ci]);
                    a30 = v0.fma(s, a30);
                    a31 = v1.fma(s, a31);
                }
                a00.intoArray(out, o0 + p);
                a01.intoArray(out, o0 + p + len);
                a10.intoArray(out, o1 + p);
                a11.intoArray(out, o1 + p + len);
                a20.intoArray(out, o2 + p);
                a21.intoArray(out, o2 + p + len);
                a30.intoArray(out, o3 + p);
                a31.intoArray(out, o3 + p + len);
            }
            for (int r = 0; r < 4; r++) {
                pointwiseScalar(
                        x,
                        xBase,
                        w,
                        (oc + r) * c,
                        biasAt(bias, oc + r),
                        out,
                        outBase + (oc + r) * positions,
                        c,
                        positions,
                        p,
                        p1);
            }
        }
        for (; oc < o; oc++) {
            int p = p0;
            int wo = oc * c, oo = outBase + oc * positions;
            for (; p + len <= p1; p += len) {
                FloatVector acc = FloatVector.broadcast(S, biasAt(bias, oc));
                for (int ci = 0; ci < c; ci++) {
                    acc = FloatVector.fromArray(S, x, xBase + ci * positions + p)
                            .fma(FloatVector.broadcast(S, w[wo + ci]), acc);
                }
                acc.intoArray(out, oo + p);
            }
            pointwiseScalar(x, xBase, w, wo, biasAt(bias, oc), out, oo, c, positions, p, p1);
        }
    }

    private static void pointwiseScalar(
            float[] x,
            int xBase,
            float[] w,
            int wo,
            float bias,
            float[] out,
            int oo,
            int c,
            int positions,
            int p0,
            int p1) {
        for (int p = p0; p < p1; p++) {
            float s = bias;
            for (int ci = 0; ci < c; ci++) {
                s = Math.fma(x[xBase + ci * positions + p], w[wo + ci], s); // as the vector path rounds
            }
            out[oo + p] = s;
        }
    }

    private static float biasAt(float[] bias, int i) {
        return bias == null ? 0f : bias[i];
    }
}
