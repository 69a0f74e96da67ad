// fluxbatch: the CUDA kernels of kernel/src/main/cuda, compiled as C++ against cuda_host.h and run on the CPU
// against double-precision references written from the documented semantics (OpsKernels.java, TernaryLaunch.java,
// GpuTernaryLayout.java), each launched with the geometry those classes prescribe.
//
//   g++ -std=c++20 -O1 -pthread -o kernels_on_host kernels_on_host.cpp && ./kernels_on_host
//
// One line per check: "ok  KERNEL details maxerr=E" or "FAIL KERNEL details ..."; exit status 1 when any check fails.
// Compiled and run by the JUnit test ai.fluxbatch.kernel.cuda.CudaKernelsOnHostTest, which also requires a line for
// every kernel OpsKernels and TernaryLaunch name.
//
// Every buffer has guard words before and after it (a NaN pattern, checked after each launch: a write out of bounds
// fails the check, a read out of bounds of an input brings NaN into the result), and outputs are filled with NaN
// before the launch, so an output element the kernel does not write fails the check. Copies and layout kernels must
// match to the bit; math matches to 1e-5 relative, measured against max(1, |want|) (so absolute for results below 1),
// the ternary matmul against the magnitude sum |scale| sum_k |x code| + |bias| (the scale of a dot product's rounding
// error). Math checks are relative to small inputs (about -1 .. 1 unless a case says otherwise).

#include "cuda_host.h"

#include "../../main/cuda/fluxbatch_ops.cu"
#include "../../main/cuda/ternary_matmul.cu"

#include <chrono>
#include <cinttypes>
#include <cstdarg>
#include <random>
#include <string>

namespace {

// ---------------------------------------------------------------------------------------------------------------
// buffers

constexpr uint32_t GUARD_BITS = 0x7fc0beefu;  // a NaN
constexpr uint32_t UNWRITTEN_BITS = 0x7fc0f00du; // a NaN: what an output holds before the kernel writes it

template <typename T>
struct Buf {
    static_assert(sizeof(T) == 4, "4-byte elements only");
    static constexpr size_t G = 64;
    std::vector<uint32_t> raw;
    size_t n;

    explicit Buf(size_t n_) : raw(n_ + 2 * G, GUARD_BITS), n(n_) {
        for (size_t i = 0; i < n; i++) {
            raw[G + i] = 0;
        }
    }
    T* p() {
        return reinterpret_cast<T*>(raw.data() + G);
    }
    T& operator[](size_t i) {
        return p()[i];
    }
    void unwritten() {
        for (size_t i = 0; i < n; i++) {
            raw[G + i] = UNWRITTEN_BITS;
        }
    }
    bool guards_intact() const {
        for (size_t i = 0; i < G; i++) {
            if (raw[i] != GUARD_BITS || raw[G + n + i] != GUARD_BITS) {
                return false;
            }
        }
        return true;
    }
};

using FBuf = Buf<float>;

std::mt19937_64 rng(20240611);

float uniform(float lo, float hi) {
    return std::uniform_real_distribution<float>(lo, hi)(rng);
}

int uniform_int(int lo, int hi) { // inclusive
    return std::uniform_int_distribution<int>(lo, hi)(rng);
}

FBuf random_buf(size_t n, float lo = -1.0f, float hi = 1.0f) {
    FBuf b(n);
    for (size_t i = 0; i < n; i++) {
        b[i] = uniform(lo, hi);
    }
    return b;
}

uint32_t bits(float f) {
    uint32_t u;
    std::memcpy(&u, &f, 4);
    return u;
}

// ---------------------------------------------------------------------------------------------------------------
// checks

int checks = 0, failures = 0;

// Compares out against want; tol 0 means bit-exact (want rounded to float). norm (optional) gives each element's
// error scale, default max(1, |want|). guards: every buffer of the launch, all of whose guards must be intact.
void check(const std::string& label, FBuf& out, const std::vector<double>& want, double tol,
           bool guards, const std::vector<double>* norm = nullptr) {
    checks++;
    double maxerr = 0.0;
    long bad = 0, first = -1;
    if (want.size() != out.n) {
        std::printf("FAIL %s: %zu results expected, buffer holds %zu\n", label.c_str(), want.size(), out.n);
        failures++;
        return;
    }
    for (size_t i = 0; i < out.n; i++) {
        const float got = out[i];
        bool ok;
        double err;
        if (tol == 0.0) {
            ok = bits(got) == bits((float) want[i]);
            err = ok ? 0.0 : INFINITY;
        } else {
            const double scale = norm != nullptr ? (*norm)[i] : std::max(1.0, std::fabs(want[i]));
            err = std::fabs((double) got - want[i]) / scale;
            ok = err <= tol; // false for NaN
            if (std::isnan(err)) {
                err = INFINITY;
            }
        }
        maxerr = std::max(maxerr, err);
        if (!ok) {
            if (first < 0) {
                first = (long) i;
            }
            bad++;
        }
    }
    if (bad == 0 && guards) {
        std::printf("ok  %s maxerr=%.3g\n", label.c_str(), maxerr);
        return;
    }
    failures++;
    if (!guards) {
        std::printf("FAIL %s: a guard word next to a buffer was overwritten (a write out of bounds)\n", label.c_str());
    }
    if (bad > 0) {
        std::printf("FAIL %s: %ld of %zu wrong (tol %g), first [%ld] got %.9g (0x%08" PRIx32 ") want %.9g, maxerr=%.3g\n",
                    label.c_str(), bad, out.n, tol, first, (double) out[(size_t) first], bits(out[(size_t) first]),
                    want[(size_t) first], maxerr);
    }
}

template <typename... B>
bool intact(B&... bufs) {
    return (bufs.guards_intact() && ...);
}

std::string fmt(const char* f, ...) __attribute__((format(printf, 1, 2)));
std::string fmt(const char* f, ...) {
    char buf[512];
    va_list ap;
    va_start(ap, f);
    std::vsnprintf(buf, sizeof buf, f, ap);
    va_end(ap);
    return buf;
}

const double TOL = 1e-5;

// ---------------------------------------------------------------------------------------------------------------
// launch geometry (OpsKernels, TernaryLaunch)

constexpr int BLOCK = 256;

dim3 elementwise(long long n) {
    const long long blocks = std::min<long long>((n + BLOCK - 1) / BLOCK, 65535LL * 8);
    return dim3((unsigned) blocks);
}

dim3 rows_grid(int rows) {
    return dim3((unsigned) rows);
}

dim3 transpose_grid(int batch, int m, int n) {
    return dim3((unsigned) ((n + 31) / 32), (unsigned) ((m + 31) / 32), (unsigned) batch);
}

// The element-wise geometry, and once per kernel a single block, so the grid-stride loop goes round.
std::vector<std::pair<dim3, std::string>> ew_grids(long long n, bool stride_too) {
    std::vector<std::pair<dim3, std::string>> g{{elementwise(n), fmt("grid=%u", elementwise(n).x)}};
    if (stride_too && elementwise(n).x > 1) {
        g.push_back({dim3(1), "grid=1 (grid-stride)"});
    }
    return g;
}

// ---------------------------------------------------------------------------------------------------------------
// element-wise

void test_binary() {
    for (int n : {1, 7, 300, 1000}) {
        for (auto& [grid, gl] : ew_grids(n, n == 1000)) {
            FBuf a = random_buf(n), b = random_buf(n), y(n);
            std::vector<double> ws(n), wm(n);
            for (int i = 0; i < n; i++) {
                ws[i] = (double) a[i] + b[i];
                wm[i] = (double) a[i] * b[i];
            }
            y.unwritten();
            launch(fb_add, grid, dim3(BLOCK), a.p(), b.p(), y.p(), n);
            check(fmt("fb_add n=%d %s", n, gl.c_str()), y, ws, TOL, intact(a, b, y));
            y.unwritten();
            launch(fb_mul, grid, dim3(BLOCK), a.p(), b.p(), y.p(), n);
            check(fmt("fb_mul n=%d %s", n, gl.c_str()), y, wm, TOL, intact(a, b, y));
        }
    }
}

void test_activations() {
    const double s2pi = std::sqrt(2.0 / M_PI);
    for (int n : {1, 33, 700}) {
        for (auto& [grid, gl] : ew_grids(n, n == 700)) {
            FBuf x = random_buf(n, -6.0f, 6.0f), y(n);
            // edges: zero, large magnitudes (expf over- and underflows), tiny values
            const float edges[] = {0.0f, -0.0f, 30.0f, -30.0f, 100.0f, -100.0f, 1e-20f, -1e-20f, 9.0f, -9.0f};
            for (int i = 0; i < n && i < 10; i++) {
                x[(size_t) (n - 1 - i)] = edges[i];
            }
            std::vector<double> wg(n), wsi(n), wq(n);
            for (int i = 0; i < n; i++) {
                const double v = x[i];
                wg[i] = 0.5 * v * (1.0 + std::tanh(s2pi * (v + 0.044715 * v * v * v)));
                wsi[i] = v / (1.0 + std::exp(-v));
                wq[i] = v / (1.0 + std::exp(-1.702 * v));
            }
            y.unwritten();
            launch(fb_gelu_tanh, grid, dim3(BLOCK), x.p(), y.p(), n);
            check(fmt("fb_gelu_tanh n=%d %s", n, gl.c_str()), y, wg, TOL, intact(x, y));
            y.unwritten();
            launch(fb_silu, grid, dim3(BLOCK), x.p(), y.p(), n);
            check(fmt("fb_silu n=%d %s", n, gl.c_str()), y, wsi, TOL, intact(x, y));
            y.unwritten();
            launch(fb_quick_gelu, grid, dim3(BLOCK), x.p(), y.p(), n);
            check(fmt("fb_quick_gelu n=%d %s", n, gl.c_str()), y, wq, TOL, intact(x, y));
        }
    }
}

void test_modulate_gated_add() {
    struct S {
        int B, L, C;
    };
    for (S s : {S{1, 1, 1}, S{2, 5, 33}, S{3, 7, 13}}) {
        const int n = s.B * s.L * s.C;
        for (auto& [grid, gl] : ew_grids(n, s.B == 2)) {
            FBuf x = random_buf(n), v = random_buf(n), shift = random_buf(s.B * s.C), scale = random_buf(s.B * s.C),
                 gate = random_buf(s.B * s.C), y(n);
            std::vector<double> wmod(n), wgate(n);
            for (int b = 0; b < s.B; b++) {
                for (int l = 0; l < s.L; l++) {
                    for (int c = 0; c < s.C; c++) {
                        const size_t i = ((size_t) b * s.L + l) * s.C + c, bc = (size_t) b * s.C + c;
                        wmod[i] = (1.0 + scale[bc]) * (double) x[i] + shift[bc];
                        wgate[i] = (double) x[i] + (double) gate[bc] * v[i];
                    }
                }
            }
            y.unwritten();
            launch(fb_modulate, grid, dim3(BLOCK), x.p(), shift.p(), scale.p(), y.p(), s.B, s.L, s.C);
            check(fmt("fb_modulate B=%d L=%d C=%d %s", s.B, s.L, s.C, gl.c_str()), y, wmod, TOL,
                  intact(x, shift, scale, y));
            y.unwritten();
            launch(fb_gated_add, grid, dim3(BLOCK), x.p(), gate.p(), v.p(), y.p(), s.B, s.L, s.C);
            check(fmt("fb_gated_add B=%d L=%d C=%d %s", s.B, s.L, s.C, gl.c_str()), y, wgate, TOL,
                  intact(x, gate, v, y));
        }
    }
}

void test_bias() {
    struct R {
        int rows, cols;
    };
    for (R r : {R{1, 1}, R{5, 7}, R{3, 300}, R{9, 33}}) {
        const int n = r.rows * r.cols;
        for (auto& [grid, gl] : ew_grids(n, r.cols == 300)) {
            FBuf y = random_buf(n), bias = random_buf(r.cols);
            std::vector<double> want(n);
            for (int i = 0; i < n; i++) {
                want[i] = (double) y[i] + bias[(size_t) (i % r.cols)];
            }
            launch(fb_add_bias_rows, grid, dim3(BLOCK), y.p(), bias.p(), r.rows, r.cols);
            check(fmt("fb_add_bias_rows rows=%d cols=%d %s", r.rows, r.cols, gl.c_str()), y, want, TOL,
                  intact(y, bias));
        }
    }
    struct C {
        int B, C, HW;
    };
    for (C c : {C{1, 1, 1}, C{1, 5, 1}, C{2, 3, 35}, C{2, 7, 33}}) {
        const int n = c.B * c.C * c.HW;
        for (auto& [grid, gl] : ew_grids(n, c.HW == 35)) {
            FBuf y = random_buf(n), bias = random_buf(c.C);
            std::vector<double> want(n);
            for (int i = 0; i < n; i++) {
                want[i] = (double) y[i] + bias[(size_t) ((i / c.HW) % c.C)];
            }
            launch(fb_add_bias_channels, grid, dim3(BLOCK), y.p(), bias.p(), c.B, c.C, c.HW);
            check(fmt("fb_add_bias_channels B=%d C=%d HW=%d %s", c.B, c.C, c.HW, gl.c_str()), y, want, TOL,
                  intact(y, bias));
        }
    }
}

void test_rope() {
    struct S {
        int B, L, H, D;
    };
    for (S s : {S{1, 1, 1, 2}, S{2, 3, 2, 8}, S{1, 5, 3, 22}}) {
        const int n = s.B * s.L * s.H * s.D, pairs = n / 2;
        for (auto& [grid, gl] : ew_grids(pairs, s.D == 22)) {
            FBuf x = random_buf(n), pe = random_buf((size_t) s.B * s.L * (s.D / 2) * 4), y(n);
            std::vector<double> want(n);
            for (int b = 0; b < s.B; b++) {
                for (int l = 0; l < s.L; l++) {
                    for (int h = 0; h < s.H; h++) {
                        for (int i = 0; i < s.D / 2; i++) {
                            const size_t xo = (((size_t) b * s.L + l) * s.H + h) * s.D + 2 * i;
                            const size_t po = (((size_t) b * s.L + l) * (s.D / 2) + i) * 4;
                            for (int r = 0; r < 2; r++) {
                                want[xo + r] = (double) pe[po + 2 * r] * x[xo] + (double) pe[po + 2 * r + 1] * x[xo + 1];
                            }
                        }
                    }
                }
            }
            y.unwritten();
            launch(fb_rope, grid, dim3(BLOCK), x.p(), pe.p(), y.p(), s.B, s.L, s.H, s.D);
            check(fmt("fb_rope B=%d L=%d H=%d D=%d %s", s.B, s.L, s.H, s.D, gl.c_str()), y, want, TOL,
                  intact(x, pe, y));
        }
    }
}

void test_embedding() {
    struct S {
        int V, n, C;
    };
    for (S s : {S{1, 1, 1}, S{10, 7, 33}, S{50, 4, 300}}) {
        const int total = s.n * s.C;
        for (auto& [grid, gl] : ew_grids(total, s.C == 300)) {
            FBuf table = random_buf((size_t) s.V * s.C), y(total);
            Buf<int> ids(s.n);
            for (int i = 0; i < s.n; i++) {
                ids[i] = i == 0 ? s.V - 1 : (i == 1 ? 0 : uniform_int(0, s.V - 1)); // both ends of the table
            }
            table[0] = -0.0f; // a copy keeps the bits
            std::vector<double> want(total);
            for (int i = 0; i < s.n; i++) {
                for (int c = 0; c < s.C; c++) {
                    want[(size_t) i * s.C + c] = table[(size_t) ids[i] * s.C + c];
                }
            }
            y.unwritten();
            launch(fb_embedding, grid, dim3(BLOCK), table.p(), ids.p(), y.p(), s.n, s.C);
            check(fmt("fb_embedding V=%d n=%d C=%d %s", s.V, s.n, s.C, gl.c_str()), y, want, 0.0,
                  intact(table, ids, y));
        }
    }
}

// n bfloat16 values, two to a 32-bit word (the first in the low half, as the device stores a short array), drawn as
// floats in [-2, 2) and rounded; with zero, -0, the smallest subnormal, the largest finite value and an infinity
// among them (widening keeps every bit pattern). The padding half of an odd count's last word holds a NaN pattern.
struct Bf16 {
    std::vector<uint16_t> v;
    Buf<uint32_t> words;

    explicit Bf16(size_t n) : v(n), words((n + 1) / 2) {
        const uint16_t special[] = {0x0000, 0x8000, 0x0001, 0x7f7f, 0xff80};
        for (size_t i = 0; i < n; i++) {
            v[i] = i < 5 && n > 10 ? special[i] : (uint16_t) (bits(uniform(-2.0f, 2.0f)) >> 16);
        }
        for (size_t w = 0; w < words.n; w++) {
            const uint32_t lo = v[2 * w], hi = 2 * w + 1 < n ? v[2 * w + 1] : 0x7fc1u;
            words[w] = lo | (hi << 16);
        }
    }
    const unsigned short* p() {
        return reinterpret_cast<const unsigned short*>(words.p());
    }
    double widened(size_t i) const {
        const uint32_t u = (uint32_t) v[i] << 16;
        float f;
        std::memcpy(&f, &u, 4);
        return f;
    }
};

void test_bf16() {
    for (int n : {1, 7, 300, 1001}) {
        for (auto& [grid, gl] : ew_grids(n, n == 1001)) {
            Bf16 w((size_t) n);
            FBuf y(n);
            y.unwritten();
            std::vector<double> want(n);
            for (int i = 0; i < n; i++) {
                want[i] = w.widened((size_t) i);
            }
            launch(fb_bf16_widen, grid, dim3(BLOCK), w.p(), y.p(), n);
            check(fmt("fb_bf16_widen n=%d %s", n, gl.c_str()), y, want, 0.0, intact(w.words, y));
        }
    }
    struct S {
        int V, n, C;
    };
    // odd C: rows start in the middle of a word
    for (S s : {S{1, 1, 1}, S{10, 7, 33}, S{50, 4, 300}}) {
        const int total = s.n * s.C;
        for (auto& [grid, gl] : ew_grids(total, s.C == 300)) {
            Bf16 table((size_t) s.V * s.C);
            FBuf y(total);
            Buf<int> ids(s.n);
            for (int i = 0; i < s.n; i++) {
                ids[i] = i == 0 ? s.V - 1 : (i == 1 ? 0 : uniform_int(0, s.V - 1));
            }
            std::vector<double> want(total);
            for (int i = 0; i < s.n; i++) {
                for (int c = 0; c < s.C; c++) {
                    want[(size_t) i * s.C + c] = table.widened((size_t) ids[i] * s.C + c);
                }
            }
            y.unwritten();
            launch(fb_embedding_bf16, grid, dim3(BLOCK), table.p(), ids.p(), y.p(), s.n, s.C);
            check(fmt("fb_embedding_bf16 V=%d n=%d C=%d %s", s.V, s.n, s.C, gl.c_str()), y, want, 0.0,
                  intact(table.words, ids, y));
        }
    }
}

void test_im2col() {
    struct S {
        int C, H, W, kh, kw, stride, padTop, padBottom, padLeft, padRight;
    };
    for (S s : {S{1, 1, 1, 1, 1, 1, 0, 0, 0, 0}, S{2, 7, 6, 3, 2, 2, 1, 2, 0, 1}, S{3, 5, 5, 3, 3, 1, 1, 1, 1, 1},
                S{1, 8, 9, 2, 3, 2, 0, 1, 2, 0}}) {
        const int Ho = (s.H + s.padTop + s.padBottom - s.kh) / s.stride + 1;
        const int Wo = (s.W + s.padLeft + s.padRight - s.kw) / s.stride + 1;
        const int Ptot = Ho * Wo;
        FBuf x = random_buf((size_t) s.C * s.H * s.W);
        // all positions, then a chunk from the middle (p0 > 0)
        std::vector<std::pair<int, int>> chunks{{0, Ptot}};
        if (Ptot > 3) {
            chunks.push_back({Ptot / 3, Ptot - Ptot / 3 - 1});
        }
        for (auto [p0, P] : chunks) {
            const int rowsN = s.C * s.kh * s.kw, total = rowsN * P;
            for (auto& [grid, gl] : ew_grids(total, p0 > 0)) {
                FBuf col(total);
                std::vector<double> want(total);
                for (int c = 0; c < s.C; c++) {
                    for (int i = 0; i < s.kh; i++) {
                        for (int j = 0; j < s.kw; j++) {
                            for (int q = 0; q < P; q++) {
                                const int p = p0 + q, oy = p / Wo, ox = p % Wo;
                                const int iy = oy * s.stride - s.padTop + i, ix = ox * s.stride - s.padLeft + j;
                                const bool in = iy >= 0 && iy < s.H && ix >= 0 && ix < s.W;
                                want[(((size_t) c * s.kh + i) * s.kw + j) * P + q] =
                                        in ? x[((size_t) c * s.H + iy) * s.W + ix] : 0.0;
                            }
                        }
                    }
                }
                col.unwritten();
                launch(fb_im2col, grid, dim3(BLOCK), x.p(), col.p(), s.C, s.H, s.W, s.kh, s.kw, s.stride, s.padTop,
                       s.padLeft, Wo, p0, P);
                check(fmt("fb_im2col C=%d H=%d W=%d k=%dx%d stride=%d pad=(t%d,b%d,l%d,r%d) Wo=%d p0=%d P=%d %s", s.C,
                          s.H, s.W, s.kh, s.kw, s.stride, s.padTop, s.padBottom, s.padLeft, s.padRight, Wo, p0, P,
                          gl.c_str()),
                      col, want, 0.0, intact(x, col));
            }
        }
    }
}

void test_upsample() {
    struct S {
        int BC, H, W;
    };
    for (S s : {S{1, 1, 1}, S{3, 5, 7}, S{2, 4, 33}}) {
        const int total = s.BC * 4 * s.H * s.W;
        for (auto& [grid, gl] : ew_grids(total, s.W == 33)) {
            FBuf x = random_buf((size_t) s.BC * s.H * s.W), y(total);
            std::vector<double> want(total);
            for (int n = 0; n < s.BC; n++) {
                for (int i = 0; i < 2 * s.H; i++) {
                    for (int j = 0; j < 2 * s.W; j++) {
                        want[((size_t) n * 2 * s.H + i) * 2 * s.W + j] = x[((size_t) n * s.H + i / 2) * s.W + j / 2];
                    }
                }
            }
            y.unwritten();
            launch(fb_upsample_nearest2x, grid, dim3(BLOCK), x.p(), y.p(), s.BC, s.H, s.W);
            check(fmt("fb_upsample_nearest2x BC=%d H=%d W=%d %s", s.BC, s.H, s.W, gl.c_str()), y, want, 0.0,
                  intact(x, y));
        }
    }
}

// ---------------------------------------------------------------------------------------------------------------
// row kernels

// rows of x with different offsets and spreads (row r: offset r - rows/2, spread 1 + r % 3)
FBuf row_data(int rows, int cols) {
    FBuf x(static_cast<size_t>(rows) * cols);
    for (int r = 0; r < rows; r++) {
        const float off = (float) (r - rows / 2), spread = (float) (1 + r % 3);
        for (int c = 0; c < cols; c++) {
            x[(size_t) r * cols + c] = off + spread * uniform(-1.0f, 1.0f);
        }
    }
    return x;
}

void test_layer_norm() {
    const float eps = 1e-5f;
    for (int cols : {1, 7, 33, 300}) {
        const int rows = cols == 300 ? 5 : 3;
        for (bool affine : {true, false}) {
            FBuf x = row_data(rows, cols), w = random_buf(cols, 0.5f, 1.5f), b = random_buf(cols), y(
                    (size_t) rows * cols);
            std::vector<double> want((size_t) rows * cols);
            for (int r = 0; r < rows; r++) {
                double mean = 0, var = 0;
                for (int c = 0; c < cols; c++) {
                    mean += x[(size_t) r * cols + c];
                }
                mean /= cols;
                for (int c = 0; c < cols; c++) {
                    const double d = x[(size_t) r * cols + c] - mean;
                    var += d * d;
                }
                var /= cols;
                const double rstd = 1.0 / std::sqrt(var + (double) eps);
                for (int c = 0; c < cols; c++) {
                    const double v = (x[(size_t) r * cols + c] - mean) * rstd;
                    want[(size_t) r * cols + c] = affine ? v * w[c] + b[c] : v;
                }
            }
            y.unwritten();
            launch(fb_layer_norm, rows_grid(rows), dim3(BLOCK), x.p(), affine ? w.p() : nullptr,
                   affine ? b.p() : nullptr, y.p(), rows, cols, eps);
            check(fmt("fb_layer_norm rows=%d cols=%d %s", rows, cols, affine ? "affine" : "no-affine"), y, want, TOL,
                  intact(x, w, b, y));
        }
    }
}

void test_rms_norm() {
    const float eps = 1e-6f;
    for (int cols : {1, 7, 33, 300}) {
        const int rows = cols == 300 ? 4 : 3;
        FBuf x = row_data(rows, cols), s = random_buf(cols, 0.5f, 1.5f), y((size_t) rows * cols);
        std::vector<double> want((size_t) rows * cols);
        for (int r = 0; r < rows; r++) {
            double ms = 0;
            for (int c = 0; c < cols; c++) {
                const double v = x[(size_t) r * cols + c];
                ms += v * v;
            }
            ms /= cols;
            const double rstd = 1.0 / std::sqrt(ms + (double) eps);
            for (int c = 0; c < cols; c++) {
                want[(size_t) r * cols + c] = x[(size_t) r * cols + c] * rstd * s[c];
            }
        }
        y.unwritten();
        launch(fb_rms_norm, rows_grid(rows), dim3(BLOCK), x.p(), s.p(), y.p(), rows, cols, eps);
        check(fmt("fb_rms_norm rows=%d cols=%d", rows, cols), y, want, TOL, intact(x, s, y));
    }
}

void test_softmax() {
    struct S {
        int heads, Lq, cols;
        bool bias, causal;
    };
    for (S s : {S{1, 1, 1, false, false}, S{2, 5, 7, true, true}, S{2, 5, 7, false, true}, S{1, 3, 300, true, false},
                S{1, 4, 300, false, false}, S{3, 3, 33, false, true}, S{1, 7, 7, true, true}}) {
        const int rows = s.heads * s.Lq;
        const size_t n = (size_t) rows * s.cols;
        FBuf x = random_buf(n, -4.0f, 4.0f), bias = random_buf(n, -3.0f, 3.0f);
        if (s.bias && s.cols > 2) {
            bias[1] = -1e4f; // a masking bias
        }
        FBuf sbuf = x;
        std::vector<double> want(n);
        for (int r = 0; r < rows; r++) {
            const int qi = r % s.Lq;
            std::vector<double> v(s.cols);
            double mx = -INFINITY;
            for (int j = 0; j < s.cols; j++) {
                const size_t i = (size_t) r * s.cols + j;
                v[j] = (double) x[i] + (s.bias ? (double) bias[i] : 0.0);
                if (s.causal && j > qi) {
                    v[j] = -INFINITY;
                }
                mx = std::max(mx, v[j]);
            }
            double sum = 0;
            for (int j = 0; j < s.cols; j++) {
                v[j] = std::exp(v[j] - mx);
                sum += v[j];
            }
            for (int j = 0; j < s.cols; j++) {
                want[(size_t) r * s.cols + j] = v[j] / sum;
            }
        }
        launch(fb_softmax_rows, rows_grid(rows), dim3(BLOCK), sbuf.p(), s.bias ? bias.p() : nullptr, rows, s.cols,
               s.Lq, s.causal ? 1 : 0);
        check(fmt("fb_softmax_rows rows=%d cols=%d Lq=%d %s %s", rows, s.cols, s.Lq, s.bias ? "bias" : "no-bias",
                  s.causal ? "causal" : "non-causal"),
              sbuf, want, TOL, intact(sbuf, bias));
    }
}

// The flash attention kernels against softmax(scale q.k + bias, causal) v in double, one kernel per padded head size
// (OpsKernels.flashAttentionKernel), grid (ceil(L / 32), H, B) of 128 threads (OpsKernels.flashAttention). The cases:
// the flux-shapes miniature's transformer (L = 528 = 512 text + 16 image tokens, heads of 32; 2 of its 4 heads to keep
// the emulation short, CudaDriverDeviceOnFakeDriverTest runs all of them against the CPU backend), lengths that are
// not a multiple of the query or key tile, head sizes below each kernel's padded size (T5's 12, 48, 100), bias (with a
// -1e4 masking entry every 7 rows), causal, a single token.
void test_flash_attention() {
    struct S {
        void (*kernel)(const float*, const float*, const float*, const float*, float*, int, int, int, int, float, int);
        const char* name;
        int B, L, H, D;
        bool bias, causal;
    };
    const S cases[] = {
        {fb_flash_attention_d32, "fb_flash_attention_d32", 1, 528, 2, 32, false, false},
        {fb_flash_attention_d32, "fb_flash_attention_d32", 2, 45, 3, 12, true, false},
        {fb_flash_attention_d32, "fb_flash_attention_d32", 2, 77, 2, 8, false, true},
        {fb_flash_attention_d32, "fb_flash_attention_d32", 1, 100, 2, 32, true, true},
        {fb_flash_attention_d32, "fb_flash_attention_d32", 1, 1, 1, 5, true, true},
        {fb_flash_attention_d64, "fb_flash_attention_d64", 1, 77, 2, 64, false, true},
        {fb_flash_attention_d64, "fb_flash_attention_d64", 2, 70, 2, 48, true, false},
        {fb_flash_attention_d128, "fb_flash_attention_d128", 1, 70, 2, 128, true, true},
        {fb_flash_attention_d128, "fb_flash_attention_d128", 1, 33, 1, 100, false, false},
    };
    for (const S& s : cases) {
        const int C = s.H * s.D;
        const size_t n = (size_t) s.B * s.L * C, nb = (size_t) s.H * s.L * s.L;
        FBuf q = random_buf(n), k = random_buf(n), v = random_buf(n), bias = random_buf(nb, -2.0f, 2.0f), y(n);
        if (s.bias && s.L > 3) {
            for (int r = 0; r < s.H * s.L; r += 7) {
                bias[(size_t) r * s.L + 2] = -1e4f;
            }
        }
        const float scale = 1.0f / std::sqrt((float) s.D) * 1.5f;
        std::vector<double> want(n);
        std::vector<double> p(s.L);
        for (int b = 0; b < s.B; b++) {
            for (int h = 0; h < s.H; h++) {
                for (int i = 0; i < s.L; i++) {
                    double mx = -INFINITY;
                    for (int j = 0; j < s.L; j++) {
                        double dot = 0;
                        for (int d = 0; d < s.D; d++) {
                            dot += (double) q[((size_t) b * s.L + i) * C + h * s.D + d] *
                                   k[((size_t) b * s.L + j) * C + h * s.D + d];
                        }
                        p[j] = dot * scale + (s.bias ? (double) bias[((size_t) h * s.L + i) * s.L + j] : 0.0);
                        if (s.causal && j > i) {
                            p[j] = -INFINITY;
                        }
                        mx = std::max(mx, p[j]);
                    }
                    double sum = 0;
                    for (int j = 0; j < s.L; j++) {
                        p[j] = std::exp(p[j] - mx);
                        sum += p[j];
                    }
                    for (int d = 0; d < s.D; d++) {
                        double acc = 0;
                        for (int j = 0; j < s.L; j++) {
                            acc += p[j] * v[((size_t) b * s.L + j) * C + h * s.D + d];
                        }
                        want[((size_t) b * s.L + i) * C + h * s.D + d] = acc / sum;
                    }
                }
            }
        }
        y.unwritten();
        launch(s.kernel, dim3((unsigned) ((s.L + 31) / 32), (unsigned) s.H, (unsigned) s.B), dim3(128), q.p(), k.p(),
               v.p(), s.bias ? bias.p() : nullptr, y.p(), s.B, s.L, s.H, s.D, scale, s.causal ? 1 : 0);
        check(fmt("%s B=%d L=%d H=%d D=%d %s %s", s.name, s.B, s.L, s.H, s.D, s.bias ? "bias" : "no-bias",
                  s.causal ? "causal" : "non-causal"),
              y, want, TOL, intact(q, k, v, bias, y));
    }
}

void test_group_norm() {
    struct S {
        int B, C, HW, groups;
    };
    const float eps = 1e-6f;
    for (S s : {S{1, 1, 1, 1}, S{1, 4, 1, 2}, S{2, 6, 35, 3}, S{1, 8, 300, 1}, S{2, 5, 7, 5}}) {
        const size_t n = (size_t) s.B * s.C * s.HW;
        FBuf x(n), w = random_buf(s.C, 0.5f, 1.5f), b = random_buf(s.C), y(n);
        for (size_t i = 0; i < n; i++) {
            x[i] = (float) ((i / s.HW) % 3) + uniform(-1.0f, 1.0f); // channels at different offsets
        }
        std::vector<double> want(n);
        const int per = s.C / s.groups;
        for (int bb = 0; bb < s.B; bb++) {
            for (int g = 0; g < s.groups; g++) {
                const size_t off = ((size_t) bb * s.C + (size_t) g * per) * s.HW, len = (size_t) per * s.HW;
                double mean = 0, var = 0;
                for (size_t k = 0; k < len; k++) {
                    mean += x[off + k];
                }
                mean /= (double) len;
                for (size_t k = 0; k < len; k++) {
                    var += (x[off + k] - mean) * (x[off + k] - mean);
                }
                var /= (double) len;
                const double rstd = 1.0 / std::sqrt(var + (double) eps);
                for (size_t k = 0; k < len; k++) {
                    const int c = g * per + (int) (k / s.HW);
                    want[off + k] = (x[off + k] - mean) * rstd * w[c] + b[c];
                }
            }
        }
        y.unwritten();
        launch(fb_group_norm, dim3((unsigned) (s.B * s.groups)), dim3(BLOCK), x.p(), w.p(), b.p(), y.p(), s.B, s.C,
               s.HW, s.groups, eps);
        check(fmt("fb_group_norm B=%d C=%d HW=%d groups=%d", s.B, s.C, s.HW, s.groups), y, want, TOL,
              intact(x, w, b, y));
    }
}

// ---------------------------------------------------------------------------------------------------------------
// layout

void test_transpose() {
    struct S {
        int batch, M, N;
    };
    for (S s : {S{1, 1, 1}, S{2, 5, 70}, S{1, 33, 32}, S{2, 64, 65}, S{1, 70, 5}}) {
        const size_t n = (size_t) s.batch * s.M * s.N;
        FBuf x = random_buf(n), y(n);
        x[0] = -0.0f;
        std::vector<double> want(n);
        for (int b = 0; b < s.batch; b++) {
            for (int m = 0; m < s.M; m++) {
                for (int c = 0; c < s.N; c++) {
                    want[((size_t) b * s.N + c) * s.M + m] = x[((size_t) b * s.M + m) * s.N + c];
                }
            }
        }
        y.unwritten();
        const dim3 grid = transpose_grid(s.batch, s.M, s.N);
        launch(fb_transpose_last2, grid, dim3(32, 8), x.p(), y.p(), s.M, s.N);
        check(fmt("fb_transpose_last2 batch=%d M=%d N=%d grid=(%u,%u,%u)", s.batch, s.M, s.N, grid.x, grid.y, grid.z),
              y, want, 0.0, intact(x, y));
    }
}

// ---------------------------------------------------------------------------------------------------------------
// ternary matmul

// Random codes [N, K] in -1, 0, +1, packed in GpuTernaryLayout's bit planes (padding inputs code 0).
struct Ternary {
    int N, K, KW;
    std::vector<int> codes;
    Buf<uint32_t> w;

    Ternary(int n, int k) : N(n), K(k), KW((k + 31) / 32), codes((size_t) n * k), w((size_t) 2 * n * ((k + 31) / 32)) {
        for (int o = 0; o < N; o++) {
            for (int c = 0; c < KW; c++) {
                uint32_t plus = 0, minus = 0;
                for (int b = 0; b < 32 && 32 * c + b < K; b++) {
                    const int code = uniform_int(-1, 1);
                    codes[(size_t) o * K + 32 * c + b] = code;
                    if (code > 0) {
                        plus |= 1u << b;
                    } else if (code < 0) {
                        minus |= 1u << b;
                    }
                }
                w[2 * ((size_t) o * KW + c)] = plus;
                w[2 * ((size_t) o * KW + c) + 1] = minus;
            }
        }
    }
};

void test_ternary_dense_path() {
    struct S {
        int N, K;
    };
    for (S s : {S{1, 1}, S{70, 45}, S{9, 64}, S{5, 1061}}) {
        Ternary t(s.N, s.K);
        const long long n = (long long) s.N * s.K;
        for (auto& [grid, gl] : ew_grids(n, s.K == 45)) {
            FBuf y = random_buf((size_t) n);
            y.unwritten();
            std::vector<double> want((size_t) n);
            for (long long i = 0; i < n; i++) {
                want[(size_t) i] = t.codes[(size_t) i];
            }
            launch(fb_ternary_decode, grid, dim3(BLOCK), t.w.p(), y.p(), s.N, s.K);
            check(fmt("fb_ternary_decode N=%d K=%d %s", s.N, s.K, gl.c_str()), y, want, 0.0, intact(t.w, y));
        }
    }
    struct R {
        int rows, cols;
    };
    for (R r : {R{1, 1}, R{5, 7}, R{3, 300}}) {
        const int n = r.rows * r.cols;
        for (bool withBias : {false, true}) {
            for (auto& [grid, gl] : ew_grids(n, r.cols == 300)) {
                FBuf y = random_buf(n), scale = random_buf(r.cols, 0.01f, 2.0f), bias = random_buf(r.cols);
                std::vector<double> want(n);
                for (int i = 0; i < n; i++) {
                    const float v = y[i] * scale[(size_t) (i % r.cols)];
                    want[i] = withBias ? (double) (v + bias[(size_t) (i % r.cols)]) : (double) v;
                }
                launch(fb_scale_bias_rows, grid, dim3(BLOCK), y.p(), scale.p(), withBias ? bias.p() : nullptr, r.rows,
                       r.cols);
                check(fmt("fb_scale_bias_rows rows=%d cols=%d bias=%d %s", r.rows, r.cols, withBias ? 1 : 0,
                          gl.c_str()), y, want, 0.0, intact(y, scale, bias));
            }
        }
    }
}

void test_ternary() {
    struct S {
        int M, N, K;
    };
    for (S s : {S{1, 70, 45}, S{3, 70, 45}, S{16, 70, 45}, S{3, 70, 1061}, S{1, 9, 64}, S{17, 70, 45},
                S{70, 70, 45}, S{17, 70, 1061}, S{65, 5, 32}}) {
        Ternary t(s.N, s.K);
        FBuf x = random_buf((size_t) s.M * s.K), scale = random_buf(s.N, 0.01f, 2.0f), bias = random_buf(s.N);
        const bool small = s.M <= 16;
        const char* name = small ? "ternary_matmul_small_m" : "ternary_matmul_tiled";
        const dim3 grid = small ? dim3((unsigned) ((s.N + 7) / 8)) : dim3((unsigned) ((s.N + 63) / 64),
                                                                         (unsigned) ((s.M + 63) / 64));
        for (bool withBias : {false, true}) {
            FBuf y((size_t) s.M * s.N);
            std::vector<double> want((size_t) s.M * s.N), norm((size_t) s.M * s.N), seq((size_t) s.M * s.N);
            for (int m = 0; m < s.M; m++) {
                for (int o = 0; o < s.N; o++) {
                    double acc = 0, mag = 0;
                    float facc = 0.0f;
                    for (int k = 0; k < s.K; k++) {
                        const int code = t.codes[(size_t) o * s.K + k];
                        const double xv = x[(size_t) m * s.K + k];
                        acc += xv * code;
                        mag += std::fabs(xv * code);
                        facc = std::fma(x[(size_t) m * s.K + k], (float) code, facc);
                    }
                    const size_t i = (size_t) m * s.N + o;
                    want[i] = acc * scale[o] + (withBias ? (double) bias[o] : 0.0);
                    norm[i] = std::max(mag * std::fabs((double) scale[o]) + (withBias ? std::fabs((double) bias[o]) : 0.0),
                                       1e-30);
                    // the k-order float sequence with the rounded epilogue: the tiled kernel's exact result
                    float fy = facc * scale[o];
                    if (withBias) {
                        fy = fy + bias[o];
                    }
                    seq[i] = fy;
                }
            }
            y.unwritten();
            const std::string label = fmt("%s M=%d N=%d K=%d %s grid=(%u,%u)", name, s.M, s.N, s.K,
                                          withBias ? "bias" : "no-bias", grid.x, grid.y);
            if (small) {
                launch(ternary_matmul_small_m, grid, dim3(256), x.p(), t.w.p(), scale.p(), withBias ? bias.p() : nullptr,
                       y.p(), s.M, s.N, s.K);
            } else {
                launch(ternary_matmul_tiled, grid, dim3(256), x.p(), t.w.p(), scale.p(), withBias ? bias.p() : nullptr,
                       y.p(), s.M, s.N, s.K);
            }
            const bool g = intact(x, t.w, scale, bias, y);
            check(label, y, want, TOL, g, &norm);
            if (!small) {
                // ternary_matmul.cu: the tiled kernel accumulates fmaf in k order, as the CPU backend does
                check(label + " bit-exact-vs-k-order-fma", y, seq, 0.0, g);
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------------------------
// reverse mode

void test_backward_elementwise() {
    const double s2pi = std::sqrt(2.0 / M_PI);
    for (int n : {1, 33, 300}) {
        for (auto& [grid, gl] : ew_grids(n, n == 300)) {
            FBuf y(n);
            y.unwritten();
            launch(fb_fill, grid, dim3(BLOCK), y.p(), -2.5f, n);
            check(fmt("fb_fill n=%d %s", n, gl.c_str()), y, std::vector<double>(n, -2.5), 0.0, intact(y));

            FBuf x = random_buf(n, -6.0f, 6.0f), dy = random_buf(n);
            const float edges[] = {0.0f, -0.0f, 30.0f, -30.0f, 100.0f, -100.0f, 1e-20f, -1e-20f, 9.0f, -9.0f};
            for (int i = 0; i < n && i < 10; i++) {
                x[(size_t) (n - 1 - i)] = edges[i];
            }
            std::vector<double> wg(n), ws(n);
            for (int i = 0; i < n; i++) {
                const double v = x[i];
                const double t = std::tanh(s2pi * (v + 0.044715 * v * v * v));
                wg[i] = dy[i] * (0.5 * (1.0 + t) + 0.5 * v * (1.0 - t * t) * s2pi * (1.0 + 3 * 0.044715 * v * v));
                const double sg = 1.0 / (1.0 + std::exp(-v));
                ws[i] = dy[i] * sg * (1.0 + v * (1.0 - sg));
            }
            y.unwritten();
            launch(fb_gelu_tanh_backward, grid, dim3(BLOCK), x.p(), dy.p(), y.p(), n);
            check(fmt("fb_gelu_tanh_backward n=%d %s", n, gl.c_str()), y, wg, TOL, intact(x, dy, y));
            y.unwritten();
            launch(fb_silu_backward, grid, dim3(BLOCK), x.p(), dy.p(), y.p(), n);
            check(fmt("fb_silu_backward n=%d %s", n, gl.c_str()), y, ws, TOL, intact(x, dy, y));
        }
    }
    struct S {
        int B, L, C;
    };
    for (S s : {S{1, 1, 1}, S{2, 5, 33}, S{3, 7, 13}}) {
        const int n = s.B * s.L * s.C;
        for (auto& [grid, gl] : ew_grids(n, s.B == 2)) {
            for (float offset : {0.0f, 1.0f}) {
                FBuf x = random_buf(n), v = random_buf(s.B * s.C), y(n);
                std::vector<double> want(n);
                for (int i = 0; i < n; i++) {
                    const size_t bc = (size_t) (i / (s.L * s.C)) * s.C + i % s.C;
                    want[i] = ((double) offset + v[bc]) * x[i];
                }
                y.unwritten();
                launch(fb_mul_per_sample, grid, dim3(BLOCK), x.p(), v.p(), offset, y.p(), s.B, s.L, s.C);
                check(fmt("fb_mul_per_sample B=%d L=%d C=%d offset=%g %s", s.B, s.L, s.C, offset, gl.c_str()), y, want,
                      TOL, intact(x, v, y));
            }
        }
    }
    struct R {
        int B, L, H, D;
    };
    for (R s : {R{1, 1, 1, 2}, R{2, 3, 2, 8}, R{1, 5, 3, 22}}) {
        const int n = s.B * s.L * s.H * s.D, pairs = n / 2;
        for (auto& [grid, gl] : ew_grids(pairs, s.D == 22)) {
            FBuf dy = random_buf(n), pe = random_buf((size_t) s.B * s.L * (s.D / 2) * 4), y(n);
            std::vector<double> want(n);
            for (int row = 0; row < s.B * s.L * s.H; row++) {
                const int bl = row / s.H;
                for (int i = 0; i < s.D / 2; i++) {
                    const size_t xo = (size_t) row * s.D + 2 * i, po = ((size_t) bl * (s.D / 2) + i) * 4;
                    // the transpose of [[pe0, pe1], [pe2, pe3]]
                    want[xo] = (double) pe[po] * dy[xo] + (double) pe[po + 2] * dy[xo + 1];
                    want[xo + 1] = (double) pe[po + 1] * dy[xo] + (double) pe[po + 3] * dy[xo + 1];
                }
            }
            y.unwritten();
            launch(fb_rope_backward, grid, dim3(BLOCK), dy.p(), pe.p(), y.p(), s.B, s.L, s.H, s.D);
            check(fmt("fb_rope_backward B=%d L=%d H=%d D=%d %s", s.B, s.L, s.H, s.D, gl.c_str()), y, want, TOL,
                  intact(dy, pe, y));
        }
    }
}

void test_backward_rows() {
    for (int cols : {1, 7, 33, 300}) {
        const int rows = cols == 300 ? 3 : 2;
        const float eps = 1e-5f;
        FBuf x = row_data(rows, cols), dy = random_buf((size_t) rows * cols), s = random_buf(cols, 0.5f, 1.5f),
             y((size_t) rows * cols);
        std::vector<double> wl((size_t) rows * cols), wr((size_t) rows * cols);
        for (int r = 0; r < rows; r++) {
            const float* xr = &x[(size_t) r * cols];
            const float* gr = &dy[(size_t) r * cols];
            double mean = 0, var = 0, ms = 0;
            for (int c = 0; c < cols; c++) {
                mean += xr[c];
                ms += (double) xr[c] * xr[c];
            }
            mean /= cols;
            ms /= cols;
            for (int c = 0; c < cols; c++) {
                var += (xr[c] - mean) * (xr[c] - mean);
            }
            var /= cols;
            const double rstd = 1.0 / std::sqrt(var + (double) eps);
            double mg = 0, mgx = 0, mgs = 0;
            for (int c = 0; c < cols; c++) {
                mg += gr[c];
                mgx += gr[c] * (xr[c] - mean) * rstd;
                mgs += (double) gr[c] * s[c] * xr[c];
            }
            mg /= cols;
            mgx /= cols;
            mgs /= cols;
            const double rr = 1.0 / std::sqrt(ms + (double) eps);
            for (int c = 0; c < cols; c++) {
                const size_t i = (size_t) r * cols + c;
                wl[i] = rstd * (gr[c] - mg - (xr[c] - mean) * rstd * mgx);
                wr[i] = rr * ((double) gr[c] * s[c] - xr[c] * rr * rr * mgs);
            }
        }
        y.unwritten();
        launch(fb_layer_norm_backward, rows_grid(rows), dim3(BLOCK), x.p(), dy.p(), y.p(), rows, cols, eps);
        check(fmt("fb_layer_norm_backward rows=%d cols=%d", rows, cols), y, wl, TOL, intact(x, dy, y));
        y.unwritten();
        launch(fb_rms_norm_backward, rows_grid(rows), dim3(BLOCK), x.p(), s.p(), dy.p(), y.p(), rows, cols, eps);
        check(fmt("fb_rms_norm_backward rows=%d cols=%d", rows, cols), y, wr, TOL, intact(x, s, dy, y));
    }
    for (int cols : {1, 7, 33, 300}) {
        const int rows = cols == 300 ? 2 : 3;
        const size_t n = (size_t) rows * cols;
        FBuf p(n), g = random_buf(n, -2.0f, 2.0f);
        for (int r = 0; r < rows; r++) { // rows of probabilities
            double sum = 0;
            for (int c = 0; c < cols; c++) {
                p[(size_t) r * cols + c] = uniform(0.01f, 1.0f);
                sum += p[(size_t) r * cols + c];
            }
            for (int c = 0; c < cols; c++) {
                p[(size_t) r * cols + c] = (float) (p[(size_t) r * cols + c] / sum);
            }
        }
        std::vector<double> want(n);
        for (int r = 0; r < rows; r++) {
            double dot = 0;
            for (int c = 0; c < cols; c++) {
                dot += (double) g[(size_t) r * cols + c] * p[(size_t) r * cols + c];
            }
            for (int c = 0; c < cols; c++) {
                const size_t i = (size_t) r * cols + c;
                want[i] = p[i] * (g[i] - dot);
            }
        }
        launch(fb_softmax_backward_rows, rows_grid(rows), dim3(BLOCK), p.p(), g.p(), rows, cols);
        check(fmt("fb_softmax_backward_rows rows=%d cols=%d", rows, cols), g, want, TOL, intact(p, g));
    }
}

void test_sum_rows() {
    struct S {
        int B, L, C;
    };
    for (S s : {S{1, 1, 1}, S{1, 300, 5}, S{2, 17, 40}}) {
        const size_t n = (size_t) s.B * s.L * s.C;
        FBuf a = random_buf(n), v = random_buf(n, -2.0f, 2.0f);
        for (bool withV : {false, true}) {
            FBuf y((size_t) s.B * s.C);
            std::vector<double> want(y.n), norm(y.n), seq(y.n);
            for (int b = 0; b < s.B; b++) {
                for (int c = 0; c < s.C; c++) {
                    double acc = 0, mag = 0;
                    float part[8];
                    for (int ty = 0; ty < 8; ty++) {
                        float f = 0.0f;
                        for (int l = ty; l < s.L; l += 8) {
                            const size_t i = ((size_t) b * s.L + l) * s.C + c;
                            f = withV ? std::fma(a[i], v[i], f) : f + a[i];
                        }
                        part[ty] = f;
                    }
                    float total = part[0];
                    for (int ty = 1; ty < 8; ty++) {
                        total += part[ty];
                    }
                    for (int l = 0; l < s.L; l++) {
                        const size_t i = ((size_t) b * s.L + l) * s.C + c;
                        const double t = withV ? (double) a[i] * v[i] : (double) a[i];
                        acc += t;
                        mag += std::fabs(t);
                    }
                    const size_t o = (size_t) b * s.C + c;
                    want[o] = acc;
                    norm[o] = std::max(mag, 1e-30);
                    seq[o] = total;
                }
            }
            y.unwritten();
            const dim3 grid((unsigned) ((s.C + 31) / 32), (unsigned) s.B);
            launch(fb_sum_rows, grid, dim3(32, 8), a.p(), withV ? v.p() : nullptr, y.p(), s.B, s.L, s.C);
            const std::string label =
                    fmt("fb_sum_rows B=%d L=%d C=%d %s grid=(%u,%u)", s.B, s.L, s.C, withV ? "a*v" : "a", grid.x, grid.y);
            const bool g = intact(a, v, y);
            check(label, y, want, TOL, g, &norm);
            // OpsKernels.SUM_ROWS: rows ty, ty + 8, ... per thread, then the 8 partials in order (deterministic)
            check(label + " bit-exact-vs-documented-order", y, seq, 0.0, g);
        }
    }
}

void test_ternary_input_grad() {
    struct S {
        int M, N, K;
    };
    for (S s : {S{1, 1, 1}, S{1, 70, 45}, S{3, 9, 64}, S{16, 70, 45}, S{33, 5, 40}}) {
        Ternary t(s.N, s.K);
        FBuf dy = random_buf((size_t) s.M * s.N), scale = random_buf(s.N, -2.0f, 2.0f), dx((size_t) s.M * s.K);
        scale[0] = 0.0f; // a zero scale is allowed
        std::vector<double> want(dx.n), norm(dx.n), seq(dx.n);
        const int seg = (s.N + 7) / 8;
        for (int m = 0; m < s.M; m++) {
            for (int k = 0; k < s.K; k++) {
                double acc = 0, mag = 0;
                for (int o = 0; o < s.N; o++) {
                    const double term = (double) dy[(size_t) m * s.N + o] * scale[o] * t.codes[(size_t) o * s.K + k];
                    acc += term;
                    mag += std::fabs(term);
                }
                float total = 0.0f;
                for (int w = 0; w < 8; w++) {
                    float f = 0.0f;
                    for (int o = w * seg; o < std::min(s.N, (w + 1) * seg); o++) {
                        const float ds = dy[(size_t) m * s.N + o] * scale[o];
                        f = std::fma(ds, (float) t.codes[(size_t) o * s.K + k], f);
                    }
                    total = w == 0 ? f : total + f;
                }
                const size_t i = (size_t) m * s.K + k;
                want[i] = acc;
                norm[i] = std::max(mag, 1e-30);
                seq[i] = total;
            }
        }
        dx.unwritten();
        const dim3 grid((unsigned) ((s.K + 31) / 32), (unsigned) ((s.M + 15) / 16));
        launch(ternary_matmul_input_grad, grid, dim3(256), dy.p(), t.w.p(), scale.p(), dx.p(), s.M, s.N, s.K);
        const std::string label =
                fmt("ternary_matmul_input_grad M=%d N=%d K=%d grid=(%u,%u)", s.M, s.N, s.K, grid.x, grid.y);
        const bool g = intact(dy, t.w, scale, dx);
        check(label, dx, want, TOL, g, &norm);
        // TernaryLaunch: each warp sums its eighth of the outputs in order, the partials added in warp order
        check(label + " bit-exact-vs-documented-order", dx, seq, 0.0, g);
    }
}

// ---------------------------------------------------------------------------------------------------------------
// the emulation itself: shuffles, barriers, shared memory poisoning

__global__ void host_selfcheck(int* out) {
    __shared__ int poison_seen;
    __shared__ int sh[256];
    const int t = threadIdx.x, lane = t & 31;
    if (t == 0) {
        poison_seen = sh[255]; // not written yet in this block: the poison pattern
    }
    __syncthreads();
    sh[t] = 1000 * blockIdx.x + t;
    __syncthreads();
    const int x = __shfl_xor_sync(0xffffffffu, t, 5);
    const int d = __shfl_down_sync(0xffffffffu, t, 3);
    const int u = __shfl_up_sync(0xffffffffu, t, 2);
    const int s = __shfl_sync(0xffffffffu, t, 7);
    const int w = __shfl_xor_sync(0xffffffffu, t, 1, 8); // width 8
    const int r = sh[255 - t];
    __syncthreads();
    int* o = out + ((size_t) blockIdx.x * 256 + t) * 7;
    o[0] = x;
    o[1] = d;
    o[2] = u;
    o[3] = s;
    o[4] = w;
    o[5] = r;
    o[6] = poison_seen;
    (void) lane;
}

void test_emulation() {
    const int blocks = 2;
    Buf<int> out((size_t) blocks * 256 * 7);
    launch(host_selfcheck, dim3(blocks), dim3(256), out.p());
    long bad = 0;
    for (int b = 0; b < blocks; b++) {
        for (int t = 0; t < 256; t++) {
            const int lane = t & 31, base = t - lane;
            const int want[7] = {base + (lane ^ 5), lane + 3 < 32 ? t + 3 : t, lane >= 2 ? t - 2 : t, base + 7,
                                 base + (lane ^ 1), 1000 * b + 255 - t, (int) 0x7fc0deadu};
            for (int k = 0; k < 7; k++) {
                bad += out[((size_t) b * 256 + t) * 7 + k] != want[k];
            }
        }
    }
    checks++;
    const long sbytes = cuda_host::shared_bytes();
    if (bad == 0 && out.guards_intact()) {
        std::printf("ok  cuda_host emulation (shuffles, barrier, shared memory poisoned per block; %ld bytes of "
                    "__shared__) maxerr=0\n", sbytes);
    } else {
        failures++;
        std::printf("FAIL cuda_host emulation: %ld wrong results\n", bad);
    }
}

} // namespace

int main() {
    std::setvbuf(stdout, nullptr, _IOLBF, 0);
    const auto t0 = std::chrono::steady_clock::now();
    test_emulation();
    test_binary();
    test_activations();
    test_modulate_gated_add();
    test_bias();
    test_rope();
    test_embedding();
    test_bf16();
    test_im2col();
    test_upsample();
    test_layer_norm();
    test_rms_norm();
    test_softmax();
    test_flash_attention();
    test_group_norm();
    test_transpose();
    test_ternary();
    test_ternary_dense_path();
    test_backward_elementwise();
    test_backward_rows();
    test_sum_rows();
    test_ternary_input_grad();
    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    std::printf("%d checks, %d failed, %lld blocks, %lld threads, %.2f s\n", checks, failures,
                cuda_host::launched_blocks, cuda_host::launched_threads, secs);
    return failures == 0 ? 0 : 1;
}
