// fluxbatch: the ternary (1.58-bit) matmul on the GPU.
//
//   y[m, o] = scale[o] * sum_k x[m, k] * code[o, k] + bias[o]      (bias may be nullptr)
//
// x is float32 [M, K] row-major, y float32 [M, N] row-major, scale and bias float32 [N].
//
// Weight layout ("bit planes", the Java side is ai.fluxbatch.kernel.cuda.GpuTernaryLayout, which repacks the
// Hugging Face BitNet interchange packing into it at load): KW = ceil(K / 32) chunks of 32 inputs per output row;
// row o, chunk c is two uint32 words at w[2 * (o * KW + c)] (plus) and w[2 * (o * KW + c) + 1] (minus). Bit b of
// plus is set when code[o, 32 c + b] = +1, bit b of minus when it is -1; both clear is 0, both set never happens.
// Inputs past K (the padding of the last chunk) have code 0. No padding of N. So the weight of one input is
// (float)(plus bit) - (float)(minus bit), decoded with two shifts, two ands and a subtract, and one FMA applies it;
// a row's 32-input chunk is one 8-byte load (uint2), and consecutive chunks of a row are consecutive in memory.
// Same size as the interchange packing: 2 bits a weight.
//
// Two kernels (the launch geometry is computed by ai.fluxbatch.kernel.cuda.TernaryLaunch):
//
// ternary_matmul_small_m (M = 1 .. 16, the memory-bound case): one warp per output row, 8 warps (256 threads) a
//   block, grid.x = ceil(N / 8). Lane l takes chunks l, l + 32, l + 64, ... of its row, loads each chunk's two
//   words once (coalesced: a warp reads 256 consecutive bytes) and applies them to all M rows of x, each row of x
//   with its own accumulator (registers); then a butterfly of warp shuffles (xor 16, 8, 4, 2, 1) sums the lanes and
//   lane 0 writes the M outputs through the epilogue. The weights stream through once per launch.
//
// ternary_matmul_tiled (M > 16, the compute-bound case): a block computes a 64 x 64 tile of y (64 rows of x, 64
//   output rows), 256 threads, each a 4 x 4 register tile: thread (tx = t % 16, ty = t / 16) owns rows
//   ty + 16 i and outputs tx + 16 j, i, j = 0..3. Per chunk of 32 inputs the block stages x[64 x 32] (zero past M
//   and K) and the 64 rows' weights decoded to float [32 x 64] in shared memory (8448 + 8192 = 16640 bytes,
//   static), then every thread runs 32 steps of 16 FMAs. grid = (ceil(N / 64), ceil(M / 64)). Each output
//   accumulates acc = fma(x[m, k], w[o, k], acc) for k = 0, 1, 2, ... in order, the same sequence as the CPU
//   backend's ternary matmul, so the tiled kernel's result is the CPU backend's to the bit.
//
// Epilogue (both): y = acc * scale[o] (+ bias[o]), a rounded multiply then a rounded add (__fmul_rn, __fadd_rn: no
// contraction to an FMA), as the CPU backend does.
//
// The input gradient (reverse mode), dx [M, K] = (dy [M, N] * scale[None, :]) . codes [N, K]:
//
// ternary_matmul_input_grad (M up to 255; larger M decodes the codes and uses cuBLAS): block (blockIdx.x = c,
//   blockIdx.y = t) computes dx[16 t .. 16 t + 15, 32 c .. 32 c + 31], 8 warps of 32 lanes; lane l is input
//   k = 32 c + l, warp w sums the outputs o of its segment [w S, min(N, (w + 1) S)), S = ceil(N / 8), in order:
//   acc[m] = fmaf(__fmul_rn(dy[m, o], scale[o]), code(o, k), acc[m]), the chunk's two words one broadcast load per o.
//   The 8 partials go through shared memory (8 x 16 x 32 floats, 16 KiB, static) and are added in warp order
//   0, 1, ..., 7. grid = (ceil(K / 32), ceil(M / 16)); the order depends only on N, never on the GPU.

#ifdef __CUDACC_RTC__
// NVRTC (the runtime-compilation fallback) has no <stdint.h>
typedef unsigned int uint32_t;
#else
#include <stdint.h>
#endif

#define FB_SMALL_M_MAX 16
#define FB_SMALL_WARPS 8
#define FB_TILE_M 64
#define FB_TILE_N 64
#define FB_TILE_K 32
#define FB_TILED_THREADS 256
#define FB_IG_ROWS 16
#define FB_IG_WARPS 8

__device__ __forceinline__ float fb_epilogue(float acc, const float* __restrict__ scale,
                                             const float* __restrict__ bias, int o) {
    float y = __fmul_rn(acc, scale[o]);
    return bias != nullptr ? __fadd_rn(y, bias[o]) : y;
}

extern "C" __global__ void __launch_bounds__(FB_SMALL_WARPS * 32)
ternary_matmul_small_m(const float* __restrict__ x, const uint32_t* __restrict__ w,
                       const float* __restrict__ scale, const float* __restrict__ bias,
                       float* __restrict__ y, int M, int N, int K) {
    const int lane = threadIdx.x & 31;
    const int o = blockIdx.x * FB_SMALL_WARPS + (threadIdx.x >> 5);
    if (o >= N) {
        return; // a whole warp leaves together: o is the same for its 32 lanes
    }
    const int kw = (K + 31) >> 5;
    const uint2* __restrict__ row = reinterpret_cast<const uint2*>(w) + (size_t) o * kw;
    float acc[FB_SMALL_M_MAX];
#pragma unroll
    for (int m = 0; m < FB_SMALL_M_MAX; m++) {
        acc[m] = 0.0f;
    }
    for (int c = lane; c < kw; c += 32) {
        const uint2 pm = row[c];
        const int k0 = c << 5;
        const int kn = min(32, K - k0);
#pragma unroll
        for (int m = 0; m < FB_SMALL_M_MAX; m++) {
            if (m < M) {
                const float* __restrict__ xr = x + (size_t) m * K + k0;
                float a = acc[m];
                if (kn == 32) {
#pragma unroll
                    for (int b = 0; b < 32; b++) {
                        const float wv = (float) ((pm.x >> b) & 1u) - (float) ((pm.y >> b) & 1u);
                        a = fmaf(xr[b], wv, a);
                    }
                } else { // the last, partial chunk: x has no elements past K
                    for (int b = 0; b < kn; b++) {
                        const float wv = (float) ((pm.x >> b) & 1u) - (float) ((pm.y >> b) & 1u);
                        a = fmaf(xr[b], wv, a);
                    }
                }
                acc[m] = a;
            }
        }
    }
#pragma unroll
    for (int m = 0; m < FB_SMALL_M_MAX; m++) {
        if (m < M) {
            float a = acc[m];
#pragma unroll
            for (int d = 16; d > 0; d >>= 1) {
                a += __shfl_xor_sync(0xffffffffu, a, d);
            }
            if (lane == 0) {
                y[(size_t) m * N + o] = fb_epilogue(a, scale, bias, o);
            }
        }
    }
}

extern "C" __global__ void __launch_bounds__(FB_TILED_THREADS)
ternary_matmul_tiled(const float* __restrict__ x, const uint32_t* __restrict__ w,
                     const float* __restrict__ scale, const float* __restrict__ bias,
                     float* __restrict__ y, int M, int N, int K) {
    __shared__ float xs[FB_TILE_M][FB_TILE_K + 1]; // +1: the column reads of a row tile avoid bank conflicts
    __shared__ float ws[FB_TILE_K][FB_TILE_N];
    const int t = threadIdx.x;
    const int tx = t & 15, ty = t >> 4;
    const int o0 = blockIdx.x * FB_TILE_N, m0 = blockIdx.y * FB_TILE_M;
    const int kw = (K + 31) >> 5;
    float acc[4][4];
#pragma unroll
    for (int i = 0; i < 4; i++) {
#pragma unroll
        for (int j = 0; j < 4; j++) {
            acc[i][j] = 0.0f;
        }
    }
    for (int c = 0; c < kw; c++) {
        const int k0 = c << 5;
        // x tile: 64 x 32 floats, 8 per thread; a warp reads one row's 32 consecutive floats
        for (int e = t; e < FB_TILE_M * FB_TILE_K; e += FB_TILED_THREADS) {
            const int mi = e >> 5, kk = e & 31;
            const int m = m0 + mi, k = k0 + kk;
            xs[mi][kk] = (m < M && k < K) ? x[(size_t) m * K + k] : 0.0f;
        }
        // weights: 64 rows x 32 inputs decoded to float; a thread decodes 8 inputs of one row
        {
            const int oi = t >> 2, part = t & 3;
            const int o = o0 + oi;
            uint32_t p = 0u, q = 0u;
            if (o < N) {
                const uint2 pm = reinterpret_cast<const uint2*>(w)[(size_t) o * kw + c];
                p = pm.x;
                q = pm.y;
            }
#pragma unroll
            for (int b = part * 8; b < part * 8 + 8; b++) {
                ws[b][oi] = (float) ((p >> b) & 1u) - (float) ((q >> b) & 1u);
            }
        }
        __syncthreads();
#pragma unroll 8
        for (int kk = 0; kk < FB_TILE_K; kk++) {
            float a[4], b[4];
#pragma unroll
            for (int i = 0; i < 4; i++) {
                a[i] = xs[ty + 16 * i][kk];
                b[i] = ws[kk][tx + 16 * i];
            }
#pragma unroll
            for (int i = 0; i < 4; i++) {
#pragma unroll
                for (int j = 0; j < 4; j++) {
                    acc[i][j] = fmaf(a[i], b[j], acc[i][j]);
                }
            }
        }
        __syncthreads();
    }
#pragma unroll
    for (int i = 0; i < 4; i++) {
        const int m = m0 + ty + 16 * i;
        if (m < M) {
#pragma unroll
            for (int j = 0; j < 4; j++) {
                const int o = o0 + tx + 16 * j;
                if (o < N) {
                    y[(size_t) m * N + o] = fb_epilogue(acc[i][j], scale, bias, o);
                }
            }
        }
    }
}

extern "C" __global__ void __launch_bounds__(FB_IG_WARPS * 32)
ternary_matmul_input_grad(const float* __restrict__ dy, const uint32_t* __restrict__ w,
                          const float* __restrict__ scale, float* __restrict__ dx, int M, int N, int K) {
    __shared__ float part[FB_IG_WARPS][FB_IG_ROWS][32];
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    const int c = blockIdx.x;
    const int kw = (K + 31) >> 5;
    const int m0 = blockIdx.y * FB_IG_ROWS;
    const int rows = min(FB_IG_ROWS, M - m0);
    const int seg = (N + FB_IG_WARPS - 1) / FB_IG_WARPS;
    const int o0 = warp * seg, o1 = min(N, o0 + seg);
    float acc[FB_IG_ROWS];
#pragma unroll
    for (int m = 0; m < FB_IG_ROWS; m++) {
        acc[m] = 0.0f;
    }
    const float* __restrict__ dyr = dy + (size_t) m0 * N;
    for (int o = o0; o < o1; o++) {
        const uint2 pm = reinterpret_cast<const uint2*>(w)[(size_t) o * kw + c];
        const float wv = (float) ((pm.x >> lane) & 1u) - (float) ((pm.y >> lane) & 1u);
        const float s = scale[o];
#pragma unroll
        for (int m = 0; m < FB_IG_ROWS; m++) {
            if (m < rows) {
                acc[m] = fmaf(__fmul_rn(dyr[(size_t) m * N + o], s), wv, acc[m]);
            }
        }
    }
#pragma unroll
    for (int m = 0; m < FB_IG_ROWS; m++) {
        part[warp][m][lane] = acc[m];
    }
    __syncthreads();
    const int k = (c << 5) + lane;
    for (int m = warp; m < rows; m += FB_IG_WARPS) {
        float total = part[0][m][lane];
#pragma unroll
        for (int v = 1; v < FB_IG_WARPS; v++) {
            total += part[v][m][lane];
        }
        if (k < K) {
            dx[(size_t) (m0 + m) * K + k] = total;
        }
    }
}
