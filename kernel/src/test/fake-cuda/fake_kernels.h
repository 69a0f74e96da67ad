// fluxbatch: the kernels the fake libcuda.so.1 can run: every extern "C" kernel of kernel/src/main/cuda/*.cu,
// compiled for the host by fake_kernels.cpp against the CUDA emulation kernel/src/test/cuda-host/cuda_host.h.

#pragma once

#include <cstddef>

struct FakeKernel {
    const char* name;     // the extern "C" name
    const char* module;   // fluxbatch_ops or ternary_matmul (the .cu file's base name)
    int params;           // number of parameters
    const size_t* sizes;  // each parameter's size in bytes
    const size_t* aligns; // and alignment
    const char* kinds;    // 'p' pointer, 'i' int, 'f' float, per parameter
    int maxThreads;       // __launch_bounds__
    bool sequential;      // element-wise: no __syncthreads, shuffles or shared memory, so one OS thread may run a
                          // block's CUDA threads one after another
    // Runs the kernel over the grid with the parameters' values at params[i] (each sizes[i] bytes).
    void (*run)(void* const* params, unsigned gx, unsigned gy, unsigned gz, unsigned bx, unsigned by, unsigned bz);
};

// The table and its length.
const FakeKernel* fake_kernels(int* count);
