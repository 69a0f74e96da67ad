// fluxbatch: the element-wise, row and layout kernels of the CUDA backend (module fluxbatch_ops).
//
// The contract is ai.fluxbatch.kernel.cuda.OpsKernels: kernel names, parameter lists, semantics, launch geometry.
// All tensors are row-major float32 (the bfloat16 weights of fb_bf16_widen and fb_embedding_bf16 aside); a pointer
// may be nullptr only where OpsKernels says so (layer_norm's weight and bias, softmax_rows' bias). Counts are ints;
// index arithmetic is 64-bit (fb_idx) so products such as B L C never overflow. No #include and no header macros
// (INFINITY): the file also compiles with NVRTC as it stands.
//
// Element-wise (block 256, grid-stride loop over the index space named in OpsKernels, one output per index):
//   fb_add, fb_mul                       y = a + b, a * b
//   fb_gelu_tanh, fb_silu, fb_quick_gelu activations (tanhf, expf)
//   fb_modulate, fb_gated_add            per-(b, c) adaLN shift/scale and gate over [B, L, C]
//   fb_add_bias_rows, fb_add_bias_channels  in place, bias over the last dim / over the C of [B, C, HW]
//   fb_ternary_decode, fb_scale_bias_rows   the large-M 1.58-bit product: codes to floats, GEMM, then the epilogue
//   fb_rope                              one index per (b, l, h, pair i): a 2 x 2 rotation from pe [B, L, D/2, 2, 2]
//   fb_embedding                         y[i, :] = table[ids[i], :]
//   fb_bf16_widen, fb_embedding_bf16     a bfloat16 weight widened to float32, exactly (bits << 16): all of it (the
//                                        linear layer's scratch for one GEMM), or the rows ids name
//   fb_im2col                            one image, output positions p0 .. p0 + P - 1, zero padding outside
//   fb_upsample_nearest2x                [BC, H, W] -> [BC, 2H, 2W]
// Row kernels (one block of 256 threads per row, fb_group_norm per (b, g), blockIdx.x = b groups + g): the threads
//   stride over the row, then a block reduction (xor warp shuffles, one partial per warp in shared memory, warp 0
//   sums those), float32, deterministic. Two passes: mean = sum / n, then var = sum((x - mean)^2) / n, then the
//   write with rstd = 1 / sqrtf(var + eps).
//   fb_layer_norm, fb_rms_norm, fb_group_norm, fb_softmax_rows (bias, causal mask j > r % Lq, max subtracted, expf)
// Reverse mode (the gradients of the ops above; fb_sum_rows is the one reduction over rows, see below):
//   element-wise: fb_fill, fb_gelu_tanh_backward, fb_silu_backward, fb_mul_per_sample ((offset + v[b, c]) x, the
//     input gradient of fb_modulate and the update gradient of fb_gated_add), fb_rope_backward (the transposed
//     rotation)
//   row kernels: fb_layer_norm_backward, fb_rms_norm_backward, fb_softmax_backward_rows (in place, the scores'
//     gradient of attention from the recomputed probabilities)
//   fb_sum_rows: y[b, c] = sum over l of a[b, l, c] (times v[b, l, c]), block (32, 8) per 32 columns of one b: thread
//     (tx, ty) sums rows ty, ty + 8, ... in order, then thread (tx, 0) adds the 8 partials in order ty = 0..7. No
//     atomics: the same bits on every GPU and every run.
// Layout: fb_transpose_last2 [batch, M, N] -> [batch, N, M], 32 x 32 tiles through shared memory (33 columns: no
//   bank conflicts), block (32, 8), each thread 4 rows of the tile, grid (ceil(N / 32), ceil(M / 32), batch).
// Attention: fb_flash_attention_d32, _d64, _d128, softmax(scale Q K^T + bias, causal mask) V of one (query tile,
//   head, sample) per block without the score matrix (tiled, online softmax in float32); see the section below.

#define FB_BLOCK 256
#define FB_TILE 32
#define FB_TILE_ROWS 8
#define FB_SUM_COLS 32
#define FB_SUM_ROWS 8
#define FB_ATT_WARPS 4
#define FB_ATT_ROWS 8
#define FB_ATT_QUERIES (FB_ATT_WARPS * FB_ATT_ROWS)

typedef unsigned long long fb_idx;

// ---------------------------------------------------------------------------------------------------------------
// helpers

__device__ __forceinline__ fb_idx fb_first() {
    return (fb_idx) blockIdx.x * blockDim.x + threadIdx.x;
}

__device__ __forceinline__ fb_idx fb_stride() {
    return (fb_idx) blockDim.x * gridDim.x;
}

__device__ __forceinline__ float fb_neg_inf() {
    return __int_as_float((int) 0xff800000u);
}

// The two reductions of the row kernels: an associative operation and its identity.
struct fb_sum {
    __device__ static float apply(float a, float b) { return a + b; }
    __device__ static float identity() { return 0.0f; }
};
struct fb_max {
    __device__ static float apply(float a, float b) { return fmaxf(a, b); }
    __device__ static float identity() { return fb_neg_inf(); }
};

template <class Op>
__device__ __forceinline__ float fb_warp_reduce(float v) {
#pragma unroll
    for (int d = 16; d > 0; d >>= 1) {
        v = Op::apply(v, __shfl_xor_sync(0xffffffffu, v, d));
    }
    return v;
}

// Op over v of the whole block, returned to every thread. sh holds 33 floats: a partial per warp and the result.
// Two barriers a call, so consecutive calls may reuse sh. blockDim.x is a multiple of 32, at most 1024.
template <class Op>
__device__ __forceinline__ float fb_block_reduce(float v, float* sh) {
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
    v = fb_warp_reduce<Op>(v);
    if (lane == 0) {
        sh[warp] = v;
    }
    __syncthreads();
    if (warp == 0) {
        v = fb_warp_reduce<Op>(lane < warps ? sh[lane] : Op::identity());
        if (lane == 0) {
            sh[32] = v;
        }
    }
    __syncthreads();
    return sh[32];
}

__device__ __forceinline__ float fb_block_sum(float v, float* sh) {
    return fb_block_reduce<fb_sum>(v, sh);
}

__device__ __forceinline__ float fb_block_max(float v, float* sh) {
    return fb_block_reduce<fb_max>(v, sh);
}

// Mean and 1 / sqrt(variance + eps) of x[0 .. len) over the block, two passes (mean first, then the centered sum of
// squares) in float32; every thread gets both.
__device__ __forceinline__ void fb_mean_rstd(const float* __restrict__ x, fb_idx len, float eps, float* sh,
                                             float* mean, float* rstd) {
    float s = 0.0f;
    for (fb_idx k = threadIdx.x; k < len; k += blockDim.x) {
        s += x[k];
    }
    const float m = fb_block_sum(s, sh) / (float) len;
    float q = 0.0f;
    for (fb_idx k = threadIdx.x; k < len; k += blockDim.x) {
        const float d = x[k] - m;
        q += d * d;
    }
    *mean = m;
    *rstd = 1.0f / sqrtf(fb_block_sum(q, sh) / (float) len + eps);
}

// ---------------------------------------------------------------------------------------------------------------
// element-wise

extern "C" __global__ void __launch_bounds__(FB_BLOCK)
fb_add(const float* __restrict__ a, const float* __restrict__ b, float* __restrict__ y, int n) {
    const fb_idx total = (fb_idx) n;
    for (fb_idx i = fb_first(); i < total; i += fb_stride()) {
        y[i] = a[i] + b[i];
    }
}

extern "C" __global__ void __launch_bounds__(FB_BLOCK)
fb_mul(const float* __restrict__ a, const float* __restrict__ b, float* __restrict__ y, int n) {
    const fb_idx total = (fb_idx) n;
    for (fb_idx i = fb_first(); i < total; i += fb_stride()) {
        y[i] = a[i] * b[i];
    }
}

extern "C" __global__ void __launch_bounds__(FB_BLOCK)
fb_gelu_tanh(const float* __restrict__ x, float* __restrict__ y, int n) {
    const fb_idx total = (fb_idx) n;
    for (fb_idx i = fb_first(); i < total; i += fb_stride()) {
        const float v = x[i];
        y[i] = 0.5f * v * (1.0f + tanhf(0.7978845608028654f * (v + 0.044715f * v * v * v)));
    }
}

extern "C" __global__ void __launch_bounds__(FB_BLOCK)
fb_silu(const float* __restrict__ x, float* __restrict__ y, int n) {
    const fb_idx total = (fb_idx) n;
    for (fb_idx i = fb_first(); i < total; i += fb_stride()) {
        const float v = x[i];
        y[i] = v / (1.0f + expf(-v));
    }
}

extern "C" __global__ void __launch_bounds__(FB_BLOCK)
fb_quick_gelu(const float* __restrict__ x, float* __restrict__ y, int n) {
    const fb_idx total = (fb_idx) n;
    for (fb_idx i = fb_first(); i < total; i += fb_stride()) {
        const float v = x[i];
        y[i] = v / (1.0f + expf(-1.702f * v));
    }
}

// y[b, l, c] = (1 + scale[b, c]) x[b, l, c] + shift[b, c]
extern "C" __global__ void __launch_bounds__(FB_BLOCK)
fb_modulate(const float* __restrict__ x, const float* __restrict__ shift, const float* __restrict__ scale,
            float* __restrict__ y, int B, int L, int C) {
    const fb_idx lc = (fb_idx) L * C, total = (fb_idx) B * lc;
    for (fb_idx i = fb_first(); i < total; i += fb_stride()) {
        const fb_idx bc = (i / lc) * C + i % C;
        y[i] = (1.0f + scale[bc]) * x[i] + shift[bc];
    }
}

// y[b, l, c] = x[b, l, c] + gate[b, c] v[b, l, c]
extern "C" __global__ void __launch_bounds__(FB_BLOCK)
fb_gated_add(const float* __restrict__ x, const float* __restrict__ gate, const float* __restrict__ v,
             float* __restrict__ y, int B, int L, int C) {
    const fb_idx lc = (fb_idx) L * C, total = (fb_idx) B * lc;
    for (fb_idx i = fb_first(); i < total; i += fb_stride()) {
        const fb_idx bc = (i / lc) * C + i % C;
        y[i] = x[i] + gate[bc] * v[i];
    }
}

// in place: y[r, c] += bias[c]
extern "C" __global__ void __launch_bounds__(FB_BLOCK)
fb_add_bias_rows(float* __restrict__ y, const float* __restrict__ bias, int rows, int cols) {
    const fb_idx total = (fb_idx) rows * cols;
    for (fb_idx i = fb_first(); i < total; i += fb_stride()) {
        y[i] += bias[i % (fb_idx) cols];
    }
}

// y[o, k] = code(o, k) of a ternary weight in the bit planes of ternary_matmul.cu (plus and minus words per 32
// inputs): the large-M path decodes a layer's codes into a scratch buffer for one cuBLAS GEMM
extern "C" __global__ void __launch_bounds__(FB_BLOCK)
fb_ternary_decode(const unsigned int* __restrict__ w, float* __restrict__ y, int N, int K) {
    const fb_idx total = (fb_idx) N * K;
    const fb_idx kw = ((fb_idx) K + 31) / 32;
    for (fb_idx i = fb_first(); i < total; i += fb_stride()) {
        const fb_idx o = i / (fb_idx) K, k = i % (fb_idx) K;
        const fb_idx word = 2 * (o * kw + k / 32);
        const unsigned int bit = (unsigned int) (k % 32);
        y[i] = (float) ((w[word] >> bit) & 1u) - (float) ((w[word + 1] >> bit) & 1u);
    }
}

// in place: y[r, c] = y[r, c] * scale[c] (+ bias[c]), the ternary kernels' epilogue (rounded multiply, rounded add)
extern "C" __global__ void __launch_bounds__(FB_BLOCK)
fb_scale_bias_rows(float* __restrict__ y, const float* __restrict__ scale, const float* __restrict__ bias, int rows,
                   int cols) {
    const fb_idx total = (fb_idx) rows * cols;
    for (fb_idx i = fb_first(); i < total; i += fb_stride()) {
        const fb_idx c = i % (fb_idx) cols;
        const float v = __fmul_rn(y[i], scale[c]);
        y[i] = bias != nullptr ? __fadd_rn(v, bias[c]) : v;
    }
}

// in place: y[b, c, p] += bias[c]
extern "C" __global__ void __launch_bounds__(FB_BLOCK)
fb_add_bias_channels(float* __restrict__ y, const float* __restrict__ bias, int B, int C, int HW) {
    const fb_idx total = (fb_idx) B * C * HW;
    for (fb_idx i = fb_first(); i < total; i += fb_stride()) {
        y[i] += bias[(i / (fb_idx) HW) % (fb_idx) C];
    }
}

// x, y [B, L, H, D], pe [B, L, D/2, 2, 2]; index t = ((b L + l) H + h) (D/2) + i, one pair (2i, 2i + 1) each:
// y[2i + r] = pe[b, l, i, r, 0] x[2i] + pe[b, l, i, r, 1] x[2i + 1], r = 0, 1
extern "C" __global__ void __launch_bounds__(FB_BLOCK)
fb_rope(const float* __restrict__ x, const float* __restrict__ pe, float* __restrict__ y, int B, int L, int H,
        int D) {
    const fb_idx half = (fb_idx) (D / 2);
    const fb_idx total = (fb_idx) B * L * H * half;
    for (fb_idx t = fb_first(); t < total; t += fb_stride()) {
        const fb_idx i = t % half, row = t / half;  // row = (b L + l) H + h
        const fb_idx bl = row / (fb_idx) H;          // b L + l
        const fb_idx xo = row * (fb_idx) D + 2 * i;
        const fb_idx po = (bl * half + i) * 4;
        const float x0 = x[xo], x1 = x[xo + 1];
        y[xo] = pe[po] * x0 + pe[po + 1] * x1;
        y[xo + 1] = pe[po + 2] * x0 + pe[po + 3] * x1;
    }
}

// y[i, c] = table[ids[i], c]
extern "C" __global__ void __launch_bounds__(FB_BLOCK)
fb_embedding(const float* __restrict__ table, const int* __restrict__ ids, float* __restrict__ y, int n, int C) {
    const fb_idx total = (fb_idx) n * C;
    for (fb_idx t = fb_first(); t < total; t += fb_stride()) {
        const fb_idx i = t / (fb_idx) C, c = t % (fb_idx) C;
        y[t] = table[(fb_idx) ids[i] * C + c];
    }
}

// bfloat16 -> float32 is exact: the 16 bits are the float's upper half
__device__ __forceinline__ float fb_bf16_to_float(unsigned short b) {
    return __uint_as_float(((unsigned int) b) << 16);
}

// y[i] = float(w[i]) for a bfloat16 weight: the dense product's scratch, then one GEMM in float32
extern "C" __global__ void __launch_bounds__(FB_BLOCK)
fb_bf16_widen(const unsigned short* __restrict__ w, float* __restrict__ y, int n) {
    const fb_idx total = (fb_idx) n;
    for (fb_idx i = fb_first(); i < total; i += fb_stride()) {
        y[i] = fb_bf16_to_float(w[i]);
    }
}

// y[i, c] = float(table[ids[i], c]) for a bfloat16 table
extern "C" __global__ void __launch_bounds__(FB_BLOCK)
fb_embedding_bf16(const unsigned short* __restrict__ table, const int* __restrict__ ids, float* __restrict__ y, int n,
                  int C) {
    const fb_idx total = (fb_idx) n * C;
    for (fb_idx t = fb_first(); t < total; t += fb_stride()) {
        const fb_idx i = t / (fb_idx) C, c = t % (fb_idx) C;
        y[t] = fb_bf16_to_float(table[(fb_idx) ids[i] * C + c]);
    }
}

// One image x [C, H, W] -> col [C kh kw, P]: row (c kh + i) kw + j, column q is tap (i, j) of output position
// p = p0 + q (oy = p / Wo, ox = p % Wo): x[c, oy stride - padTop + i, ox stride - padLeft + j], 0 outside.
extern "C" __global__ void __launch_bounds__(FB_BLOCK)
fb_im2col(const float* __restrict__ x, float* __restrict__ col, int C, int H, int W, int kh, int kw, int stride,
          int padTop, int padLeft, int Wo, int p0, int P) {
    const fb_idx total = (fb_idx) C * kh * kw * P;
    for (fb_idx t = fb_first(); t < total; t += fb_stride()) {
        const int q = (int) (t % (fb_idx) P);
        const fb_idx r = t / (fb_idx) P;  // (c kh + i) kw + j
        const int j = (int) (r % (fb_idx) kw);
        const fb_idx ci = r / (fb_idx) kw;  // c kh + i
        const int i = (int) (ci % (fb_idx) kh);
        const fb_idx c = ci / (fb_idx) kh;
        const int p = p0 + q;
        const int oy = p / Wo, ox = p % Wo;
        const int iy = oy * stride - padTop + i, ix = ox * stride - padLeft + j;
        col[t] = (iy >= 0 && iy < H && ix >= 0 && ix < W) ? x[(c * H + iy) * W + ix] : 0.0f;
    }
}

// x [BC, H, W] -> y [BC, 2H, 2W], y[n, i, j] = x[n, i / 2, j / 2]
extern "C" __global__ void __launch_bounds__(FB_BLOCK)
fb_upsample_nearest2x(const float* __restrict__ x, float* __restrict__ y, int BC, int H, int W) {
    const fb_idx w2 = 2 * (fb_idx) W, h2 = 2 * (fb_idx) H;
    const fb_idx total = (fb_idx) BC * h2 * w2;
    for (fb_idx t = fb_first(); t < total; t += fb_stride()) {
        const fb_idx j = t % w2, ni = t / w2;  // ni = n 2H + i
        const fb_idx i = ni % h2, n = ni / h2;
        y[t] = x[(n * H + i / 2) * W + j / 2];
    }
}

// ---------------------------------------------------------------------------------------------------------------
// row kernels

// (x - mean) / sqrt(var + eps) per row, then * weight[c] + bias[c] when weight is not nullptr
extern "C" __global__ void __launch_bounds__(FB_BLOCK)
fb_layer_norm(const float* __restrict__ x, const float* __restrict__ weight, const float* __restrict__ bias,
              float* __restrict__ y, int rows, int cols, float eps) {
    __shared__ float sh[33];
    const int row = blockIdx.x;
    if (row >= rows) {
        return; // the whole block
    }
    const float* __restrict__ xr = x + (fb_idx) row * cols;
    float* __restrict__ yr = y + (fb_idx) row * cols;
    float mean, rstd;
    fb_mean_rstd(xr, (fb_idx) cols, eps, sh, &mean, &rstd);
    if (weight != nullptr) {
        for (int c = threadIdx.x; c < cols; c += blockDim.x) {
            yr[c] = (xr[c] - mean) * rstd * weight[c] + bias[c];
        }
    } else {
        for (int c = threadIdx.x; c < cols; c += blockDim.x) {
            yr[c] = (xr[c] - mean) * rstd;
        }
    }
}

// x / sqrt(mean(x^2) + eps) * scale[c] per row
extern "C" __global__ void __launch_bounds__(FB_BLOCK)
fb_rms_norm(const float* __restrict__ x, const float* __restrict__ scale, float* __restrict__ y, int rows, int cols,
            float eps) {
    __shared__ float sh[33];
    const int row = blockIdx.x;
    if (row >= rows) {
        return;
    }
    const float* __restrict__ xr = x + (fb_idx) row * cols;
    float* __restrict__ yr = y + (fb_idx) row * cols;
    float q = 0.0f;
    for (int c = threadIdx.x; c < cols; c += blockDim.x) {
        const float v = xr[c];
        q += v * v;
    }
    const float ms = fb_block_sum(q, sh) / (float) cols;
    const float rstd = 1.0f / sqrtf(ms + eps);
    for (int c = threadIdx.x; c < cols; c += blockDim.x) {
        yr[c] = xr[c] * rstd * scale[c];
    }
}

// In place over s [rows, cols], row r being query i = r % Lq: s += bias (same layout, may be nullptr), s[r, j] = -inf
// for j > i when causal != 0, then softmax over j. Each thread rewrites only the columns it read (c = threadIdx.x +
// k blockDim.x in every pass), so the passes need no barrier besides the reductions'. Column 0 is never masked, so
// the max is finite.
extern "C" __global__ void __launch_bounds__(FB_BLOCK)
fb_softmax_rows(float* __restrict__ s, const float* __restrict__ bias, int rows, int cols, int Lq, int causal) {
    __shared__ float sh[33];
    const int row = blockIdx.x;
    if (row >= rows) {
        return;
    }
    float* __restrict__ sr = s + (fb_idx) row * cols;
    const float* __restrict__ br = bias != nullptr ? bias + (fb_idx) row * cols : nullptr;
    const int qi = row % Lq;
    const float ninf = fb_neg_inf();
    float m = ninf;
    for (int c = threadIdx.x; c < cols; c += blockDim.x) {
        float v = sr[c];
        if (br != nullptr) {
            v += br[c];
        }
        if (causal != 0 && c > qi) {
            v = ninf;
        }
        sr[c] = v;
        m = fmaxf(m, v);
    }
    const float mx = fb_block_max(m, sh);
    float sum = 0.0f;
    for (int c = threadIdx.x; c < cols; c += blockDim.x) {
        const float e = expf(sr[c] - mx);
        sr[c] = e;
        sum += e;
    }
    const float total = fb_block_sum(sum, sh);
    for (int c = threadIdx.x; c < cols; c += blockDim.x) {
        sr[c] = sr[c] / total;
    }
}

// x, y [B, C, HW]; block b groups + g normalizes the C / groups channels of group g (one contiguous run of
// (C / groups) HW floats), then y = (x - mean) (rstd weight[c]) + bias[c] per channel.
extern "C" __global__ void __launch_bounds__(FB_BLOCK)
fb_group_norm(const float* __restrict__ x, const float* __restrict__ weight, const float* __restrict__ bias,
              float* __restrict__ y, int B, int C, int HW, int groups, float eps) {
    __shared__ float sh[33];
    const int bg = blockIdx.x;
    if (bg >= B * groups) {
        return;
    }
    const int b = bg / groups, g = bg % groups;
    const int per = C / groups;
    const fb_idx off = ((fb_idx) b * C + (fb_idx) g * per) * HW;
    const fb_idx len = (fb_idx) per * HW;
    const float* __restrict__ xg = x + off;
    float* __restrict__ yg = y + off;
    float mean, rstd;
    fb_mean_rstd(xg, len, eps, sh, &mean, &rstd);
    for (int ch = 0; ch < per; ch++) {
        const int c = g * per + ch;
        const float a = rstd * weight[c], d = bias[c];
        const float* __restrict__ xc = xg + (fb_idx) ch * HW;
        float* __restrict__ yc = yg + (fb_idx) ch * HW;
        for (int p = threadIdx.x; p < HW; p += blockDim.x) {
            yc[p] = (xc[p] - mean) * a + d;
        }
    }
}

// ---------------------------------------------------------------------------------------------------------------
// layout

// x [batch, M, N] -> y [batch, N, M]. Block (32, 8) moves the 32 x 32 tile at rows m0 = 32 blockIdx.y,
// columns n0 = 32 blockIdx.x of x: reads coalesced along n, writes coalesced along m.
extern "C" __global__ void __launch_bounds__(FB_TILE * FB_TILE_ROWS)
fb_transpose_last2(const float* __restrict__ x, float* __restrict__ y, int M, int N) {
    __shared__ float tile[FB_TILE][FB_TILE + 1];
    const fb_idx base = (fb_idx) blockIdx.z * M * N;
    const float* __restrict__ xb = x + base;
    float* __restrict__ yb = y + base;
    const int m0 = blockIdx.y * FB_TILE, n0 = blockIdx.x * FB_TILE;
    const int tx = threadIdx.x, ty = threadIdx.y;
#pragma unroll
    for (int k = 0; k < FB_TILE; k += FB_TILE_ROWS) {
        const int m = m0 + ty + k, n = n0 + tx;
        if (m < M && n < N) {
            tile[ty + k][tx] = xb[(fb_idx) m * N + n];
        }
    }
    __syncthreads();
#pragma unroll
    for (int k = 0; k < FB_TILE; k += FB_TILE_ROWS) {
        const int n = n0 + ty + k, m = m0 + tx;
        if (n < N && m < M) {
            yb[(fb_idx) n * M + m] = tile[tx][ty + k];
        }
    }
}

// ---------------------------------------------------------------------------------------------------------------
// reverse mode

// y[i] = value
extern "C" __global__ void __launch_bounds__(FB_BLOCK)
fb_fill(float* __restrict__ y, float value, int n) {
    const fb_idx total = (fb_idx) n;
    for (fb_idx i = fb_first(); i < total; i += fb_stride()) {
        y[i] = value;
    }
}

// y = dy gelu'(x), gelu the tanh approximation: with u = sqrt(2/pi) (x + 0.044715 x^3), t = tanh(u),
// gelu'(x) = 0.5 (1 + t) + 0.5 x (1 - t^2) sqrt(2/pi) (1 + 3 0.044715 x^2)
extern "C" __global__ void __launch_bounds__(FB_BLOCK)
fb_gelu_tanh_backward(const float* __restrict__ x, const float* __restrict__ dy, float* __restrict__ y, int n) {
    const fb_idx total = (fb_idx) n;
    const float c = 0.7978845608028654f;
    for (fb_idx i = fb_first(); i < total; i += fb_stride()) {
        const float v = x[i];
        const float t = tanhf(c * (v + 0.044715f * v * v * v));
        const float d = 0.5f * (1.0f + t) + 0.5f * v * (1.0f - t * t) * c * (1.0f + 0.134145f * v * v);
        y[i] = dy[i] * d;
    }
}

// y = dy silu'(x) = dy s (1 + x (1 - s)), s = 1 / (1 + exp(-x))
extern "C" __global__ void __launch_bounds__(FB_BLOCK)
fb_silu_backward(const float* __restrict__ x, const float* __restrict__ dy, float* __restrict__ y, int n) {
    const fb_idx total = (fb_idx) n;
    for (fb_idx i = fb_first(); i < total; i += fb_stride()) {
        const float v = x[i];
        const float s = 1.0f / (1.0f + expf(-v));
        y[i] = dy[i] * (s * (1.0f + v * (1.0f - s)));
    }
}

// y[b, l, c] = (offset + v[b, c]) x[b, l, c]
extern "C" __global__ void __launch_bounds__(FB_BLOCK)
fb_mul_per_sample(const float* __restrict__ x, const float* __restrict__ v, float offset, float* __restrict__ y,
                  int B, int L, int C) {
    const fb_idx lc = (fb_idx) L * C, total = (fb_idx) B * lc;
    for (fb_idx i = fb_first(); i < total; i += fb_stride()) {
        const fb_idx bc = (i / lc) * C + i % C;
        y[i] = (offset + v[bc]) * x[i];
    }
}

// The gradient of fb_rope: each pair rotated back by the transposed matrix,
// y[2i + r] = pe[b, l, i, 0, r] dy[2i] + pe[b, l, i, 1, r] dy[2i + 1], r = 0, 1; index space B L H D/2
extern "C" __global__ void __launch_bounds__(FB_BLOCK)
fb_rope_backward(const float* __restrict__ dy, const float* __restrict__ pe, float* __restrict__ y, int B, int L,
                 int H, int D) {
    const fb_idx half = (fb_idx) (D / 2);
    const fb_idx total = (fb_idx) B * L * H * half;
    for (fb_idx t = fb_first(); t < total; t += fb_stride()) {
        const fb_idx i = t % half, row = t / half;
        const fb_idx bl = row / (fb_idx) H;
        const fb_idx xo = row * (fb_idx) D + 2 * i;
        const fb_idx po = (bl * half + i) * 4;
        const float d0 = dy[xo], d1 = dy[xo + 1];
        y[xo] = pe[po] * d0 + pe[po + 2] * d1;
        y[xo + 1] = pe[po + 1] * d0 + pe[po + 3] * d1;
    }
}

// The gradient of fb_layer_norm without affine parameters: with xhat = (x - mean) rstd,
// y = rstd (dy - mean(dy) - xhat mean(dy xhat)) per row
extern "C" __global__ void __launch_bounds__(FB_BLOCK)
fb_layer_norm_backward(const float* __restrict__ x, const float* __restrict__ dy, float* __restrict__ y, int rows,
                       int cols, float eps) {
    __shared__ float sh[33];
    const int row = blockIdx.x;
    if (row >= rows) {
        return;
    }
    const float* __restrict__ xr = x + (fb_idx) row * cols;
    const float* __restrict__ gr = dy + (fb_idx) row * cols;
    float* __restrict__ yr = y + (fb_idx) row * cols;
    float mean, rstd;
    fb_mean_rstd(xr, (fb_idx) cols, eps, sh, &mean, &rstd);
    float s1 = 0.0f, s2 = 0.0f;
    for (int c = threadIdx.x; c < cols; c += blockDim.x) {
        const float g = gr[c];
        s1 += g;
        s2 += g * ((xr[c] - mean) * rstd);
    }
    const float a = fb_block_sum(s1, sh) / (float) cols;
    const float b = fb_block_sum(s2, sh) / (float) cols;
    for (int c = threadIdx.x; c < cols; c += blockDim.x) {
        const float xhat = (xr[c] - mean) * rstd;
        yr[c] = rstd * (gr[c] - a - xhat * b);
    }
}

// The gradient of fb_rms_norm with a frozen scale: with r = 1 / sqrt(mean(x^2) + eps) and g = dy scale,
// y = r (g - x r^2 mean(g x)) per row
extern "C" __global__ void __launch_bounds__(FB_BLOCK)
fb_rms_norm_backward(const float* __restrict__ x, const float* __restrict__ scale, const float* __restrict__ dy,
                     float* __restrict__ y, int rows, int cols, float eps) {
    __shared__ float sh[33];
    const int row = blockIdx.x;
    if (row >= rows) {
        return;
    }
    const float* __restrict__ xr = x + (fb_idx) row * cols;
    const float* __restrict__ gr = dy + (fb_idx) row * cols;
    float* __restrict__ yr = y + (fb_idx) row * cols;
    float q = 0.0f, p = 0.0f;
    for (int c = threadIdx.x; c < cols; c += blockDim.x) {
        const float v = xr[c];
        q += v * v;
        p += gr[c] * scale[c] * v;
    }
    const float ms = fb_block_sum(q, sh) / (float) cols;
    const float gx = fb_block_sum(p, sh) / (float) cols;
    const float r = 1.0f / sqrtf(ms + eps);
    const float k = r * r * gx;
    for (int c = threadIdx.x; c < cols; c += blockDim.x) {
        yr[c] = r * (gr[c] * scale[c] - xr[c] * k);
    }
}

// In place over g [rows, cols], the gradient of softmax rows given their probabilities p (same layout):
// g = p (g - sum_j g[j] p[j]) per row. Each thread rewrites only the columns it read.
extern "C" __global__ void __launch_bounds__(FB_BLOCK)
fb_softmax_backward_rows(const float* __restrict__ p, float* __restrict__ g, int rows, int cols) {
    __shared__ float sh[33];
    const int row = blockIdx.x;
    if (row >= rows) {
        return;
    }
    const float* __restrict__ pr = p + (fb_idx) row * cols;
    float* __restrict__ gr = g + (fb_idx) row * cols;
    float s = 0.0f;
    for (int c = threadIdx.x; c < cols; c += blockDim.x) {
        s += gr[c] * pr[c];
    }
    const float total = fb_block_sum(s, sh);
    for (int c = threadIdx.x; c < cols; c += blockDim.x) {
        gr[c] = pr[c] * (gr[c] - total);
    }
}

// y[b, c] = sum over l of a[b, l, c] v[b, l, c] (a[b, l, c] alone when v is nullptr), for a, v [B, L, C], y [B, C].
// Block (32, 8), grid (ceil(C / 32), B): thread (tx, ty) of block (bx, b) owns column c = 32 bx + tx and sums rows
// l = ty, ty + 8, ty + 16, ... in that order (acc = fmaf(a, v, acc), or acc + a); then thread (tx, 0) adds the
// partials of ty = 0, 1, ..., 7 in that order. A fixed order that depends only on L: the same bits every run.
extern "C" __global__ void __launch_bounds__(FB_SUM_COLS * FB_SUM_ROWS)
fb_sum_rows(const float* __restrict__ a, const float* __restrict__ v, float* __restrict__ y, int B, int L, int C) {
    __shared__ float part[FB_SUM_ROWS][FB_SUM_COLS + 1];
    const int tx = threadIdx.x, ty = threadIdx.y;
    const int c = blockIdx.x * FB_SUM_COLS + tx;
    const fb_idx b = blockIdx.y;
    float acc = 0.0f;
    if (c < C) {
        const fb_idx base = b * (fb_idx) L * C + c;
        if (v != nullptr) {
            for (int l = ty; l < L; l += FB_SUM_ROWS) {
                const fb_idx i = base + (fb_idx) l * C;
                acc = fmaf(a[i], v[i], acc);
            }
        } else {
            for (int l = ty; l < L; l += FB_SUM_ROWS) {
                acc += a[base + (fb_idx) l * C];
            }
        }
    }
    part[ty][tx] = acc;
    __syncthreads();
    if (ty == 0 && c < C) {
        float total = part[0][tx];
#pragma unroll
        for (int r = 1; r < FB_SUM_ROWS; r++) {
            total += part[r][tx];
        }
        y[b * C + c] = total;
    }
}

// ---------------------------------------------------------------------------------------------------------------
// attention

// softmax(scale Q K^T + bias, causal) V for q, k, v, y [B, L, H D] (head h of token l at columns h D .. h D + D - 1 of
// row b L + l), bias [H, L, L] or nullptr, without the L x L scores: flash attention in float32 on the SIMT cores.
//
// Block (FB_ATT_WARPS 32) threads, grid (ceil(L / FB_ATT_QUERIES), H, B): block (x, h, b) owns the FB_ATT_QUERIES
// queries from x FB_ATT_QUERIES of head h of sample b, and warp w of it the FB_ATT_ROWS rows from w FB_ATT_ROWS. The
// head is padded with zeros to DMAX features (DMAX a multiple of 32, D <= DMAX) in shared memory. Per key tile of BK
// keys (BK a multiple of 32), in order:
//   1. the keys [BK, DMAX] into shared memory (row stride DMAX + 4 floats: the 16-byte reads of 8 consecutive rows by
//      8 lanes hit 8 different bank groups), zero past L;
//   2. lane t scores its keys t, t + 32, ... against the warp's rows: one chain of fmaf over the features in order
//      (4 at a time, the query's 4 a broadcast read), then times scale, plus bias[h, i, j]; -inf for j >= L and, when
//      causal, for j > i;
//   3. per row, the tile's maximum over the warp (xor shuffles), m' = max(m, tile max), alpha = exp(m - m') (with m'
//      taken as 0 while it is still -inf, so a fully masked prefix gives 0, never NaN), p = exp(s - m') written to the
//      warp's rows of the probability tile in shared memory, the lane's partial sum l = alpha l + its p's, and the
//      lane's output columns o = alpha o;
//   4. the values [BK, DMAX] into the same shared buffer, and o += p v over the tile's keys in order: lane t owns the
//      DMAX / 32 consecutive output columns from t DMAX / 32 of each of the warp's rows.
// At the end each row's sum is added over the warp (xor shuffles) and y = o (1 / sum) is written once, columns < D of
// rows < L. With causal, key tiles past the block's last query are skipped. Every sum has one fixed order: the same
// bits every run. Queries of rows past L are zeros (never written); every row has key 0 unmasked in the first tile,
// so m is finite from then on unless the bias holds -inf.
// Shared memory: FB_ATT_QUERIES DMAX (queries) + BK (DMAX + 4) (keys, then values) + FB_ATT_QUERIES BK
// (probabilities) floats: 21 KiB for DMAX 32 and BK 64, 33 KiB for 64 / 64, 37 KiB for 128 / 32, under the 48 KiB of
// static shared memory. qs, kvs and ps are that memory, 16-byte aligned.
// Checked on the host emulation only when written (kernels_on_host.cpp, the fake driver against the CPU backend); its
// speed against the cuBLAS path, its occupancy (ptxas for sm_90: 96, 156 and 140 registers a thread for DMAX 32, 64,
// 128, so 3 to 5 blocks of 4 warps an SM) and its bank conflicts are unmeasured on a GPU.
template <int DMAX, int BK>
__device__ __forceinline__ void fb_flash_attention(const float* __restrict__ q, const float* __restrict__ k,
                                                   const float* __restrict__ v, const float* __restrict__ bias,
                                                   float* __restrict__ y, int B, int L, int H, int D, float scale,
                                                   int causal, float* __restrict__ qs, float* __restrict__ kvs,
                                                   float* __restrict__ ps) {
    constexpr int RQ = FB_ATT_ROWS;
    constexpr int RK = BK / 32;
    constexpr int CPL = DMAX / 32;
    constexpr int KS = DMAX + 4;
    constexpr int THREADS = FB_ATT_WARPS * 32;
    static_assert(DMAX % 32 == 0 && BK % 32 == 0, "DMAX and BK are multiples of 32");
    if ((int) blockIdx.z >= B || (int) blockIdx.y >= H) {
        return; // the whole block
    }
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    const int q0 = blockIdx.x * FB_ATT_QUERIES;
    const int h = blockIdx.y;
    const fb_idx C = (fb_idx) H * D;
    const fb_idx base = (fb_idx) blockIdx.z * L * C + (fb_idx) h * D; // element (b, token 0, head h, feature 0)
    const float ninf = fb_neg_inf();

    for (int e = threadIdx.x; e < FB_ATT_QUERIES * DMAX; e += THREADS) {
        const int r = e / DMAX, c = e % DMAX, i = q0 + r;
        qs[e] = (i < L && c < D) ? q[base + (fb_idx) i * C + c] : 0.0f;
    }
    float m[RQ], l[RQ], o[RQ][CPL];
#pragma unroll
    for (int r = 0; r < RQ; r++) {
        m[r] = ninf;
        l[r] = 0.0f;
#pragma unroll
        for (int cc = 0; cc < CPL; cc++) {
            o[r][cc] = 0.0f;
        }
    }
    const float* __restrict__ qw = qs + warp * RQ * DMAX;
    float* __restrict__ pw = ps + warp * RQ * BK;
    const int iw = q0 + warp * RQ; // the warp's first query
    const int kend = causal != 0 ? min(L, q0 + FB_ATT_QUERIES) : L;
    for (int k0 = 0; k0 < kend; k0 += BK) {
        __syncthreads(); // the queries are in (first tile); every warp is done with the previous values
        for (int e = threadIdx.x; e < BK * DMAX; e += THREADS) {
            const int r = e / DMAX, c = e % DMAX, j = k0 + r;
            kvs[r * KS + c] = (j < L && c < D) ? k[base + (fb_idx) j * C + c] : 0.0f;
        }
        __syncthreads();
        float s[RQ][RK];
#pragma unroll
        for (int r = 0; r < RQ; r++) {
#pragma unroll
            for (int jj = 0; jj < RK; jj++) {
                s[r][jj] = 0.0f;
            }
        }
#pragma unroll 2
        for (int c = 0; c < DMAX; c += 4) {
            float4 kk[RK];
#pragma unroll
            for (int jj = 0; jj < RK; jj++) {
                kk[jj] = *reinterpret_cast<const float4*>(kvs + (lane + 32 * jj) * KS + c);
            }
#pragma unroll
            for (int r = 0; r < RQ; r++) {
                const float4 qq = *reinterpret_cast<const float4*>(qw + r * DMAX + c);
#pragma unroll
                for (int jj = 0; jj < RK; jj++) {
                    float a = s[r][jj];
                    a = fmaf(qq.x, kk[jj].x, a);
                    a = fmaf(qq.y, kk[jj].y, a);
                    a = fmaf(qq.z, kk[jj].z, a);
                    a = fmaf(qq.w, kk[jj].w, a);
                    s[r][jj] = a;
                }
            }
        }
#pragma unroll
        for (int r = 0; r < RQ; r++) {
            const int i = iw + r;
            float tmax = ninf;
#pragma unroll
            for (int jj = 0; jj < RK; jj++) {
                const int j = k0 + lane + 32 * jj;
                float x = s[r][jj] * scale;
                if (j >= L || (causal != 0 && j > i)) {
                    x = ninf;
                } else if (bias != nullptr && i < L) {
                    x += bias[((fb_idx) h * L + i) * L + j];
                }
                s[r][jj] = x;
                tmax = fmaxf(tmax, x);
            }
            tmax = fb_warp_reduce<fb_max>(tmax);
            const float mnew = fmaxf(m[r], tmax);
            const float mu = mnew == ninf ? 0.0f : mnew;
            const float alpha = expf(m[r] - mu);
            m[r] = mnew;
            float sum = 0.0f;
#pragma unroll
            for (int jj = 0; jj < RK; jj++) {
                const float p = expf(s[r][jj] - mu);
                pw[r * BK + lane + 32 * jj] = p;
                sum += p;
            }
            l[r] = l[r] * alpha + sum;
#pragma unroll
            for (int cc = 0; cc < CPL; cc++) {
                o[r][cc] *= alpha;
            }
        }
        __syncthreads(); // every warp is done with the keys (and has written its probabilities)
        for (int e = threadIdx.x; e < BK * DMAX; e += THREADS) {
            const int r = e / DMAX, c = e % DMAX, j = k0 + r;
            kvs[r * KS + c] = (j < L && c < D) ? v[base + (fb_idx) j * C + c] : 0.0f;
        }
        __syncthreads();
        const float* __restrict__ vl = kvs + lane * CPL;
#pragma unroll 2
        for (int j = 0; j < BK; j += 4) {
            float4 pp[RQ];
#pragma unroll
            for (int r = 0; r < RQ; r++) {
                pp[r] = *reinterpret_cast<const float4*>(pw + r * BK + j);
            }
#pragma unroll
            for (int u = 0; u < 4; u++) {
                float vv[CPL];
#pragma unroll
                for (int cc = 0; cc < CPL; cc++) {
                    vv[cc] = vl[(j + u) * KS + cc];
                }
#pragma unroll
                for (int r = 0; r < RQ; r++) {
                    const float p = u == 0 ? pp[r].x : u == 1 ? pp[r].y : u == 2 ? pp[r].z : pp[r].w;
#pragma unroll
                    for (int cc = 0; cc < CPL; cc++) {
                        o[r][cc] = fmaf(p, vv[cc], o[r][cc]);
                    }
                }
            }
        }
    }
#pragma unroll
    for (int r = 0; r < RQ; r++) {
        const float inv = 1.0f / fb_warp_reduce<fb_sum>(l[r]);
        const int i = iw + r;
        if (i < L) {
            float* __restrict__ yr = y + base + (fb_idx) i * C;
#pragma unroll
            for (int cc = 0; cc < CPL; cc++) {
                const int c = lane * CPL + cc;
                if (c < D) {
                    yr[c] = o[r][cc] * inv;
                }
            }
        }
    }
}

// The entry points, one per padded head size: D <= 32 (keys 64 a tile), D <= 64 (64), D <= 128 (32). The shared
// arrays are float4 so that every float4 read of them is aligned.
#define FB_FLASH_ATTENTION(NAME, DMAX, BK)                                                                            \
    extern "C" __global__ void __launch_bounds__(FB_ATT_WARPS * 32)                                                    \
    NAME(const float* __restrict__ q, const float* __restrict__ k, const float* __restrict__ v,                       \
         const float* __restrict__ bias, float* __restrict__ y, int B, int L, int H, int D, float scale, int causal) { \
        __shared__ float4 qs[FB_ATT_QUERIES * (DMAX) / 4];                                                             \
        __shared__ float4 kvs[(BK) * ((DMAX) + 4) / 4];                                                                \
        __shared__ float4 ps[FB_ATT_QUERIES * (BK) / 4];                                                               \
        fb_flash_attention<DMAX, BK>(q, k, v, bias, y, B, L, H, D, scale, causal, reinterpret_cast<float*>(qs),        \
                                     reinterpret_cast<float*>(kvs), reinterpret_cast<float*>(ps));                     \
    }

FB_FLASH_ATTENTION(fb_flash_attention_d32, 32, 64)
FB_FLASH_ATTENTION(fb_flash_attention_d64, 64, 64)
FB_FLASH_ATTENTION(fb_flash_attention_d128, 128, 32)
