package ai.fluxbatch.kernel.cuda;

import ai.fluxbatch.kernel.Backend;
import ai.fluxbatch.kernel.Tensor;
import ai.fluxbatch.kernel.TestData;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.function.BiFunction;

/**
 * The reverse-mode operations of {@link Backend} as comparison cases (one per output of an operation), shared by the
 * harnesses that run the CUDA backend against the CPU backend: on the emulated device ({@code CudaBackendTest}), on
 * the fake CUDA driver ({@code CudaDriverDeviceOnFakeDriverMain}) and on a GPU ({@code CudaBackwardOnGpuTest}). The
 * shapes reach every path of the CUDA backend: the ternary input gradient's kernel (one and several row tiles) and
 * its GEMM path, several blocks of the element-wise and row kernels, attention in chunks of heads.
 */
final class BackwardCases {
    /** One comparison: {@code op} on both backends over {@code inputs} uploaded with {@code shapes}. */
    record Case(String what, float[][] inputs, int[][] shapes, BiFunction<Backend, Tensor[], Tensor> op) {}

    /** Outputs and inputs of the ternary cases. */
    static final int TERNARY_OUT = 70;

    static final int TERNARY_IN = 45;

    private BackwardCases() {}

    /** Random ternary codes {@code [70, 45]} in the interchange packing. */
    static byte[] ternaryCodes(Random random) {
        byte[] codes = new byte[TERNARY_OUT * TERNARY_IN];
        for (int i = 0; i < codes.length; i++) {
            codes[i] = (byte) (random.nextInt(3) - 1);
        }
        return TestData.hfPack(codes, TERNARY_OUT, TERNARY_IN);
    }

    /** A per-channel scale for the ternary cases with a zero channel (the scale gradient must not divide by it). */
    static float[] ternaryScale(Random random) {
        float[] scale = TestData.randn(random, TERNARY_OUT);
        scale[3] = 0f;
        return scale;
    }

    /** Rows of x for the ternary cases: the input-gradient kernel with 1 and 3 row tiles, then the GEMM path. */
    static int[] ternaryRows() {
        return new int[] {1, 16, 17, 40, TernaryLaunch.DENSE_FROM_M, TernaryLaunch.DENSE_FROM_M + 3};
    }

    static List<Case> all(Random random) {
        List<Case> cases = new ArrayList<>();
        cases.add(new Case("zeros", new float[0][], new int[0][], (be, t) -> be.zeros(2, 3, 5)));

        int[] dy = {2, 3, 9}, w = {9, 20};
        cases.add(new Case(
                "linearBackward", data(random, dy, w), new int[][] {dy, w}, (be, t) -> be.linearBackward(t[0], t[1])));
        int[] dy2 = {5, 48}, w2 = {48, 64};
        cases.add(new Case(
                "linearBackward 5 x 48 -> 64",
                data(random, dy2, w2),
                new int[][] {dy2, w2},
                (be, t) -> be.linearBackward(t[0], t[1])));

        byte[] packed = ternaryCodes(random);
        float[] scale = ternaryScale(random);
        for (int m : ternaryRows()) {
            int[] xs = {m, TERNARY_IN}, ys = {m, TERNARY_OUT};
            String at = "ternaryLinearBackward M=" + m + " ("
                    + (m >= TernaryLaunch.DENSE_FROM_M ? "decode + GEMM" : TernaryLaunch.INPUT_GRAD_KERNEL) + ") ";
            float[][] in = data(random, xs, ys);
            int[][] shapes = {xs, ys};
            cases.add(new Case(
                    at + "input",
                    in,
                    shapes,
                    (be, t) -> ternaryGrads(be, t, packed, scale, true).input()));
            cases.add(new Case(
                    at + "scale",
                    in,
                    shapes,
                    (be, t) -> ternaryGrads(be, t, packed, scale, true).scale()));
            cases.add(new Case(
                    at + "bias",
                    in,
                    shapes,
                    (be, t) -> ternaryGrads(be, t, packed, scale, false).bias()));
        }
        int[] x3 = {2, 9, TERNARY_IN}, y3 = {2, 9, TERNARY_OUT};
        cases.add(new Case(
                "ternaryLinearBackward [2, 9, in] input",
                data(random, x3, y3),
                new int[][] {x3, y3},
                (be, t) -> ternaryGrads(be, t, packed, scale, true).input()));
        float[] scale2 = TestData.randn(random, TERNARY_OUT);
        int[] xw = {17, TERNARY_IN}, bw = {TERNARY_OUT};
        cases.add(new Case(
                "withTernaryScale, then ternaryLinear",
                data(random, xw, bw),
                new int[][] {xw, bw},
                (be, t) -> be.ternaryLinear(
                        t[0],
                        be.withTernaryScale(be.uploadTernary(packed, TERNARY_OUT, TERNARY_IN, scale), scale2),
                        t[1])));

        int[] ns = {2, 5, 40}, c = {40}, wide = {2, 300}, cw = {300};
        for (float eps : new float[] {1e-6f, 0.5f}) {
            cases.add(new Case(
                    "layerNormBackward eps " + eps,
                    data(random, ns, ns),
                    new int[][] {ns, ns},
                    (be, t) -> be.layerNormBackward(t[0], t[1], eps)));
            cases.add(new Case(
                    "rmsNormBackward eps " + eps,
                    data(random, ns, c, ns),
                    new int[][] {ns, c, ns},
                    (be, t) -> be.rmsNormBackward(t[0], t[1], t[2], eps)));
        }
        cases.add(new Case(
                "layerNormBackward, 300 columns",
                data(random, wide, wide),
                new int[][] {wide, wide},
                (be, t) -> be.layerNormBackward(t[0], t[1], 1e-6f)));
        cases.add(new Case(
                "rmsNormBackward, 300 columns",
                data(random, wide, cw, wide),
                new int[][] {wide, cw, wide},
                (be, t) -> be.rmsNormBackward(t[0], t[1], t[2], 1e-6f)));

        int[] s = {2, 3, 37}, big = {4, 300};
        for (int[] shape : new int[][] {s, big}) {
            String at = " " + Tensor.describe(shape);
            cases.add(new Case(
                    "geluBackward" + at,
                    data(random, shape, shape),
                    new int[][] {shape, shape},
                    (be, t) -> be.geluBackward(t[0], t[1])));
            cases.add(new Case(
                    "siluBackward" + at,
                    data(random, shape, shape),
                    new int[][] {shape, shape},
                    (be, t) -> be.siluBackward(t[0], t[1])));
        }

        int[] px = {2, 7, 12}, pv = {2, 12};
        float[][] mod = data(random, px, pv, px);
        int[][] modShapes = {px, pv, px};
        cases.add(new Case(
                "modulateBackward input",
                mod,
                modShapes,
                (be, t) -> be.modulateBackward(t[0], t[1], t[2]).input()));
        cases.add(new Case(
                "modulateBackward shift",
                mod,
                modShapes,
                (be, t) -> be.modulateBackward(t[0], t[1], t[2]).shift()));
        cases.add(new Case(
                "modulateBackward scale",
                mod,
                modShapes,
                (be, t) -> be.modulateBackward(t[0], t[1], t[2]).scale()));
        int[] lx = {1, 300, 5}, lv = {1, 5};
        cases.add(new Case(
                "modulateBackward scale, 300 tokens",
                data(random, lx, lv, lx),
                new int[][] {lx, lv, lx},
                (be, t) -> be.modulateBackward(t[0], t[1], t[2]).scale()));
        float[][] gated = data(random, pv, px, px);
        int[][] gatedShapes = {pv, px, px};
        cases.add(new Case(
                "gatedAddBackward gate",
                gated,
                gatedShapes,
                (be, t) -> be.gatedAddBackward(t[0], t[1], t[2]).gate()));
        cases.add(new Case(
                "gatedAddBackward update",
                gated,
                gatedShapes,
                (be, t) -> be.gatedAddBackward(t[0], t[1], t[2]).update()));

        int[] rx = {2, 3, 4, 8}, pe = {2, 3, 4, 2, 2};
        cases.add(new Case(
                "ropeBackward", data(random, rx, pe), new int[][] {rx, pe}, (be, t) -> be.ropeBackward(t[0], t[1])));

        int[] qs = {2, 9, 12};
        float[][] qkv = data(random, qs, qs, qs, qs);
        int[][] qkvShapes = {qs, qs, qs, qs};
        for (float sc : new float[] {0.5f, 0.7f}) {
            String at = "attentionBackward 3 heads, scale " + sc + " ";
            cases.add(new Case(
                    at + "query",
                    qkv,
                    qkvShapes,
                    (be, t) ->
                            be.attentionBackward(t[0], t[1], t[2], t[3], 3, sc).query()));
            cases.add(new Case(
                    at + "key",
                    qkv,
                    qkvShapes,
                    (be, t) ->
                            be.attentionBackward(t[0], t[1], t[2], t[3], 3, sc).key()));
            cases.add(new Case(
                    at + "value",
                    qkv,
                    qkvShapes,
                    (be, t) ->
                            be.attentionBackward(t[0], t[1], t[2], t[3], 3, sc).value()));
        }
        return cases;
    }

    private static Backend.TernaryLinearGrads ternaryGrads(
            Backend be, Tensor[] t, byte[] packed, float[] scale, boolean inputGrad) {
        Tensor w = be.uploadTernary(packed, TERNARY_OUT, TERNARY_IN, scale);
        return be.ternaryLinearBackward(t[0], w, t[1], inputGrad);
    }

    private static float[][] data(Random random, int[]... shapes) {
        float[][] d = new float[shapes.length][];
        for (int i = 0; i < shapes.length; i++) {
            d[i] = TestData.randn(random, shapes[i]);
        }
        return d;
    }
}
