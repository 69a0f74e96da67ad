// fluxbatch: what the fake libcuda.so.1 exports besides the driver API, for the fake libcublas.so.13 (which links it,
// as the real cuBLAS runs on the driver): queueing work on a stream, checking device address ranges, faults.

#pragma once

#include <cstddef>
#include <cstdint>

extern "C" {
// Queues fn(arg) on stream (a CUstream; null: the legacy default stream); fn runs on the stream's worker thread, in
// order with the stream's copies and kernels, and owns arg. Returns a CUresult.
int fakecuda_enqueue(void* stream, void (*fn)(void* arg), void* arg);
// Whether [address, address + bytes) lies inside one live device allocation.
int fakecuda_device_range_ok(uint64_t address, uint64_t bytes);
// Records a fault (a FAULT log line) and makes the context's error sticky (CUDA_ERROR_ILLEGAL_ADDRESS), as a GPU
// does after an illegal access: every later call fails.
void fakecuda_fault(const char* what);
// Whether the calling thread has a live context current (1) or not (0).
int fakecuda_context_current(void);
// Whether stream is a live stream (or null, the default stream).
int fakecuda_stream_valid(void* stream);
// Waits for every stream's queued work.
void fakecuda_drain(void);
}
