package ai.fluxbatch.kernel.cuda;

/**
 * The kernels of {@code fluxbatch_ops.cu} (module {@link #MODULE}): their names, parameter lists and launch
 * geometry. All tensors are row-major float32 (but the bfloat16 weights of {@link #BF16_WIDEN} and
 * {@link #EMBEDDING_BF16}); a pointer parameter may be 0 (null) only where it says so. Counts are ints; callers check
 * that every count fits. This class is the contract between the CUDA sources, the backend that
 * launches them and the emulation the tests run them in.
 *
 * <p>Element-wise kernels ({@link #ADD} ... {@link #UPSAMPLE_NEAREST_2X}) use a grid-stride loop over their index
 * space: block {@link #BLOCK} threads, grid {@link #elementwise(long)}. Row kernels ({@link #LAYER_NORM},
 * {@link #RMS_NORM}, {@link #SOFTMAX_ROWS}, {@link #GROUP_NORM}) run one block of {@link #BLOCK} threads per row
 * (per group), grid {@link #rows(int)}, and reduce in float32 with a two-pass mean and variance.
 *
 * <p>Reverse mode: the element-wise {@link #FILL}, {@link #GELU_TANH_BACKWARD}, {@link #SILU_BACKWARD},
 * {@link #MUL_PER_SAMPLE} and {@link #ROPE_BACKWARD}; the row kernels {@link #LAYER_NORM_BACKWARD},
 * {@link #RMS_NORM_BACKWARD} and {@link #SOFTMAX_BACKWARD_ROWS}; and {@link #SUM_ROWS}, the one reduction over rows
 * (deterministic: a fixed order, no atomics).
 *
 * <p>Attention: {@link #FLASH_ATTENTION_D32}, {@link #FLASH_ATTENTION_D64} and {@link #FLASH_ATTENTION_D128}, one
 * kernel per padded head size ({@link #flashAttentionKernel(int)}), grid {@link #flashAttention(int, int, int)}.
 */
public final class OpsKernels {
    public static final String MODULE = "fluxbatch_ops";
    public static final int BLOCK = 256;
    /** Blocks of an element-wise launch at most; the grid-stride loop covers the rest. */
    public static final int MAX_ELEMENTWISE_BLOCKS = 65535 * 8;

    public static final int TRANSPOSE_TILE = 32;
    public static final int TRANSPOSE_ROWS = 8;

    /** {@code add(const float* a, const float* b, float* y, int n)}: {@code y[i] = a[i] + b[i]}. */
    public static final String ADD = "fb_add";
    /** {@code mul(const float* a, const float* b, float* y, int n)}: {@code y[i] = a[i] * b[i]}. */
    public static final String MUL = "fb_mul";
    /**
     * {@code gelu_tanh(const float* x, float* y, int n)}:
     * {@code y = 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))}.
     */
    public static final String GELU_TANH = "fb_gelu_tanh";
    /** {@code silu(const float* x, float* y, int n)}: {@code y = x / (1 + exp(-x))}. */
    public static final String SILU = "fb_silu";
    /** {@code quick_gelu(const float* x, float* y, int n)}: {@code y = x / (1 + exp(-1.702 x))}. */
    public static final String QUICK_GELU = "fb_quick_gelu";
    /**
     * {@code modulate(const float* x, const float* shift, const float* scale, float* y, int B, int L, int C)}:
     * {@code y[b,l,c] = (1 + scale[b,c]) x[b,l,c] + shift[b,c]}; index space B L C.
     */
    public static final String MODULATE = "fb_modulate";
    /**
     * {@code gated_add(const float* x, const float* gate, const float* v, float* y, int B, int L, int C)}:
     * {@code y[b,l,c] = x[b,l,c] + gate[b,c] v[b,l,c]}; index space B L C.
     */
    public static final String GATED_ADD = "fb_gated_add";
    /**
     * {@code add_bias_rows(float* y, const float* bias, int rows, int cols)}: in place,
     * {@code y[r,c] += bias[c]}; index space rows cols.
     */
    public static final String ADD_BIAS_ROWS = "fb_add_bias_rows";
    /**
     * {@code add_bias_channels(float* y, const float* bias, int B, int C, int HW)}: in place,
     * {@code y[b,c,p] += bias[c]}; index space B C HW.
     */
    public static final String ADD_BIAS_CHANNELS = "fb_add_bias_channels";
    /**
     * {@code ternary_decode(const unsigned int* w, float* y, int N, int K)}: the codes of a ternary weight in
     * {@link GpuTernaryLayout} as floats, {@code y [N, K]}, {@code y[o,k] = code(o,k)} in {-1, 0, +1}; index space
     * N K. The large-M path of the 1.58-bit product: decode, one GEMM, then {@link #SCALE_BIAS_ROWS}.
     */
    public static final String TERNARY_DECODE = "fb_ternary_decode";
    /**
     * {@code scale_bias_rows(float* y, const float* scale, const float* bias, int rows, int cols)}: in place,
     * {@code y[r,c] = y[r,c] * scale[c] + bias[c]} (a rounded multiply, then a rounded add; no bias when null), the
     * ternary kernels' epilogue; index space rows cols.
     */
    public static final String SCALE_BIAS_ROWS = "fb_scale_bias_rows";
    /**
     * {@code rope(const float* x, const float* pe, float* y, int B, int L, int H, int D)}: x, y {@code [B,L,H,D]},
     * pe {@code [B,L,D/2,2,2]}; for each pair {@code i < D/2}, {@code y[2i+r] = pe[b,l,i,r,0] x[2i] + pe[b,l,i,r,1]
     * x[2i+1]} (r = 0, 1); index space B L H D/2 (one pair per index).
     */
    public static final String ROPE = "fb_rope";
    /**
     * {@code embedding(const float* table, const int* ids, float* y, int n, int C)}:
     * {@code y[i,c] = table[ids[i],c]}; index space n C.
     */
    public static final String EMBEDDING = "fb_embedding";
    /**
     * {@code bf16_widen(const unsigned short* w, float* y, int n)}: {@code y[i] = w[i]} for a bfloat16 weight (row-major
     * 16-bit patterns, two to a 32-bit word, the first in the low half), widened exactly: the float with bits
     * {@code w[i] << 16}; index space n. A {@code linear} with a bfloat16 weight widens it into a scratch weight for
     * one float32 GEMM.
     */
    public static final String BF16_WIDEN = "fb_bf16_widen";
    /**
     * {@code embedding_bf16(const unsigned short* table, const int* ids, float* y, int n, int C)}:
     * {@code y[i,c] = table[ids[i],c]} for a bfloat16 table, widened as {@link #BF16_WIDEN} does; index space n C.
     */
    public static final String EMBEDDING_BF16 = "fb_embedding_bf16";
    /**
     * {@code im2col(const float* x, float* col, int C, int H, int W, int kh, int kw, int stride, int padTop,
     * int padLeft, int Wo, int p0, int P)}: for one image {@code x [C,H,W]}, {@code col [C kh kw, P]} holds, in row
     * {@code (c kh + i) kw + j} and column {@code q}, the input under kernel tap (i, j) of output position
     * {@code p = p0 + q} ({@code oy = p / Wo, ox = p % Wo}): {@code x[c, oy stride - padTop + i, ox stride - padLeft
     * + j]}, or 0 outside the image; index space C kh kw P.
     */
    public static final String IM2COL = "fb_im2col";
    /**
     * {@code upsample_nearest2x(const float* x, float* y, int BC, int H, int W)}: {@code y [BC, 2H, 2W]},
     * {@code y[n, i, j] = x[n, i/2, j/2]}; index space BC 4 H W.
     */
    public static final String UPSAMPLE_NEAREST_2X = "fb_upsample_nearest2x";
    /**
     * {@code layer_norm(const float* x, const float* weight, const float* bias, float* y, int rows, int cols,
     * float eps)}: each row normalized to zero mean and unit (biased) variance, {@code (x - mean) / sqrt(var + eps)},
     * then {@code * weight[c] + bias[c]} when weight is not null (weight and bias are both null or both not).
     */
    public static final String LAYER_NORM = "fb_layer_norm";
    /**
     * {@code rms_norm(const float* x, const float* scale, float* y, int rows, int cols, float eps)}:
     * {@code y = x / sqrt(mean(x^2) + eps) * scale[c]} per row.
     */
    public static final String RMS_NORM = "fb_rms_norm";
    /**
     * {@code softmax_rows(float* s, const float* bias, int rows, int cols, int Lq, int causal)}: in place over
     * scores {@code s [rows, cols]} whose row r is query {@code i = r % Lq}: {@code s[r,j] += bias[r,j]} when bias
     * is not null (bias has the same layout as s), {@code s[r,j] = -inf} for {@code j > i} when causal is not 0,
     * then softmax over j (max subtracted first).
     */
    public static final String SOFTMAX_ROWS = "fb_softmax_rows";
    /**
     * {@code group_norm(const float* x, const float* weight, const float* bias, float* y, int B, int C, int HW,
     * int groups, float eps)}: one block per (b, g), grid {@code B groups}: the {@code C/groups} channels of group g
     * with all their HW positions (consecutive in memory) normalized together, then {@code * weight[c] + bias[c]}.
     */
    public static final String GROUP_NORM = "fb_group_norm";
    /**
     * {@code transpose_last2(const float* x, float* y, int M, int N)}: {@code x [batch, M, N]} to
     * {@code y [batch, N, M]}; tiles of 32 x 32 through shared memory, block (32, 8), grid
     * {@link #transpose(int, int, int)}, batch on grid z.
     */
    public static final String TRANSPOSE_LAST2 = "fb_transpose_last2";

    /**
     * {@code flash_attention_d32(const float* q, const float* k, const float* v, const float* bias, float* y, int B,
     * int L, int H, int D, float scale, int causal)}: {@code y = softmax(scale q k^T + bias, causal) v} for
     * {@code q, k, v, y [B, L, H D]} (head h of token l in columns {@code h D .. h D + D - 1}), {@code bias [H, L, L]}
     * shared by the batch (may be null), keys {@code j > i} masked for query i when causal is not 0; heads of
     * {@code D <= 32} features, key tiles of 64. Flash attention: the {@code L x L} scores are never stored; per block
     * of {@link #ATTENTION_QUERIES} queries of one head and sample, key and value tiles pass through shared memory
     * and each row keeps a running maximum, sum and output in float32 (the online softmax), written once at the end.
     * Every sum in one fixed order: the same bits every run. Block {@link #ATTENTION_THREADS}, grid
     * {@link #flashAttention(int, int, int)}; the semantics in full are in {@code fluxbatch_ops.cu}.
     */
    public static final String FLASH_ATTENTION_D32 = "fb_flash_attention_d32";
    /** {@link #FLASH_ATTENTION_D32} for heads of {@code D <= 64} features, key tiles of 64. */
    public static final String FLASH_ATTENTION_D64 = "fb_flash_attention_d64";
    /** {@link #FLASH_ATTENTION_D32} for heads of {@code D <= 128} features, key tiles of 32. */
    public static final String FLASH_ATTENTION_D128 = "fb_flash_attention_d128";

    // ---- reverse mode

    /** {@code fill(float* y, float value, int n)}: {@code y[i] = value}. */
    public static final String FILL = "fb_fill";
    /**
     * {@code gelu_tanh_backward(const float* x, const float* dy, float* y, int n)}: {@code y = dy gelu'(x)}, gelu the
     * tanh approximation of {@link #GELU_TANH}.
     */
    public static final String GELU_TANH_BACKWARD = "fb_gelu_tanh_backward";
    /**
     * {@code silu_backward(const float* x, const float* dy, float* y, int n)}: {@code y = dy s (1 + x (1 - s))},
     * {@code s = 1 / (1 + exp(-x))}.
     */
    public static final String SILU_BACKWARD = "fb_silu_backward";
    /**
     * {@code mul_per_sample(const float* x, const float* v, float offset, float* y, int B, int L, int C)}:
     * {@code y[b,l,c] = (offset + v[b,c]) x[b,l,c]}; index space B L C. The input gradient of {@link #MODULATE}
     * (offset 1, v its scale) and the update gradient of {@link #GATED_ADD} (offset 0, v the gate).
     */
    public static final String MUL_PER_SAMPLE = "fb_mul_per_sample";
    /**
     * {@code rope_backward(const float* dy, const float* pe, float* y, int B, int L, int H, int D)}: the gradient of
     * {@link #ROPE}, each pair rotated by the transposed matrix: {@code y[2i+r] = pe[b,l,i,0,r] dy[2i] + pe[b,l,i,1,r]
     * dy[2i+1]}; index space B L H D/2.
     */
    public static final String ROPE_BACKWARD = "fb_rope_backward";
    /**
     * {@code layer_norm_backward(const float* x, const float* dy, float* y, int rows, int cols, float eps)}: the
     * gradient of {@link #LAYER_NORM} without affine parameters, {@code y = rstd (dy - mean(dy) - xhat mean(dy xhat))}
     * per row with {@code xhat = (x - mean) rstd}; one block per row.
     */
    public static final String LAYER_NORM_BACKWARD = "fb_layer_norm_backward";
    /**
     * {@code rms_norm_backward(const float* x, const float* scale, const float* dy, float* y, int rows, int cols,
     * float eps)}: the gradient of {@link #RMS_NORM} with the scale frozen, {@code y = r (g - x r^2 mean(g x))} per
     * row with {@code r = 1 / sqrt(mean(x^2) + eps)} and {@code g = dy scale}; one block per row.
     */
    public static final String RMS_NORM_BACKWARD = "fb_rms_norm_backward";
    /**
     * {@code softmax_backward_rows(const float* p, float* g, int rows, int cols)}: in place over {@code g [rows,
     * cols]}, given the softmax probabilities {@code p} of the same layout: {@code g = p (g - sum_j g[j] p[j])} per
     * row; one block per row.
     */
    public static final String SOFTMAX_BACKWARD_ROWS = "fb_softmax_backward_rows";
    /**
     * {@code sum_rows(const float* a, const float* v, float* y, int B, int L, int C)}: {@code y[b,c] = sum over l of
     * a[b,l,c] v[b,l,c]} ({@code a[b,l,c]} alone when v is null), {@code a, v [B,L,C]}, {@code y [B,C]}; block
     * (32, 8), grid {@link #sumRows(int, int)}. Thread (tx, ty) sums rows {@code ty, ty + 8, ...} of its column in
     * order with {@code fmaf(a, v, acc)} (or {@code acc + a}), then the 8 partials are added in order of ty: one fixed
     * order that depends only on L, no atomics. The gradients' sums over tokens (bias, scale, shift, gate).
     */
    public static final String SUM_ROWS = "fb_sum_rows";

    private OpsKernels() {}

    /** Blocks for {@code n} elements, capped at {@link #MAX_ELEMENTWISE_BLOCKS}. */
    public static LaunchGeometry elementwise(long n) {
        if (n < 1) {
            throw new IllegalArgumentException("an element-wise launch over " + n + " elements");
        }
        long blocks = Math.min((n + BLOCK - 1) / BLOCK, MAX_ELEMENTWISE_BLOCKS);
        return LaunchGeometry.of((int) blocks, BLOCK);
    }

    /** One block per row. */
    public static LaunchGeometry rows(int rows) {
        if (rows < 1) {
            throw new IllegalArgumentException("a row launch over " + rows + " rows");
        }
        return LaunchGeometry.of(rows, BLOCK);
    }

    /** Columns of one {@link #SUM_ROWS} block (block x) and the rows it sums in parallel (block y). */
    public static final int SUM_COLS = 32;

    public static final int SUM_ROWS_PARALLEL = 8;

    /** {@link #SUM_ROWS} over {@code [B, L, C]}: grid {@code (ceil(C / 32), B)}, block (32, 8). */
    public static LaunchGeometry sumRows(int b, int c) {
        if (b < 1 || c < 1) {
            throw new IllegalArgumentException("a column sum over " + b + " samples of " + c + " columns");
        }
        return new LaunchGeometry((c + SUM_COLS - 1) / SUM_COLS, b, 1, SUM_COLS, SUM_ROWS_PARALLEL, 1, 0);
    }

    /** Queries per block of the flash attention kernels (4 warps of 8 query rows each). */
    public static final int ATTENTION_QUERIES = 32;

    /** Threads per block of the flash attention kernels. */
    public static final int ATTENTION_THREADS = 128;

    /** The largest head size a flash attention kernel takes ({@link #FLASH_ATTENTION_D128}). */
    public static final int FLASH_MAX_HEAD = 128;

    /**
     * The flash attention kernel for heads of {@code d} features: the one with the smallest padded size that holds
     * them (32, 64 or 128).
     *
     * @throws IllegalArgumentException when {@code d} is not in 1 .. {@link #FLASH_MAX_HEAD}
     */
    public static String flashAttentionKernel(int d) {
        if (d < 1 || d > FLASH_MAX_HEAD) {
            throw new IllegalArgumentException(
                    "flash attention takes heads of 1 to " + FLASH_MAX_HEAD + " features, not " + d);
        }
        return d <= 32 ? FLASH_ATTENTION_D32 : d <= 64 ? FLASH_ATTENTION_D64 : FLASH_ATTENTION_D128;
    }

    /**
     * A flash attention launch over {@code b} samples of {@code l} tokens and {@code heads} heads: grid
     * {@code (ceil(l / 32), heads, b)}, block {@link #ATTENTION_THREADS}, static shared memory only.
     */
    public static LaunchGeometry flashAttention(int b, int l, int heads) {
        if (b < 1 || l < 1 || heads < 1) {
            throw new IllegalArgumentException(
                    "a flash attention launch over " + b + " samples of " + l + " tokens and " + heads + " heads");
        }
        return new LaunchGeometry(
                (l + ATTENTION_QUERIES - 1) / ATTENTION_QUERIES, heads, b, ATTENTION_THREADS, 1, 1, 0);
    }

    /** Transpose tiles of {@code [batch, M, N]}. */
    public static LaunchGeometry transpose(int batch, int m, int n) {
        return new LaunchGeometry(
                (n + TRANSPOSE_TILE - 1) / TRANSPOSE_TILE,
                (m + TRANSPOSE_TILE - 1) / TRANSPOSE_TILE,
                batch,
                TRANSPOSE_TILE,
                TRANSPOSE_ROWS,
                1,
                0);
    }
}
