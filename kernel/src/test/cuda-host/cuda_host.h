// fluxbatch: a small emulation of the CUDA built-ins, so the kernel sources (kernel/src/main/cuda/*.cu) compile as
// plain C++ with g++ (-std=c++20 -pthread) and run on the CPU. Used by kernels_on_host.cpp, which the JUnit test
// ai.fluxbatch.kernel.cuda.CudaKernelsOnHostTest compiles and runs.
//
// Model:
//   * launch(kernel, grid, block, args...) runs the grid's blocks one at a time (x fastest, then y, then z); the
//     threads of a block run concurrently, one OS thread (std::thread) per CUDA thread.
//   * blockIdx, threadIdx, blockDim, gridDim are thread_local, set by each OS thread before it enters the kernel.
//   * __shared__ is `static`: one copy per kernel, shared by all the threads of the running block. That is shared
//     memory exactly because blocks run one after another. The variables are placed in their own linker section,
//     fb_host_shared (the GNU linker's __start_/__stop_ symbols delimit it), and before each block the launch fills
//     that whole section with a NaN pattern, so a kernel that reads shared memory it did not write in this block
//     gets NaN (or a large int), never the previous block's data.
//   * __syncthreads() is a std::barrier over the block's threads; a thread that returns from the kernel drops out of
//     it (arrive_and_drop), as a thread that exits does on the GPU.
//   * Warp shuffles go through a per-warp exchange: each lane writes its value to a slot, a barrier over the warp's
//     lanes (std::barrier again), each lane reads its source lane's slot. Two slot sets alternate, so one barrier per
//     shuffle suffices (a lane overwrites a set only after every lane has passed the barrier of the shuffle after
//     the one that read it). Only full-warp masks are supported (all the .cu files use); a shuffle with another
//     mask, or in a warp some of whose lanes have exited (checked on a best-effort basis), aborts with a message.
//   * __global__, __device__, __host__, __launch_bounds__ vanish, __forceinline__ is inline; the math built-ins map
//     to <cmath>; __fmul_rn / __fadd_rn are plain float operations (the harness is compiled without FMA
//     contraction: -std=c++20 means -ffp-contract=off, and x86-64's baseline has no FMA instruction anyway).
//
// The emulation checks what it can cheaply: block size <= 1024, grid y and z <= 65535, grid x <= 2^31 - 1.

#pragma once

#include <atomic>
#include <barrier>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <memory>
#include <thread>
#include <tuple>
#include <type_traits>
#include <vector>

// ---------------------------------------------------------------------------------------------------------------
// qualifiers

#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __noinline__
#define __launch_bounds__(...)
// Every __shared__ variable lands in the section fb_host_shared, which the launch poisons before each block.
#define __shared__ static __attribute__((section("fb_host_shared"), aligned(16)))
// __restrict__ is a g++ keyword already.

// ---------------------------------------------------------------------------------------------------------------
// vector types

struct uint3 {
    unsigned int x, y, z;
};

struct dim3 {
    unsigned int x, y, z;
    constexpr dim3(unsigned int x_ = 1, unsigned int y_ = 1, unsigned int z_ = 1) : x(x_), y(y_), z(z_) {
    }
};

struct alignas(8) uint2 {
    unsigned int x, y;
};
struct alignas(8) int2 {
    int x, y;
};
struct alignas(8) float2 {
    float x, y;
};
struct alignas(16) uint4 {
    unsigned int x, y, z, w;
};
struct alignas(16) int4 {
    int x, y, z, w;
};
struct alignas(16) float4 {
    float x, y, z, w;
};

// ---------------------------------------------------------------------------------------------------------------
// built-in variables

static thread_local uint3 blockIdx;
static thread_local uint3 threadIdx;
static thread_local dim3 blockDim;
static thread_local dim3 gridDim;
static constexpr int warpSize = 32;

// ---------------------------------------------------------------------------------------------------------------
// math and bit built-ins

inline int min(int a, int b) {
    return a < b ? a : b;
}
inline int max(int a, int b) {
    return a > b ? a : b;
}
inline unsigned int min(unsigned int a, unsigned int b) {
    return a < b ? a : b;
}
inline unsigned int max(unsigned int a, unsigned int b) {
    return a > b ? a : b;
}
inline long long min(long long a, long long b) {
    return a < b ? a : b;
}
inline long long max(long long a, long long b) {
    return a > b ? a : b;
}
inline unsigned long long min(unsigned long long a, unsigned long long b) {
    return a < b ? a : b;
}
inline unsigned long long max(unsigned long long a, unsigned long long b) {
    return a > b ? a : b;
}

inline float __int_as_float(int v) {
    float f;
    std::memcpy(&f, &v, sizeof f);
    return f;
}
inline int __float_as_int(float f) {
    int v;
    std::memcpy(&v, &f, sizeof v);
    return v;
}
inline float __uint_as_float(unsigned int v) {
    float f;
    std::memcpy(&f, &v, sizeof f);
    return f;
}
inline unsigned int __float_as_uint(float f) {
    unsigned int v;
    std::memcpy(&v, &f, sizeof v);
    return v;
}

inline float __fmul_rn(float a, float b) {
    volatile float r = a * b; // a rounded product, never contracted into a later add
    return r;
}
inline float __fadd_rn(float a, float b) {
    volatile float r = a + b;
    return r;
}
inline float __fsub_rn(float a, float b) {
    volatile float r = a - b;
    return r;
}
inline float __fdiv_rn(float a, float b) {
    return a / b;
}
inline float __fmaf_rn(float a, float b, float c) {
    return std::fma(a, b, c);
}
inline float __expf(float x) {
    return std::exp(x);
}
inline float __logf(float x) {
    return std::log(x);
}
inline float __sinf(float x) {
    return std::sin(x);
}
inline float __cosf(float x) {
    return std::cos(x);
}
inline float __fdividef(float a, float b) {
    return a / b;
}
inline float __frcp_rn(float x) {
    return 1.0f / x;
}
inline float __fsqrt_rn(float x) {
    return std::sqrt(x);
}
inline float rsqrtf(float x) {
    return 1.0f / std::sqrt(x);
}
inline float __saturatef(float x) {
    return x < 0.0f ? 0.0f : (x > 1.0f ? 1.0f : x);
}
inline int __popc(unsigned int v) {
    return __builtin_popcount(v);
}
inline int __clz(int v) {
    return v == 0 ? 32 : __builtin_clz((unsigned int) v);
}
inline int __ffs(int v) {
    return __builtin_ffs(v);
}

template <typename T>
inline T __ldg(const T* p) {
    return *p;
}

// expf, tanhf, sqrtf, fmaxf, fminf, fmaf, fabsf, logf ... come from <cmath> (global namespace via <math.h>).

// ---------------------------------------------------------------------------------------------------------------
// the running block

namespace cuda_host {

// The 32 lanes of one warp: the barrier its shuffles use and two sets of exchange slots.
struct Warp {
    explicit Warp(int lanes_) : lanes(lanes_), bar(lanes_) {
    }
    const int lanes;
    std::barrier<> bar;
    std::atomic<int> exited{0};
    unsigned long long slots[2][32] = {}; // the two slot sets; each lane's tl_parity picks the next one
};

struct Block {
    explicit Block(int threads) : bar(threads) {
    }
    std::barrier<> bar;
    std::vector<std::unique_ptr<Warp>> warps;
};

inline thread_local Block* tl_block = nullptr;
inline thread_local Warp* tl_warp = nullptr;
inline thread_local int tl_lane = 0;
inline thread_local int tl_parity = 0;

[[noreturn]] inline void fail(const char* what) {
    std::fprintf(stderr, "cuda_host: %s\n", what);
    std::fflush(stderr);
    std::abort();
}

// The __shared__ variables of all kernels: the section fb_host_shared. At least one variable must be there for the
// linker to define the bounds, so the harness itself puts a word in it.
extern "C" unsigned char __start_fb_host_shared[];
extern "C" unsigned char __stop_fb_host_shared[];
static unsigned int shared_anchor __attribute__((section("fb_host_shared"), used)) = 0u;

// Bytes of __shared__ variables in the program (all kernels together).
inline long shared_bytes() {
    return (long) (__stop_fb_host_shared - __start_fb_host_shared);
}

inline void poison_shared() {
    // 0x7fc0dead: as float a quiet NaN, as int a large positive number
    const uint32_t v = 0x7fc0deadu;
    for (unsigned char* b = __start_fb_host_shared; b + 4 <= __stop_fb_host_shared; b += 4) {
        std::memcpy(b, &v, 4);
    }
}

template <typename T>
inline T shfl(unsigned mask, T v, int src_lane_of_me) {
    static_assert(sizeof(T) <= sizeof(unsigned long long), "shuffle of a type wider than 8 bytes");
    if (mask != 0xffffffffu) {
        fail("a warp shuffle with a mask other than 0xffffffff (not emulated)");
    }
    Warp* w = tl_warp;
    if (w->lanes != 32 || w->exited.load() != 0) {
        fail("a full-mask warp shuffle in a warp that does not have 32 live lanes");
    }
    unsigned long long bits = 0;
    std::memcpy(&bits, &v, sizeof(T));
    const int p = tl_parity;
    tl_parity ^= 1;
    w->slots[p][tl_lane] = bits;
    w->bar.arrive_and_wait();
    T r;
    std::memcpy(&r, &w->slots[p][src_lane_of_me & 31], sizeof(T));
    return r;
}

} // namespace cuda_host

inline void __syncthreads() {
    cuda_host::tl_block->bar.arrive_and_wait();
}

inline void __syncwarp(unsigned mask = 0xffffffffu) {
    if (mask != 0xffffffffu) {
        cuda_host::fail("__syncwarp with a mask other than 0xffffffff (not emulated)");
    }
    cuda_host::tl_warp->bar.arrive_and_wait();
}

template <typename T>
inline T __shfl_xor_sync(unsigned mask, T v, int lane_mask, int width = 32) {
    const int lane = cuda_host::tl_lane;
    const int src = lane ^ lane_mask;
    // outside the lane's segment of width lanes: its own value
    const bool inside = (src & ~(width - 1)) == (lane & ~(width - 1));
    T r = cuda_host::shfl(mask, v, inside ? src : lane);
    return r;
}

template <typename T>
inline T __shfl_down_sync(unsigned mask, T v, unsigned int delta, int width = 32) {
    const int lane = cuda_host::tl_lane;
    const int seg = lane & ~(width - 1);
    const int src = lane + (int) delta;
    return cuda_host::shfl(mask, v, src < seg + width ? src : lane);
}

template <typename T>
inline T __shfl_up_sync(unsigned mask, T v, unsigned int delta, int width = 32) {
    const int lane = cuda_host::tl_lane;
    const int seg = lane & ~(width - 1);
    const int src = lane - (int) delta;
    return cuda_host::shfl(mask, v, src >= seg ? src : lane);
}

template <typename T>
inline T __shfl_sync(unsigned mask, T v, int src_lane, int width = 32) {
    const int lane = cuda_host::tl_lane;
    const int seg = lane & ~(width - 1);
    return cuda_host::shfl(mask, v, seg + (src_lane & (width - 1)));
}

// ---------------------------------------------------------------------------------------------------------------
// launch

namespace cuda_host {

inline long long launched_blocks = 0;
inline long long launched_threads = 0;

} // namespace cuda_host

// Runs kernel<<<grid, block>>>(args...): blocks one after another, a block's threads concurrently.
template <typename... P, typename... A>
void launch(void (*kernel)(P...), dim3 grid, dim3 block, A... args) {
    static_assert(sizeof...(P) == sizeof...(A), "launch: wrong number of kernel arguments");
    const long long threads = (long long) block.x * block.y * block.z;
    if (threads < 1 || threads > 1024) {
        cuda_host::fail("launch: a block of more than 1024 threads (or none)");
    }
    if (grid.x < 1 || grid.y < 1 || grid.z < 1 || grid.x > 2147483647u || grid.y > 65535u || grid.z > 65535u) {
        cuda_host::fail("launch: a grid dimension out of CUDA's limits");
    }
    std::tuple<P...> params(static_cast<P>(args)...);
    for (unsigned bz = 0; bz < grid.z; bz++) {
        for (unsigned by = 0; by < grid.y; by++) {
            for (unsigned bx = 0; bx < grid.x; bx++) {
                cuda_host::poison_shared();
                cuda_host::Block blk((int) threads);
                const int nwarps = (int) ((threads + 31) / 32);
                for (int w = 0; w < nwarps; w++) {
                    const int lanes = (int) std::min<long long>(32, threads - 32LL * w);
                    blk.warps.push_back(std::make_unique<cuda_host::Warp>(lanes));
                }
                std::vector<std::thread> pool;
                pool.reserve((size_t) threads);
                for (long long t = 0; t < threads; t++) {
                    pool.emplace_back([&, t, bx, by, bz]() {
                        blockIdx = {bx, by, bz};
                        threadIdx = {(unsigned) (t % block.x), (unsigned) ((t / block.x) % block.y),
                                     (unsigned) (t / ((long long) block.x * block.y))};
                        blockDim = block;
                        gridDim = grid;
                        cuda_host::tl_block = &blk;
                        cuda_host::tl_warp = blk.warps[(size_t) (t / 32)].get();
                        cuda_host::tl_lane = (int) (t % 32);
                        cuda_host::tl_parity = 0;
                        std::apply(kernel, params);
                        // the thread exits: later barriers of its block and warp no longer wait for it
                        cuda_host::tl_warp->exited.fetch_add(1);
                        cuda_host::tl_warp->bar.arrive_and_drop();
                        blk.bar.arrive_and_drop();
                    });
                }
                for (std::thread& th : pool) {
                    th.join();
                }
                cuda_host::launched_blocks++;
                cuda_host::launched_threads += threads;
            }
        }
    }
}
