package ai.fluxbatch.kernel.cuda;

/**
 * A Java port of what the kernels of {@code ternary_matmul.cu} compute on the {@link GpuTernaryLayout} words,
 * operation for operation (fmaf is {@link Math#fma}; the epilogue a rounded multiply then a rounded add), so that the
 * layout's semantics and the kernels' summation order are pinned by tests without a GPU.
 */
final class KernelPort {
    private KernelPort() {}

    private static float weight(int plus, int minus, int b) {
        return (float) ((plus >>> b) & 1) - (float) ((minus >>> b) & 1);
    }

    private static float epilogue(float acc, float[] scale, float[] bias, int o) {
        float y = acc * scale[o];
        return bias != null ? y + bias[o] : y;
    }

    /** ternary_matmul_small_m: lane l sums chunks l, l + 32, ...; then the xor butterfly; lane 0 stores. */
    static float[] smallM(float[] x, int[] w, float[] scale, float[] bias, int m, int n, int k) {
        int kw = GpuTernaryLayout.chunks(k);
        float[] y = new float[m * n];
        float[] lanes = new float[32];
        float[] next = new float[32];
        for (int o = 0; o < n; o++) {
            for (int r = 0; r < m; r++) {
                for (int lane = 0; lane < 32; lane++) {
                    float a = 0f;
                    for (int c = lane; c < kw; c += 32) {
                        int plus = w[2 * (o * kw + c)], minus = w[2 * (o * kw + c) + 1];
                        int k0 = c * 32, kn = Math.min(32, k - k0);
                        for (int b = 0; b < kn; b++) {
                            a = Math.fma(x[r * k + k0 + b], weight(plus, minus, b), a);
                        }
                    }
                    lanes[lane] = a;
                }
                for (int d = 16; d > 0; d >>= 1) {
                    for (int lane = 0; lane < 32; lane++) {
                        next[lane] = lanes[lane] + lanes[lane ^ d];
                    }
                    System.arraycopy(next, 0, lanes, 0, 32);
                }
                y[r * n + o] = epilogue(lanes[0], scale, bias, o);
            }
        }
        return y;
    }

    /**
     * ternary_matmul_tiled: per output, acc = fma(x, w, acc) over the chunks in order, the 32 inputs of each in
     * order, x of the padding inputs being 0 in the shared tile.
     */
    static float[] tiled(float[] x, int[] w, float[] scale, float[] bias, int m, int n, int k) {
        int kw = GpuTernaryLayout.chunks(k);
        float[] y = new float[m * n];
        for (int r = 0; r < m; r++) {
            for (int o = 0; o < n; o++) {
                float acc = 0f;
                for (int c = 0; c < kw; c++) {
                    int plus = w[2 * (o * kw + c)], minus = w[2 * (o * kw + c) + 1];
                    for (int b = 0; b < TernaryLaunch.TILE_K; b++) {
                        int kk = c * 32 + b;
                        float xv = kk < k ? x[r * k + kk] : 0f;
                        acc = Math.fma(xv, weight(plus, minus, b), acc);
                    }
                }
                y[r * n + o] = epilogue(acc, scale, bias, o);
            }
        }
        return y;
    }

    /** What {@link TernaryLaunch#plan} launches for these sizes. */
    static float[] run(float[] x, int[] w, float[] scale, float[] bias, int m, int n, int k) {
        return TernaryLaunch.plan(m, n, k).kernel().equals(TernaryLaunch.SMALL_M_KERNEL)
                ? smallM(x, w, scale, bias, m, n, k)
                : tiled(x, w, scale, bias, m, n, k);
    }

    /**
     * ternary_matmul_input_grad: {@code dx [m, k] = (dy [m, n] * scale) . codes}; per input, warp w sums
     * {@code fma(dy * scale, code, acc)} over its segment of ceil(n / 8) outputs in order, then the 8 partials are
     * added in warp order.
     */
    static float[] inputGrad(float[] dy, int[] w, float[] scale, int m, int n, int k) {
        int kw = GpuTernaryLayout.chunks(k);
        int warps = TernaryLaunch.INPUT_GRAD_WARPS, seg = (n + warps - 1) / warps;
        float[] dx = new float[m * k];
        for (int r = 0; r < m; r++) {
            for (int kk = 0; kk < k; kk++) {
                int c = kk / 32, b = kk % 32;
                float total = 0f;
                for (int warp = 0; warp < warps; warp++) {
                    float acc = 0f;
                    for (int o = warp * seg; o < Math.min(n, (warp + 1) * seg); o++) {
                        int plus = w[2 * (o * kw + c)], minus = w[2 * (o * kw + c) + 1];
                        acc = Math.fma(dy[r * n + o] * scale[o], weight(plus, minus, b), acc);
                    }
                    total = warp == 0 ? acc : total + acc;
                }
                dx[r * k + kk] = total;
            }
        }
        return dx;
    }
}
