// fluxbatch: the CUDA kernels of kernel/src/main/cuda compiled for the host (with the emulation of
// kernel/src/test/cuda-host/cuda_host.h), and the table through which the fake cuLaunchKernel runs them: each entry
// reads the kernel's arguments from cuLaunchKernel's kernelParams by the kernel's own parameter types (deduced from
// the function, so the table cannot disagree with the .cu files) and launches it on the host.
//
// Kernels marked sequential run a block's CUDA threads one after another on the calling OS thread (they must not use
// __syncthreads, warp shuffles or shared memory: cuda_host.h's barriers would dereference a null block); the others
// get cuda_host.h's launch, one OS thread per CUDA thread.
//
// The include paths are set by the test's g++ command: -I kernel/src/test/cuda-host -I kernel/src/main/cuda.

#include "cuda_host.h"

#include "fluxbatch_ops.cu"
#include "ternary_matmul.cu"

#include "fake_kernels.h"

#include <cstring>
#include <tuple>
#include <type_traits>
#include <utility>

namespace {

template <typename T>
constexpr char kind_of() {
    if constexpr (std::is_pointer_v<T>) {
        return 'p';
    } else if constexpr (std::is_same_v<T, int>) {
        return 'i';
    } else if constexpr (std::is_same_v<T, float>) {
        return 'f';
    } else if constexpr (std::is_same_v<T, unsigned int>) {
        return 'u';
    } else {
        static_assert(sizeof(T) == 0, "a kernel parameter type the fake driver does not know");
        return '?';
    }
}

template <typename T>
T read_param(void* p) {
    T v;
    std::memcpy(&v, p, sizeof v);
    return v;
}

// kernel<<<grid, block>>>(args...) with a block's threads run one after another on this OS thread.
template <typename... P, typename... A>
void launch_sequential(void (*kernel)(P...), dim3 grid, dim3 block, A... args) {
    static_assert(sizeof...(P) == sizeof...(A), "launch_sequential: wrong number of kernel arguments");
    for (unsigned bz = 0; bz < grid.z; bz++) {
        for (unsigned by = 0; by < grid.y; by++) {
            for (unsigned bx = 0; bx < grid.x; bx++) {
                for (unsigned tz = 0; tz < block.z; tz++) {
                    for (unsigned ty = 0; ty < block.y; ty++) {
                        for (unsigned tx = 0; tx < block.x; tx++) {
                            blockIdx = {bx, by, bz};
                            threadIdx = {tx, ty, tz};
                            blockDim = block;
                            gridDim = grid;
                            cuda_host::tl_block = nullptr; // a barrier here would crash, by design
                            cuda_host::tl_warp = nullptr;
                            kernel(args...);
                        }
                    }
                }
                cuda_host::launched_blocks++;
                cuda_host::launched_threads += (long long) block.x * block.y * block.z;
            }
        }
    }
}

template <auto K>
struct Entry;

template <typename... P, void (*K)(P...)>
struct Entry<K> {
    static constexpr int N = (int) sizeof...(P);
    static constexpr size_t sizes[sizeof...(P) + 1] = {sizeof(P)..., 0};
    static constexpr size_t aligns[sizeof...(P) + 1] = {alignof(P)..., 0};
    static constexpr char kinds[sizeof...(P) + 1] = {kind_of<P>()..., '\0'};

    template <bool Sequential, size_t... I>
    static void run_impl(void* const* params, dim3 grid, dim3 block, std::index_sequence<I...>) {
        std::tuple<P...> args{read_param<P>(params[I])...};
        if constexpr (Sequential) {
            launch_sequential(K, grid, block, std::get<I>(args)...);
        } else {
            launch(K, grid, block, std::get<I>(args)...);
        }
    }

    template <bool Sequential>
    static void run(void* const* params, unsigned gx, unsigned gy, unsigned gz, unsigned bx, unsigned by,
                    unsigned bz) {
        run_impl<Sequential>(params, dim3(gx, gy, gz), dim3(bx, by, bz), std::index_sequence_for<P...>{});
    }
};

#define FAKE_KERNEL(module, fn, threads, sequential)                                                               \
    FakeKernel {                                                                                                   \
        #fn, module, Entry<fn>::N, Entry<fn>::sizes, Entry<fn>::aligns, Entry<fn>::kinds, threads, sequential,     \
            &Entry<fn>::template run<sequential>                                                                   \
    }

const FakeKernel TABLE[] = {
    // fluxbatch_ops.cu, element-wise (grid-stride loops, no communication between threads)
    FAKE_KERNEL("fluxbatch_ops", fb_add, FB_BLOCK, true),
    FAKE_KERNEL("fluxbatch_ops", fb_mul, FB_BLOCK, true),
    FAKE_KERNEL("fluxbatch_ops", fb_gelu_tanh, FB_BLOCK, true),
    FAKE_KERNEL("fluxbatch_ops", fb_silu, FB_BLOCK, true),
    FAKE_KERNEL("fluxbatch_ops", fb_quick_gelu, FB_BLOCK, true),
    FAKE_KERNEL("fluxbatch_ops", fb_modulate, FB_BLOCK, true),
    FAKE_KERNEL("fluxbatch_ops", fb_gated_add, FB_BLOCK, true),
    FAKE_KERNEL("fluxbatch_ops", fb_add_bias_rows, FB_BLOCK, true),
    FAKE_KERNEL("fluxbatch_ops", fb_add_bias_channels, FB_BLOCK, true),
    FAKE_KERNEL("fluxbatch_ops", fb_ternary_decode, FB_BLOCK, true),
    FAKE_KERNEL("fluxbatch_ops", fb_scale_bias_rows, FB_BLOCK, true),
    FAKE_KERNEL("fluxbatch_ops", fb_rope, FB_BLOCK, true),
    FAKE_KERNEL("fluxbatch_ops", fb_embedding, FB_BLOCK, true),
    FAKE_KERNEL("fluxbatch_ops", fb_embedding_bf16, FB_BLOCK, true),
    FAKE_KERNEL("fluxbatch_ops", fb_bf16_widen, FB_BLOCK, true),
    FAKE_KERNEL("fluxbatch_ops", fb_im2col, FB_BLOCK, true),
    FAKE_KERNEL("fluxbatch_ops", fb_upsample_nearest2x, FB_BLOCK, true),
    FAKE_KERNEL("fluxbatch_ops", fb_fill, FB_BLOCK, true),
    FAKE_KERNEL("fluxbatch_ops", fb_gelu_tanh_backward, FB_BLOCK, true),
    FAKE_KERNEL("fluxbatch_ops", fb_silu_backward, FB_BLOCK, true),
    FAKE_KERNEL("fluxbatch_ops", fb_mul_per_sample, FB_BLOCK, true),
    FAKE_KERNEL("fluxbatch_ops", fb_rope_backward, FB_BLOCK, true),
    // fluxbatch_ops.cu, block reductions and shared-memory tiles: one OS thread per CUDA thread
    FAKE_KERNEL("fluxbatch_ops", fb_layer_norm, FB_BLOCK, false),
    FAKE_KERNEL("fluxbatch_ops", fb_rms_norm, FB_BLOCK, false),
    FAKE_KERNEL("fluxbatch_ops", fb_softmax_rows, FB_BLOCK, false),
    FAKE_KERNEL("fluxbatch_ops", fb_group_norm, FB_BLOCK, false),
    FAKE_KERNEL("fluxbatch_ops", fb_transpose_last2, FB_TILE * FB_TILE_ROWS, false),
    FAKE_KERNEL("fluxbatch_ops", fb_layer_norm_backward, FB_BLOCK, false),
    FAKE_KERNEL("fluxbatch_ops", fb_rms_norm_backward, FB_BLOCK, false),
    FAKE_KERNEL("fluxbatch_ops", fb_softmax_backward_rows, FB_BLOCK, false),
    FAKE_KERNEL("fluxbatch_ops", fb_sum_rows, FB_SUM_COLS * FB_SUM_ROWS, false),
    FAKE_KERNEL("fluxbatch_ops", fb_flash_attention_d32, FB_ATT_WARPS * 32, false),
    FAKE_KERNEL("fluxbatch_ops", fb_flash_attention_d64, FB_ATT_WARPS * 32, false),
    FAKE_KERNEL("fluxbatch_ops", fb_flash_attention_d128, FB_ATT_WARPS * 32, false),
    // ternary_matmul.cu (warp shuffles, shared memory)
    FAKE_KERNEL("ternary_matmul", ternary_matmul_small_m, FB_SMALL_WARPS * 32, false),
    FAKE_KERNEL("ternary_matmul", ternary_matmul_tiled, FB_TILED_THREADS, false),
    FAKE_KERNEL("ternary_matmul", ternary_matmul_input_grad, FB_IG_WARPS * 32, false),
};

} // namespace

const FakeKernel* fake_kernels(int* count) {
    *count = (int) (sizeof TABLE / sizeof TABLE[0]);
    return TABLE;
}
