// fluxbatch: a FAKE libcuda.so.1 (the NVIDIA driver API) that runs on the CPU, so that CudaDriverDevice's real
// JavaCPP/JNI path can be tested on a machine without a GPU (CudaDriverDeviceOnFakeDriverTest builds it with g++ and
// puts it first on LD_LIBRARY_PATH of a child JVM; JavaCPP's libjnicudart.so links libcuda.so.1 and binds its cu*
// symbols lazily, unversioned).
//
// It is compiled against the real <cuda.h>, so every function has the exact signature and symbol (the _v2 names come
// from cuda.h's macros) that libjnicudart.so calls, and CUDA_MEMCPY2D, the enums and the error codes are the real ones.
//
// The emulated device: one GPU, "fake CUDA device (host emulation)", compute capability 9.0, FAKE_CUDA_CAPACITY
// bytes of memory (default 16 GiB; suffix K, M or G). Device memory is host memory from the C heap (a device address
// is a host address), each allocation filled with 0xff bytes (float NaN: a kernel reading memory no one wrote gives
// NaN, not zeros) and fenced by guard bytes checked at every synchronization and free (a kernel or copy that wrote
// past its allocation is a FAULT).
//
// Streams are real: each has a worker thread that runs its queue in order (copies, kernels, the fake cuBLAS's
// GEMMs), so a stream runs behind the host as a GPU does; FAKE_CUDA_STREAM_DELAY_US adds a pause before each task to
// widen that gap. Asynchronous copies check what a GPU would make a silent data race of: a host-to-device copy whose
// pinned source the host rewrote before the copy ran is a FAULT, and a device-to-host copy's pinned destination is
// poisoned (NaN) when queued, so a host that reads it before synchronizing reads NaN.
//
// Modules: cuModuleLoadData takes a fatbin (magic 0xBA55ED50; its kernels are the names of its ".text.NAME" ELF
// sections; FAKE_CUDA_NO_FATBIN=1 refuses every fatbin with CUDA_ERROR_NO_BINARY_FOR_GPU, as a driver does for a GPU
// the fatbin has no code for, so the NVRTC fallback runs) or a fake CUBIN made by the fake libnvrtc.so.13
// ("FAKECUBIN" header naming the architecture and the kernels). A kernel runs the host build of its source
// (fake_kernels.cpp's table), with the argument values copied from kernelParams at launch, as the driver does.
//
// What the driver would refuse, the fake refuses with the driver's error code (no context current, invalid handles,
// a block larger than the kernel's __launch_bounds__, dynamic shared memory beyond the opt-in, kernelParams past the
// last parameter, a 2-D copy whose memory types are not device to device, pitches beyond the device's maximum...),
// and logs an "error" line; what a GPU would fault on (a pointer argument outside every allocation, a copy past an
// allocation's end) is a FAULT line and makes the context's error sticky (CUDA_ERROR_ILLEGAL_ADDRESS).
// FAKE_CUDA_INIT_RESULT=N makes the first cuInit return N (e.g. 100, CUDA_ERROR_NO_DEVICE). See fake_log.h for the log.

#include <cuda.h>

#include "fake_hooks.h"
#include "fake_kernels.h"
#include "fake_log.h"

#include <algorithm>
#include <atomic>
#include <cctype>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

// ---------------------------------------------------------------------------------------------------------------
// handles

struct CUctx_st {
    int refs = 0;
    bool alive = false;
};

struct CUstream_st {
    std::mutex mu;
    std::condition_variable cv;
    std::deque<std::pair<uint64_t, std::function<void()>>> queue;
    uint64_t enqueued = 0;
    uint64_t completed = 0;
    bool stop = false;
    unsigned flags = 0;
    std::thread worker;
};

struct CUevent_st {
    CUstream_st* stream = nullptr;
    uint64_t seq = 0;
    unsigned flags = 0;
};

struct CUfunc_st;

struct CUmod_st {
    std::string name;
    std::string kind;
    std::vector<CUfunc_st*> functions;
};

struct CUfunc_st {
    const FakeKernel* kernel = nullptr;
    CUmod_st* module = nullptr;
    std::vector<size_t> offsets;
    size_t paramBytes = 0;
    int maxDynamicShared = 48 * 1024;
};

namespace {

constexpr int DEVICE_COUNT = 1;
constexpr const char* DEVICE_NAME = "fake CUDA device (host emulation)";
constexpr int CC_MAJOR = 9;
constexpr int CC_MINOR = 0;
constexpr int SHARED_OPTIN = 232448; // an H100's 227 KiB
constexpr int DEFAULT_SHARED = 48 * 1024;
constexpr long long MAX_PITCH = 2147483647LL;
constexpr size_t GUARD = 256;
constexpr unsigned char GUARD_BYTE = 0xfb;
constexpr unsigned char FRESH_BYTE = 0xff;

struct Allocation {
    uintptr_t base;
    size_t size;
    unsigned char* raw;
    size_t rawSize;
};

std::mutex g_mu; // the tables below
std::atomic<bool> g_initialized{false};
std::atomic<int> g_sticky{CUDA_SUCCESS};
CUctx_st g_primary;
thread_local CUctx_st* t_current = nullptr;
std::map<uintptr_t, Allocation> g_device;
std::map<uintptr_t, Allocation> g_pinned;
size_t g_used = 0;
std::set<CUstream_st*> g_streams;
std::set<CUevent_st*> g_events;
std::set<CUmod_st*> g_modules;
std::set<CUfunc_st*> g_functions;
CUstream_st* g_default_stream = nullptr;
std::mutex g_exec_mu; // one task at a time over all streams: the kernels' __shared__ memory is one static section
std::map<std::string, long> g_launches;
long g_faults = 0;

size_t parse_bytes(const char* s, size_t fallback) {
    if (s == nullptr || *s == '\0') {
        return fallback;
    }
    char* end = nullptr;
    unsigned long long v = std::strtoull(s, &end, 10);
    if (end != nullptr) {
        switch (*end) {
            case 'k': case 'K': v <<= 10; break;
            case 'm': case 'M': v <<= 20; break;
            case 'g': case 'G': v <<= 30; break;
            default: break;
        }
    }
    return (size_t) v;
}

size_t capacity() {
    static const size_t c = parse_bytes(std::getenv("FAKE_CUDA_CAPACITY"), 16ULL << 30);
    return c;
}

bool env_is(const char* name, const char* value) {
    const char* v = std::getenv(name);
    return v != nullptr && std::strcmp(v, value) == 0;
}

// ---- errors -------------------------------------------------------------------------------------------------------

struct ErrorText {
    CUresult code;
    const char* name;
    const char* text;
};

#define FAKE_ERR(code, text) {code, #code, text}
const ErrorText ERRORS[] = {
    FAKE_ERR(CUDA_SUCCESS, "no error"),
    FAKE_ERR(CUDA_ERROR_INVALID_VALUE, "invalid argument"),
    FAKE_ERR(CUDA_ERROR_OUT_OF_MEMORY, "out of memory"),
    FAKE_ERR(CUDA_ERROR_NOT_INITIALIZED, "initialization error"),
    FAKE_ERR(CUDA_ERROR_DEINITIALIZED, "driver shutting down"),
    FAKE_ERR(CUDA_ERROR_STUB_LIBRARY, "CUDA driver is a stub library"),
    FAKE_ERR(CUDA_ERROR_NO_DEVICE, "no CUDA-capable device is detected"),
    FAKE_ERR(CUDA_ERROR_INVALID_DEVICE, "invalid device ordinal"),
    FAKE_ERR(CUDA_ERROR_INVALID_IMAGE, "device kernel image is invalid"),
    FAKE_ERR(CUDA_ERROR_INVALID_CONTEXT, "invalid device context"),
    FAKE_ERR(CUDA_ERROR_CONTEXT_IS_DESTROYED, "context is destroyed"),
    FAKE_ERR(CUDA_ERROR_NO_BINARY_FOR_GPU, "no kernel image is available for execution on the device"),
    FAKE_ERR(CUDA_ERROR_INVALID_PTX, "a PTX JIT compilation failed"),
    FAKE_ERR(CUDA_ERROR_UNSUPPORTED_PTX_VERSION, "the provided PTX was compiled with an unsupported toolchain."),
    FAKE_ERR(CUDA_ERROR_JIT_COMPILER_NOT_FOUND, "PTX JIT compiler library not found"),
    FAKE_ERR(CUDA_ERROR_INVALID_HANDLE, "invalid resource handle"),
    FAKE_ERR(CUDA_ERROR_NOT_FOUND, "named symbol not found"),
    FAKE_ERR(CUDA_ERROR_NOT_READY, "device not ready"),
    FAKE_ERR(CUDA_ERROR_ILLEGAL_ADDRESS, "an illegal memory access was encountered"),
    FAKE_ERR(CUDA_ERROR_LAUNCH_OUT_OF_RESOURCES, "too many resources requested for launch"),
    FAKE_ERR(CUDA_ERROR_LAUNCH_FAILED, "unspecified launch failure"),
    FAKE_ERR(CUDA_ERROR_NOT_SUPPORTED, "operation not supported"),
    FAKE_ERR(CUDA_ERROR_SYSTEM_DRIVER_MISMATCH, "system has unsupported display driver / cuda driver combination"),
    FAKE_ERR(CUDA_ERROR_COMPAT_NOT_SUPPORTED_ON_DEVICE,
             "forward compatibility was attempted on non supported HW"),
    FAKE_ERR(CUDA_ERROR_UNKNOWN, "unknown error"),
};
#undef FAKE_ERR

const ErrorText* error_text(CUresult r) {
    for (const ErrorText& e : ERRORS) {
        if (e.code == r) {
            return &e;
        }
    }
    return nullptr;
}

const char* error_name(CUresult r) {
    const ErrorText* e = error_text(r);
    return e != nullptr ? e->name : "CUDA_ERROR_(unnamed)";
}

// Every error a call returns goes through here: an "error" log line naming the call.
CUresult fail(const char* call, CUresult r, const std::string& why) {
    fake_log::line("error %s -> %s (%d): %s", call, error_name(r), (int) r, why.c_str());
    return r;
}

void fault(const std::string& what) {
    {
        std::lock_guard<std::mutex> lock(g_mu);
        g_faults++;
    }
    fake_log::line("FAULT %s", what.c_str());
    int expected = CUDA_SUCCESS;
    g_sticky.compare_exchange_strong(expected, CUDA_ERROR_ILLEGAL_ADDRESS);
}

std::string hex(uint64_t v) {
    char b[32];
    std::snprintf(b, sizeof b, "0x%llx", (unsigned long long) v);
    return b;
}

// ---- memory -------------------------------------------------------------------------------------------------------

Allocation make_allocation(size_t bytes) {
    size_t raw = (bytes + 2 * GUARD + 255) / 256 * 256;
    unsigned char* p = static_cast<unsigned char*>(std::aligned_alloc(256, raw));
    if (p == nullptr) {
        return Allocation{0, 0, nullptr, 0};
    }
    std::memset(p, GUARD_BYTE, GUARD);
    std::memset(p + GUARD, FRESH_BYTE, bytes);
    std::memset(p + GUARD + bytes, GUARD_BYTE, raw - GUARD - bytes);
    return Allocation{(uintptr_t) (p + GUARD), bytes, p, raw};
}

bool guards_intact(const Allocation& a) {
    for (size_t i = 0; i < GUARD; i++) {
        if (a.raw[i] != GUARD_BYTE) {
            return false;
        }
    }
    for (size_t i = GUARD + a.size; i < a.rawSize; i++) {
        if (a.raw[i] != GUARD_BYTE) {
            return false;
        }
    }
    return true;
}

// The allocation of map m holding [p, p + n), or null. Caller holds g_mu.
const Allocation* find_in(const std::map<uintptr_t, Allocation>& m, uintptr_t p, size_t n) {
    auto it = m.upper_bound(p);
    if (it == m.begin()) {
        return nullptr;
    }
    --it;
    const Allocation& a = it->second;
    if (p >= a.base && p - a.base <= a.size && n <= a.size - (p - a.base)) {
        return &a;
    }
    return nullptr;
}

bool device_range(uintptr_t p, size_t n) {
    std::lock_guard<std::mutex> lock(g_mu);
    return find_in(g_device, p, n) != nullptr;
}

bool pinned_range(uintptr_t p, size_t n) {
    std::lock_guard<std::mutex> lock(g_mu);
    return find_in(g_pinned, p, n) != nullptr;
}

void check_all_guards(const char* when) {
    std::vector<std::string> bad;
    {
        std::lock_guard<std::mutex> lock(g_mu);
        for (auto& [base, a] : g_device) {
            if (!guards_intact(a)) {
                bad.push_back("device allocation " + hex(base) + " (" + std::to_string(a.size) + " bytes)");
                std::memset(a.raw, GUARD_BYTE, GUARD); // report once
                std::memset(a.raw + GUARD + a.size, GUARD_BYTE, a.rawSize - GUARD - a.size);
            }
        }
        for (auto& [base, a] : g_pinned) {
            if (!guards_intact(a)) {
                bad.push_back("pinned host allocation " + hex(base) + " (" + std::to_string(a.size) + " bytes)");
                std::memset(a.raw, GUARD_BYTE, GUARD);
                std::memset(a.raw + GUARD + a.size, GUARD_BYTE, a.rawSize - GUARD - a.size);
            }
        }
    }
    for (const std::string& b : bad) {
        fault("a write past the bounds of " + b + ", found " + when);
    }
}

// ---- streams ------------------------------------------------------------------------------------------------------

long stream_delay_us() {
    static const long d = std::getenv("FAKE_CUDA_STREAM_DELAY_US") != nullptr
                              ? std::atol(std::getenv("FAKE_CUDA_STREAM_DELAY_US")) : 0;
    return d;
}

void worker_loop(CUstream_st* s) {
    for (;;) {
        std::pair<uint64_t, std::function<void()>> task;
        {
            std::unique_lock<std::mutex> lock(s->mu);
            s->cv.wait(lock, [s] { return s->stop || !s->queue.empty(); });
            if (s->queue.empty()) {
                return; // stopped and drained
            }
            task = std::move(s->queue.front());
            s->queue.pop_front();
        }
        if (stream_delay_us() > 0) {
            std::this_thread::sleep_for(std::chrono::microseconds(stream_delay_us()));
        }
        if (g_sticky.load() == CUDA_SUCCESS) { // after a fault a GPU context runs nothing more
            std::lock_guard<std::mutex> exec(g_exec_mu);
            task.second();
        }
        {
            std::lock_guard<std::mutex> lock(s->mu);
            s->completed = task.first;
        }
        s->cv.notify_all();
    }
}

CUstream_st* new_stream(unsigned flags) {
    CUstream_st* s = new CUstream_st();
    s->flags = flags;
    s->worker = std::thread(worker_loop, s);
    return s;
}

uint64_t enqueue(CUstream_st* s, std::function<void()> fn) {
    uint64_t seq;
    {
        std::lock_guard<std::mutex> lock(s->mu);
        seq = ++s->enqueued;
        s->queue.emplace_back(seq, std::move(fn));
    }
    s->cv.notify_all();
    return seq;
}

void wait_for(CUstream_st* s, uint64_t seq) {
    std::unique_lock<std::mutex> lock(s->mu);
    s->cv.wait(lock, [s, seq] { return s->completed >= seq; });
}

void drain(CUstream_st* s) {
    uint64_t seq;
    {
        std::lock_guard<std::mutex> lock(s->mu);
        seq = s->enqueued;
    }
    wait_for(s, seq);
}

void drain_all() {
    std::vector<CUstream_st*> all;
    {
        std::lock_guard<std::mutex> lock(g_mu);
        all.assign(g_streams.begin(), g_streams.end());
        if (g_default_stream != nullptr) {
            all.push_back(g_default_stream);
        }
    }
    for (CUstream_st* s : all) {
        drain(s);
    }
}

void stop_stream(CUstream_st* s) {
    {
        std::lock_guard<std::mutex> lock(s->mu);
        s->stop = true;
    }
    s->cv.notify_all();
    s->worker.join();
    delete s;
}

// The stream a call names: a live stream, or the legacy default stream for null; null when hStream is not a stream.
CUstream_st* stream_of(CUstream hStream) {
    std::lock_guard<std::mutex> lock(g_mu);
    if (hStream == nullptr) {
        if (g_default_stream == nullptr) {
            g_default_stream = new_stream(0);
        }
        return g_default_stream;
    }
    return g_streams.count(hStream) != 0 ? hStream : nullptr;
}

// ---- the context --------------------------------------------------------------------------------------------------

// CUDA_SUCCESS when the calling thread may use the device: initialized, a live context current, no sticky error.
CUresult need_context(const char* call) {
    if (!g_initialized.load()) {
        return fail(call, CUDA_ERROR_NOT_INITIALIZED, "cuInit has not been called");
    }
    if (t_current == nullptr) {
        return fail(call, CUDA_ERROR_INVALID_CONTEXT, "no context is current on this thread (cuCtxSetCurrent)");
    }
    if (!t_current->alive) {
        return fail(call, CUDA_ERROR_CONTEXT_IS_DESTROYED, "the current context was released");
    }
    int sticky = g_sticky.load();
    if (sticky != CUDA_SUCCESS) {
        return fail(call, (CUresult) sticky, "the context has a sticky error from an earlier fault");
    }
    return CUDA_SUCCESS;
}

#define NEED_CONTEXT(call)                                                                                         \
    do {                                                                                                           \
        CUresult need_ = need_context(call);                                                                       \
        if (need_ != CUDA_SUCCESS) {                                                                               \
            return need_;                                                                                          \
        }                                                                                                          \
    } while (0)

void destroy_primary_context() {
    drain_all();
    check_all_guards("when the context was destroyed");
    std::vector<CUstream_st*> streams;
    size_t leakedBytes = 0;
    long leaked = 0, modules = 0, events = 0;
    {
        std::lock_guard<std::mutex> lock(g_mu);
        for (auto& [base, a] : g_device) {
            leakedBytes += a.size;
            leaked++;
            std::free(a.raw);
        }
        g_device.clear();
        g_used = 0;
        for (CUmod_st* m : g_modules) {
            for (CUfunc_st* f : m->functions) {
                g_functions.erase(f);
                delete f;
            }
            delete m;
            modules++;
        }
        g_modules.clear();
        streams.assign(g_streams.begin(), g_streams.end());
        g_streams.clear();
        events = (long) g_events.size();
        for (CUevent_st* e : g_events) {
            e->stream = nullptr;
        }
        g_primary.alive = false;
    }
    for (CUstream_st* s : streams) {
        stop_stream(s);
    }
    std::string counts;
    {
        std::lock_guard<std::mutex> lock(g_mu);
        for (auto& [name, n] : g_launches) {
            counts += " " + name + "=" + std::to_string(n);
        }
    }
    fake_log::line("context destroyed: %ld device allocations (%zu bytes) still allocated, %ld modules still loaded, "
                   "%zu streams and %ld events still alive, %ld faults; launches:%s",
                   leaked, leakedBytes, modules, streams.size(), events, g_faults, counts.c_str());
}

// ---- modules ------------------------------------------------------------------------------------------------------

const FakeKernel* table_kernel(const std::string& name) {
    int n = 0;
    const FakeKernel* t = fake_kernels(&n);
    for (int i = 0; i < n; i++) {
        if (name == t[i].name) {
            return &t[i];
        }
    }
    return nullptr;
}

// The kernels named by a fatbin's ".text.NAME" sections (ELF section names of its cubins), in order, unique.
std::vector<std::string> fatbin_kernels(const unsigned char* image, size_t size) {
    std::vector<std::string> names;
    static const char PREFIX[] = ".text.";
    const size_t plen = sizeof PREFIX - 1;
    for (size_t i = 0; i + plen < size; i++) {
        if (std::memcmp(image + i, PREFIX, plen) != 0) {
            continue;
        }
        size_t j = i + plen;
        std::string name;
        while (j < size && (std::isalnum(image[j]) || image[j] == '_')) {
            name.push_back((char) image[j]);
            j++;
        }
        if (j < size && image[j] == '\0' && !name.empty()
            && std::find(names.begin(), names.end(), name) == names.end()) {
            names.push_back(name);
        }
    }
    return names;
}

CUfunc_st* new_function(const FakeKernel* k, CUmod_st* m) {
    CUfunc_st* f = new CUfunc_st();
    f->kernel = k;
    f->module = m;
    size_t offset = 0;
    for (int i = 0; i < k->params; i++) {
        offset = (offset + k->aligns[i] - 1) / k->aligns[i] * k->aligns[i];
        f->offsets.push_back(offset);
        offset += k->sizes[i];
    }
    f->paramBytes = offset;
    return f;
}

} // namespace

// ---------------------------------------------------------------------------------------------------------------
// hooks for the fake cuBLAS

extern "C" __attribute__((visibility("default"))) int fakecuda_enqueue(void* stream, void (*fn)(void*), void* arg) {
    CUstream_st* s = stream_of(static_cast<CUstream>(stream));
    if (s == nullptr) {
        return fail("fakecuda_enqueue", CUDA_ERROR_INVALID_HANDLE, "not a live stream: " + hex((uintptr_t) stream));
    }
    enqueue(s, [fn, arg] { fn(arg); });
    return CUDA_SUCCESS;
}

extern "C" __attribute__((visibility("default"))) int fakecuda_device_range_ok(uint64_t address, uint64_t bytes) {
    return device_range((uintptr_t) address, (size_t) bytes) ? 1 : 0;
}

extern "C" __attribute__((visibility("default"))) void fakecuda_fault(const char* what) {
    fault(what);
}

extern "C" __attribute__((visibility("default"))) int fakecuda_context_current(void) {
    return g_initialized.load() && t_current != nullptr && t_current->alive ? 1 : 0;
}

extern "C" __attribute__((visibility("default"))) int fakecuda_stream_valid(void* stream) {
    if (stream == nullptr) {
        return 1;
    }
    std::lock_guard<std::mutex> lock(g_mu);
    return g_streams.count(static_cast<CUstream>(stream)) != 0 ? 1 : 0;
}

extern "C" __attribute__((visibility("default"))) void fakecuda_drain(void) {
    drain_all();
}

// ---------------------------------------------------------------------------------------------------------------
// the driver API

extern "C" {

CUresult CUDAAPI cuGetErrorName(CUresult error, const char** pStr) {
    if (pStr == nullptr) {
        return CUDA_ERROR_INVALID_VALUE;
    }
    const ErrorText* e = error_text(error);
    *pStr = e != nullptr ? e->name : nullptr;
    return e != nullptr ? CUDA_SUCCESS : CUDA_ERROR_INVALID_VALUE;
}

CUresult CUDAAPI cuGetErrorString(CUresult error, const char** pStr) {
    if (pStr == nullptr) {
        return CUDA_ERROR_INVALID_VALUE;
    }
    const ErrorText* e = error_text(error);
    *pStr = e != nullptr ? e->text : nullptr;
    return e != nullptr ? CUDA_SUCCESS : CUDA_ERROR_INVALID_VALUE;
}

CUresult CUDAAPI cuInit(unsigned int Flags) {
    if (Flags != 0) {
        return fail("cuInit", CUDA_ERROR_INVALID_VALUE, "Flags must be 0, got " + std::to_string(Flags));
    }
    static std::atomic<bool> first{true};
    const char* forced = std::getenv("FAKE_CUDA_INIT_RESULT");
    if (forced != nullptr && *forced != '\0' && first.exchange(false)) {
        // the first cuInit answers as a machine without a usable GPU would (e.g. 100, CUDA_ERROR_NO_DEVICE)
        return fail("cuInit", (CUresult) std::atoi(forced), "FAKE_CUDA_INIT_RESULT");
    }
    if (!g_initialized.exchange(true)) {
        fake_log::line("note cuInit: %s, sm_%d%d, %zu bytes", DEVICE_NAME, CC_MAJOR, CC_MINOR, capacity());
    }
    return CUDA_SUCCESS;
}

CUresult CUDAAPI cuDeviceGetCount(int* count) {
    if (!g_initialized.load()) {
        return fail("cuDeviceGetCount", CUDA_ERROR_NOT_INITIALIZED, "cuInit has not been called");
    }
    if (count == nullptr) {
        return fail("cuDeviceGetCount", CUDA_ERROR_INVALID_VALUE, "count is null");
    }
    *count = DEVICE_COUNT;
    return CUDA_SUCCESS;
}

CUresult CUDAAPI cuDeviceGet(CUdevice* device, int ordinal) {
    if (!g_initialized.load()) {
        return fail("cuDeviceGet", CUDA_ERROR_NOT_INITIALIZED, "cuInit has not been called");
    }
    if (device == nullptr) {
        return fail("cuDeviceGet", CUDA_ERROR_INVALID_VALUE, "device is null");
    }
    if (ordinal < 0 || ordinal >= DEVICE_COUNT) {
        return fail("cuDeviceGet", CUDA_ERROR_INVALID_DEVICE, "ordinal " + std::to_string(ordinal));
    }
    *device = ordinal;
    return CUDA_SUCCESS;
}

CUresult CUDAAPI cuDeviceGetName(char* name, int len, CUdevice dev) {
    if (!g_initialized.load()) {
        return fail("cuDeviceGetName", CUDA_ERROR_NOT_INITIALIZED, "cuInit has not been called");
    }
    if (dev < 0 || dev >= DEVICE_COUNT) {
        return fail("cuDeviceGetName", CUDA_ERROR_INVALID_DEVICE, "device " + std::to_string(dev));
    }
    if (name == nullptr || len <= 0) {
        return fail("cuDeviceGetName", CUDA_ERROR_INVALID_VALUE, "name null or len " + std::to_string(len));
    }
    std::strncpy(name, DEVICE_NAME, (size_t) len - 1);
    name[len - 1] = '\0';
    return CUDA_SUCCESS;
}

CUresult CUDAAPI cuDeviceGetAttribute(int* pi, CUdevice_attribute attrib, CUdevice dev) {
    if (!g_initialized.load()) {
        return fail("cuDeviceGetAttribute", CUDA_ERROR_NOT_INITIALIZED, "cuInit has not been called");
    }
    if (dev < 0 || dev >= DEVICE_COUNT) {
        return fail("cuDeviceGetAttribute", CUDA_ERROR_INVALID_DEVICE, "device " + std::to_string(dev));
    }
    if (pi == nullptr) {
        return fail("cuDeviceGetAttribute", CUDA_ERROR_INVALID_VALUE, "pi is null");
    }
    int v;
    switch (attrib) {
        case CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR: v = CC_MAJOR; break;
        case CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR: v = CC_MINOR; break;
        case CU_DEVICE_ATTRIBUTE_MAX_THREADS_PER_BLOCK: v = 1024; break;
        case CU_DEVICE_ATTRIBUTE_MAX_BLOCK_DIM_X: v = 1024; break;
        case CU_DEVICE_ATTRIBUTE_MAX_BLOCK_DIM_Y: v = 1024; break;
        case CU_DEVICE_ATTRIBUTE_MAX_BLOCK_DIM_Z: v = 64; break;
        case CU_DEVICE_ATTRIBUTE_MAX_GRID_DIM_X: v = 2147483647; break;
        case CU_DEVICE_ATTRIBUTE_MAX_GRID_DIM_Y: v = 65535; break;
        case CU_DEVICE_ATTRIBUTE_MAX_GRID_DIM_Z: v = 65535; break;
        case CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK: v = DEFAULT_SHARED; break;
        case CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK_OPTIN: v = SHARED_OPTIN; break;
        case CU_DEVICE_ATTRIBUTE_WARP_SIZE: v = 32; break;
        case CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT: v = 132; break;
        case CU_DEVICE_ATTRIBUTE_MAX_PITCH: v = (int) MAX_PITCH; break;
        case CU_DEVICE_ATTRIBUTE_TOTAL_CONSTANT_MEMORY: v = 65536; break;
        case CU_DEVICE_ATTRIBUTE_MAX_REGISTERS_PER_BLOCK: v = 65536; break;
        case CU_DEVICE_ATTRIBUTE_L2_CACHE_SIZE: v = 50 << 20; break;
        case CU_DEVICE_ATTRIBUTE_MAX_THREADS_PER_MULTIPROCESSOR: v = 2048; break;
        case CU_DEVICE_ATTRIBUTE_UNIFIED_ADDRESSING: v = 1; break;
        case CU_DEVICE_ATTRIBUTE_INTEGRATED: v = 0; break;
        case CU_DEVICE_ATTRIBUTE_CONCURRENT_KERNELS: v = 1; break;
        case CU_DEVICE_ATTRIBUTE_ASYNC_ENGINE_COUNT: v = 2; break;
        default:
            return fail("cuDeviceGetAttribute", CUDA_ERROR_INVALID_VALUE,
                        "attribute " + std::to_string((int) attrib) + " is not emulated by the fake driver");
    }
    *pi = v;
    return CUDA_SUCCESS;
}

CUresult CUDAAPI cuDeviceTotalMem(size_t* bytes, CUdevice dev) {
    if (!g_initialized.load()) {
        return fail("cuDeviceTotalMem_v2", CUDA_ERROR_NOT_INITIALIZED, "cuInit has not been called");
    }
    if (dev < 0 || dev >= DEVICE_COUNT) {
        return fail("cuDeviceTotalMem_v2", CUDA_ERROR_INVALID_DEVICE, "device " + std::to_string(dev));
    }
    if (bytes == nullptr) {
        return fail("cuDeviceTotalMem_v2", CUDA_ERROR_INVALID_VALUE, "bytes is null");
    }
    *bytes = capacity();
    return CUDA_SUCCESS;
}

CUresult CUDAAPI cuDevicePrimaryCtxRetain(CUcontext* pctx, CUdevice dev) {
    if (!g_initialized.load()) {
        return fail("cuDevicePrimaryCtxRetain", CUDA_ERROR_NOT_INITIALIZED, "cuInit has not been called");
    }
    if (dev < 0 || dev >= DEVICE_COUNT) {
        return fail("cuDevicePrimaryCtxRetain", CUDA_ERROR_INVALID_DEVICE, "device " + std::to_string(dev));
    }
    if (pctx == nullptr) {
        return fail("cuDevicePrimaryCtxRetain", CUDA_ERROR_INVALID_VALUE, "pctx is null");
    }
    std::lock_guard<std::mutex> lock(g_mu);
    if (g_primary.refs++ == 0) {
        g_primary.alive = true;
        fake_log::line("context created (primary context of device %d)", dev);
    }
    fake_log::line("context retained refs=%d", g_primary.refs);
    *pctx = &g_primary;
    return CUDA_SUCCESS;
}

CUresult CUDAAPI cuDevicePrimaryCtxRelease(CUdevice dev) {
    if (!g_initialized.load()) {
        return fail("cuDevicePrimaryCtxRelease_v2", CUDA_ERROR_NOT_INITIALIZED, "cuInit has not been called");
    }
    if (dev < 0 || dev >= DEVICE_COUNT) {
        return fail("cuDevicePrimaryCtxRelease_v2", CUDA_ERROR_INVALID_DEVICE, "device " + std::to_string(dev));
    }
    bool destroy;
    {
        std::lock_guard<std::mutex> lock(g_mu);
        if (g_primary.refs <= 0) {
            return fail("cuDevicePrimaryCtxRelease_v2", CUDA_ERROR_INVALID_CONTEXT,
                        "the primary context is not retained (released more often than retained)");
        }
        destroy = --g_primary.refs == 0;
        fake_log::line("context released refs=%d streams=%zu events=%zu", g_primary.refs, g_streams.size(),
                       g_events.size());
    }
    if (destroy) {
        destroy_primary_context();
    }
    return CUDA_SUCCESS;
}

CUresult CUDAAPI cuCtxSetCurrent(CUcontext ctx) {
    if (!g_initialized.load()) {
        return fail("cuCtxSetCurrent", CUDA_ERROR_NOT_INITIALIZED, "cuInit has not been called");
    }
    if (ctx != nullptr && (ctx != &g_primary || !g_primary.alive)) {
        return fail("cuCtxSetCurrent", CUDA_ERROR_INVALID_CONTEXT, "not a live context: " + hex((uintptr_t) ctx));
    }
    t_current = ctx;
    return CUDA_SUCCESS;
}

CUresult CUDAAPI cuStreamCreate(CUstream* phStream, unsigned int Flags) {
    NEED_CONTEXT("cuStreamCreate");
    if (phStream == nullptr) {
        return fail("cuStreamCreate", CUDA_ERROR_INVALID_VALUE, "phStream is null");
    }
    if ((Flags & ~(unsigned) CU_STREAM_NON_BLOCKING) != 0) {
        return fail("cuStreamCreate", CUDA_ERROR_INVALID_VALUE, "Flags " + std::to_string(Flags));
    }
    CUstream_st* s = new_stream(Flags);
    std::lock_guard<std::mutex> lock(g_mu);
    g_streams.insert(s);
    *phStream = s;
    return CUDA_SUCCESS;
}

CUresult CUDAAPI cuStreamDestroy(CUstream hStream) {
    NEED_CONTEXT("cuStreamDestroy_v2");
    {
        std::lock_guard<std::mutex> lock(g_mu);
        if (hStream == nullptr || g_streams.erase(hStream) == 0) {
            return fail("cuStreamDestroy_v2", CUDA_ERROR_INVALID_HANDLE,
                        "not a live stream: " + hex((uintptr_t) hStream));
        }
        for (CUevent_st* e : g_events) {
            if (e->stream == hStream) {
                e->stream = nullptr; // its work completes before the stream goes
            }
        }
    }
    stop_stream(hStream); // the queued work completes first, as on a GPU
    return CUDA_SUCCESS;
}

CUresult CUDAAPI cuStreamSynchronize(CUstream hStream) {
    NEED_CONTEXT("cuStreamSynchronize");
    CUstream_st* s = stream_of(hStream);
    if (s == nullptr) {
        return fail("cuStreamSynchronize", CUDA_ERROR_INVALID_HANDLE, "not a live stream: " + hex((uintptr_t) hStream));
    }
    drain(s);
    check_all_guards("at cuStreamSynchronize");
    int sticky = g_sticky.load();
    if (sticky != CUDA_SUCCESS) {
        return fail("cuStreamSynchronize", (CUresult) sticky, "a queued task faulted");
    }
    return CUDA_SUCCESS;
}

CUresult CUDAAPI cuEventCreate(CUevent* phEvent, unsigned int Flags) {
    NEED_CONTEXT("cuEventCreate");
    if (phEvent == nullptr) {
        return fail("cuEventCreate", CUDA_ERROR_INVALID_VALUE, "phEvent is null");
    }
    CUevent_st* e = new CUevent_st();
    e->flags = Flags;
    std::lock_guard<std::mutex> lock(g_mu);
    g_events.insert(e);
    *phEvent = e;
    return CUDA_SUCCESS;
}

CUresult CUDAAPI cuEventRecord(CUevent hEvent, CUstream hStream) {
    NEED_CONTEXT("cuEventRecord");
    CUstream_st* s = stream_of(hStream);
    if (s == nullptr) {
        return fail("cuEventRecord", CUDA_ERROR_INVALID_HANDLE, "not a live stream: " + hex((uintptr_t) hStream));
    }
    std::lock_guard<std::mutex> lock(g_mu);
    if (g_events.count(hEvent) == 0) {
        return fail("cuEventRecord", CUDA_ERROR_INVALID_HANDLE, "not a live event: " + hex((uintptr_t) hEvent));
    }
    std::lock_guard<std::mutex> slock(s->mu);
    hEvent->stream = s;
    hEvent->seq = s->enqueued;
    return CUDA_SUCCESS;
}

CUresult CUDAAPI cuEventSynchronize(CUevent hEvent) {
    NEED_CONTEXT("cuEventSynchronize");
    CUstream_st* s;
    uint64_t seq;
    {
        std::lock_guard<std::mutex> lock(g_mu);
        if (g_events.count(hEvent) == 0) {
            return fail("cuEventSynchronize", CUDA_ERROR_INVALID_HANDLE,
                        "not a live event: " + hex((uintptr_t) hEvent));
        }
        s = hEvent->stream;
        seq = hEvent->seq;
    }
    if (s != nullptr) {
        wait_for(s, seq);
    }
    int sticky = g_sticky.load();
    return sticky == CUDA_SUCCESS ? CUDA_SUCCESS
                                  : fail("cuEventSynchronize", (CUresult) sticky, "a queued task faulted");
}

CUresult CUDAAPI cuEventDestroy(CUevent hEvent) {
    NEED_CONTEXT("cuEventDestroy_v2");
    std::lock_guard<std::mutex> lock(g_mu);
    if (g_events.erase(hEvent) == 0) {
        return fail("cuEventDestroy_v2", CUDA_ERROR_INVALID_HANDLE, "not a live event: " + hex((uintptr_t) hEvent));
    }
    delete hEvent;
    return CUDA_SUCCESS;
}

// ---- memory -------------------------------------------------------------------------------------------------------

CUresult CUDAAPI cuMemAlloc(CUdeviceptr* dptr, size_t bytesize) {
    NEED_CONTEXT("cuMemAlloc_v2");
    if (dptr == nullptr || bytesize == 0) {
        return fail("cuMemAlloc_v2", CUDA_ERROR_INVALID_VALUE, "dptr null or bytesize 0");
    }
    {
        std::lock_guard<std::mutex> lock(g_mu);
        if (bytesize > capacity() - g_used) {
            return fail("cuMemAlloc_v2", CUDA_ERROR_OUT_OF_MEMORY, std::to_string(bytesize) + " bytes requested, "
                        + std::to_string(capacity() - g_used) + " of " + std::to_string(capacity()) + " free");
        }
    }
    Allocation a = make_allocation(bytesize);
    if (a.raw == nullptr) {
        return fail("cuMemAlloc_v2", CUDA_ERROR_OUT_OF_MEMORY, "the host heap is full");
    }
    std::lock_guard<std::mutex> lock(g_mu);
    g_device[a.base] = a;
    g_used += bytesize;
    *dptr = (CUdeviceptr) a.base;
    return CUDA_SUCCESS;
}

CUresult CUDAAPI cuMemFree(CUdeviceptr dptr) {
    NEED_CONTEXT("cuMemFree_v2");
    drain_all(); // as cuMemFree does: the memory may be in use by queued work
    Allocation a;
    {
        std::lock_guard<std::mutex> lock(g_mu);
        auto it = g_device.find((uintptr_t) dptr);
        if (it == g_device.end()) {
            return fail("cuMemFree_v2", CUDA_ERROR_INVALID_VALUE, "not the start of a live allocation: " + hex(dptr));
        }
        a = it->second;
        g_device.erase(it);
        g_used -= a.size;
    }
    if (!guards_intact(a)) {
        fault("a write past the bounds of device allocation " + hex(a.base) + " (" + std::to_string(a.size)
              + " bytes), found when it was freed");
    }
    std::free(a.raw);
    return CUDA_SUCCESS;
}

CUresult CUDAAPI cuMemGetInfo(size_t* free, size_t* total) {
    NEED_CONTEXT("cuMemGetInfo_v2");
    if (free == nullptr || total == nullptr) {
        return fail("cuMemGetInfo_v2", CUDA_ERROR_INVALID_VALUE, "free or total is null");
    }
    std::lock_guard<std::mutex> lock(g_mu);
    *free = capacity() - g_used;
    *total = capacity();
    return CUDA_SUCCESS;
}

CUresult CUDAAPI cuMemAllocHost(void** pp, size_t bytesize) {
    NEED_CONTEXT("cuMemAllocHost_v2");
    if (pp == nullptr || bytesize == 0) {
        return fail("cuMemAllocHost_v2", CUDA_ERROR_INVALID_VALUE, "pp null or bytesize 0");
    }
    Allocation a = make_allocation(bytesize);
    if (a.raw == nullptr) {
        return fail("cuMemAllocHost_v2", CUDA_ERROR_OUT_OF_MEMORY, "the host heap is full");
    }
    std::lock_guard<std::mutex> lock(g_mu);
    g_pinned[a.base] = a;
    *pp = (void*) a.base;
    return CUDA_SUCCESS;
}

CUresult CUDAAPI cuMemFreeHost(void* p) {
    NEED_CONTEXT("cuMemFreeHost");
    drain_all();
    Allocation a;
    {
        std::lock_guard<std::mutex> lock(g_mu);
        auto it = g_pinned.find((uintptr_t) p);
        if (it == g_pinned.end()) {
            return fail("cuMemFreeHost", CUDA_ERROR_INVALID_VALUE,
                        "not the start of a live pinned allocation: " + hex((uintptr_t) p));
        }
        a = it->second;
        g_pinned.erase(it);
    }
    if (!guards_intact(a)) {
        fault("a write past the bounds of pinned host allocation " + hex(a.base) + " (" + std::to_string(a.size)
              + " bytes), found when it was freed");
    }
    std::free(a.raw);
    return CUDA_SUCCESS;
}

// ---- copies -------------------------------------------------------------------------------------------------------

CUresult CUDAAPI cuMemcpyHtoDAsync(CUdeviceptr dstDevice, const void* srcHost, size_t ByteCount, CUstream hStream) {
    NEED_CONTEXT("cuMemcpyHtoDAsync_v2");
    CUstream_st* s = stream_of(hStream);
    if (s == nullptr) {
        return fail("cuMemcpyHtoDAsync_v2", CUDA_ERROR_INVALID_HANDLE, "not a live stream");
    }
    if (ByteCount == 0) {
        return CUDA_SUCCESS;
    }
    if (!device_range((uintptr_t) dstDevice, ByteCount)) {
        fault("cuMemcpyHtoDAsync_v2 of " + std::to_string(ByteCount) + " bytes to " + hex(dstDevice)
              + ": not inside one device allocation");
        return fail("cuMemcpyHtoDAsync_v2", CUDA_ERROR_INVALID_VALUE, "destination outside the allocations");
    }
    if (!pinned_range((uintptr_t) srcHost, ByteCount)) {
        fault("cuMemcpyHtoDAsync_v2 of " + std::to_string(ByteCount) + " bytes from host " + hex((uintptr_t) srcHost)
              + ": not inside one pinned (cuMemAllocHost) buffer, so not asynchronous, or past its end");
        return fail("cuMemcpyHtoDAsync_v2", CUDA_ERROR_INVALID_VALUE, "source outside the pinned buffers");
    }
    auto snapshot = std::make_shared<std::vector<unsigned char>>((const unsigned char*) srcHost,
                                                                  (const unsigned char*) srcHost + ByteCount);
    enqueue(s, [dstDevice, srcHost, ByteCount, snapshot] {
        if (std::memcmp(srcHost, snapshot->data(), ByteCount) != 0) {
            fault("cuMemcpyHtoDAsync_v2 of " + std::to_string(ByteCount) + " bytes from pinned " +
                  hex((uintptr_t) srcHost) + ": the host rewrote the buffer after queueing the copy and before the "
                  "stream ran it (a staging buffer reused without waiting for its event)");
        }
        std::memcpy((void*) dstDevice, srcHost, ByteCount);
    });
    return CUDA_SUCCESS;
}

CUresult CUDAAPI cuMemcpyDtoHAsync(void* dstHost, CUdeviceptr srcDevice, size_t ByteCount, CUstream hStream) {
    NEED_CONTEXT("cuMemcpyDtoHAsync_v2");
    CUstream_st* s = stream_of(hStream);
    if (s == nullptr) {
        return fail("cuMemcpyDtoHAsync_v2", CUDA_ERROR_INVALID_HANDLE, "not a live stream");
    }
    if (ByteCount == 0) {
        return CUDA_SUCCESS;
    }
    if (!device_range((uintptr_t) srcDevice, ByteCount)) {
        fault("cuMemcpyDtoHAsync_v2 of " + std::to_string(ByteCount) + " bytes from " + hex(srcDevice)
              + ": not inside one device allocation");
        return fail("cuMemcpyDtoHAsync_v2", CUDA_ERROR_INVALID_VALUE, "source outside the allocations");
    }
    if (!pinned_range((uintptr_t) dstHost, ByteCount)) {
        fault("cuMemcpyDtoHAsync_v2 of " + std::to_string(ByteCount) + " bytes to host " + hex((uintptr_t) dstHost)
              + ": not inside one pinned (cuMemAllocHost) buffer, or past its end");
        return fail("cuMemcpyDtoHAsync_v2", CUDA_ERROR_INVALID_VALUE, "destination outside the pinned buffers");
    }
    // until the copy runs, the destination's contents are undefined: make them NaN, so a host that reads it before
    // synchronizing sees it
    std::memset(dstHost, FRESH_BYTE, ByteCount);
    enqueue(s, [dstHost, srcDevice, ByteCount] { std::memcpy(dstHost, (const void*) srcDevice, ByteCount); });
    return CUDA_SUCCESS;
}

CUresult CUDAAPI cuMemcpyDtoDAsync(CUdeviceptr dstDevice, CUdeviceptr srcDevice, size_t ByteCount, CUstream hStream) {
    NEED_CONTEXT("cuMemcpyDtoDAsync_v2");
    CUstream_st* s = stream_of(hStream);
    if (s == nullptr) {
        return fail("cuMemcpyDtoDAsync_v2", CUDA_ERROR_INVALID_HANDLE, "not a live stream");
    }
    if (ByteCount == 0) {
        return CUDA_SUCCESS;
    }
    if (!device_range((uintptr_t) srcDevice, ByteCount) || !device_range((uintptr_t) dstDevice, ByteCount)) {
        fault("cuMemcpyDtoDAsync_v2 of " + std::to_string(ByteCount) + " bytes " + hex(srcDevice) + " -> "
              + hex(dstDevice) + ": not inside device allocations");
        return fail("cuMemcpyDtoDAsync_v2", CUDA_ERROR_INVALID_VALUE, "outside the allocations");
    }
    if (srcDevice < dstDevice + ByteCount && dstDevice < srcDevice + ByteCount) {
        fault("cuMemcpyDtoDAsync_v2 of " + std::to_string(ByteCount) + " bytes " + hex(srcDevice) + " -> "
              + hex(dstDevice) + ": the ranges overlap (undefined on a GPU)");
    }
    enqueue(s, [dstDevice, srcDevice, ByteCount] {
        std::memmove((void*) dstDevice, (const void*) srcDevice, ByteCount);
    });
    return CUDA_SUCCESS;
}

CUresult CUDAAPI cuMemcpy2DAsync(const CUDA_MEMCPY2D* pCopy, CUstream hStream) {
    static const char* CALL = "cuMemcpy2DAsync_v2";
    NEED_CONTEXT(CALL);
    CUstream_st* s = stream_of(hStream);
    if (s == nullptr) {
        return fail(CALL, CUDA_ERROR_INVALID_HANDLE, "not a live stream");
    }
    if (pCopy == nullptr) {
        return fail(CALL, CUDA_ERROR_INVALID_VALUE, "pCopy is null");
    }
    const CUDA_MEMCPY2D d = *pCopy; // the driver reads the descriptor when called
    char desc[768];
    std::snprintf(desc, sizeof desc,
                  "src {x %zu, y %zu, type %d, host %p, device 0x%llx, array %p, pitch %zu} dst {x %zu, y %zu, "
                  "type %d, host %p, device 0x%llx, array %p, pitch %zu} width %zu height %zu",
                  d.srcXInBytes, d.srcY, (int) d.srcMemoryType, d.srcHost, (unsigned long long) d.srcDevice,
                  (void*) d.srcArray, d.srcPitch, d.dstXInBytes, d.dstY, (int) d.dstMemoryType, d.dstHost,
                  (unsigned long long) d.dstDevice, (void*) d.dstArray, d.dstPitch, d.WidthInBytes, d.Height);
    // CudaDriverDevice copies device to device only: both memory types must say so (a host type would make the
    // driver read srcHost / dstHost, which CudaDriverDevice leaves null)
    if (d.srcMemoryType != CU_MEMORYTYPE_DEVICE || d.dstMemoryType != CU_MEMORYTYPE_DEVICE) {
        return fail(CALL, CUDA_ERROR_INVALID_VALUE,
                    std::string("the memory types are not CU_MEMORYTYPE_DEVICE (2) on both sides: ") + desc);
    }
    if (d.WidthInBytes == 0 || d.Height == 0) {
        return CUDA_SUCCESS;
    }
    if (d.Height > 1 && (d.srcPitch < d.srcXInBytes + d.WidthInBytes || d.dstPitch < d.dstXInBytes + d.WidthInBytes)) {
        return fail(CALL, CUDA_ERROR_INVALID_VALUE, std::string("a pitch is below X + width: ") + desc);
    }
    if ((long long) d.srcPitch > MAX_PITCH || (long long) d.dstPitch > MAX_PITCH) {
        return fail(CALL, CUDA_ERROR_INVALID_VALUE,
                    std::string("a pitch exceeds CU_DEVICE_ATTRIBUTE_MAX_PITCH (2^31 - 1): ") + desc);
    }
    const uintptr_t src = (uintptr_t) d.srcDevice + d.srcY * d.srcPitch + d.srcXInBytes;
    const uintptr_t dst = (uintptr_t) d.dstDevice + d.dstY * d.dstPitch + d.dstXInBytes;
    const size_t srcSpan = (d.Height - 1) * d.srcPitch + d.WidthInBytes;
    const size_t dstSpan = (d.Height - 1) * d.dstPitch + d.WidthInBytes;
    if (!device_range(src, srcSpan) || !device_range(dst, dstSpan)) {
        fault(std::string(CALL) + " outside the device allocations: " + desc);
        return fail(CALL, CUDA_ERROR_INVALID_VALUE, std::string("outside the allocations: ") + desc);
    }
    if (src < dst + dstSpan && dst < src + srcSpan) {
        fault(std::string(CALL) + " with overlapping source and destination (undefined on a GPU): " + desc);
    }
    const size_t width = d.WidthInBytes, height = d.Height, sp = d.srcPitch, dp = d.dstPitch;
    enqueue(s, [src, dst, width, height, sp, dp] {
        for (size_t r = 0; r < height; r++) {
            std::memcpy((void*) (dst + r * dp), (const void*) (src + r * sp), width);
        }
    });
    return CUDA_SUCCESS;
}

// ---- modules and kernels ------------------------------------------------------------------------------------------

CUresult CUDAAPI cuModuleLoadData(CUmodule* module, const void* image) {
    static const char* CALL = "cuModuleLoadData";
    NEED_CONTEXT(CALL);
    if (module == nullptr || image == nullptr) {
        return fail(CALL, CUDA_ERROR_INVALID_VALUE, "module or image is null");
    }
    const unsigned char* bytes = static_cast<const unsigned char*>(image);
    uint32_t magic;
    std::memcpy(&magic, bytes, 4);
    std::string kind, name;
    std::vector<std::string> names;
    if (magic == 0xBA55ED50u) {
        uint16_t headerSize;
        uint64_t fatSize;
        std::memcpy(&headerSize, bytes + 6, 2);
        std::memcpy(&fatSize, bytes + 8, 8);
        if (headerSize < 16 || fatSize == 0 || fatSize > (1ULL << 31)) {
            return fail(CALL, CUDA_ERROR_INVALID_IMAGE, "a fatbin header with header size "
                        + std::to_string(headerSize) + " and payload " + std::to_string(fatSize));
        }
        if (env_is("FAKE_CUDA_NO_FATBIN", "1")) {
            fake_log::line("module fatbin refused (FAKE_CUDA_NO_FATBIN=1): %llu bytes",
                           (unsigned long long) (headerSize + fatSize));
            return fail(CALL, CUDA_ERROR_NO_BINARY_FOR_GPU, "FAKE_CUDA_NO_FATBIN=1: the fatbin has no code for sm_90");
        }
        kind = "fatbin";
        names = fatbin_kernels(bytes, headerSize + fatSize);
    } else if (std::memcmp(bytes, "FAKECUBIN\n", 10) == 0) {
        // "FAKECUBIN\narch=sm_90\nname=NAME.cu\nkernels=a,b,c\n\0", from the fake libnvrtc.so.13
        std::string text(reinterpret_cast<const char*>(bytes), strnlen(reinterpret_cast<const char*>(bytes), 1 << 20));
        auto field = [&text](const std::string& key) {
            size_t at = text.find("\n" + key + "=");
            if (at == std::string::npos) {
                return std::string();
            }
            at += key.size() + 2;
            return text.substr(at, text.find('\n', at) - at);
        };
        std::string arch = field("arch");
        char want[16];
        std::snprintf(want, sizeof want, "sm_%d%d", CC_MAJOR, CC_MINOR);
        if (arch != want) {
            return fail(CALL, CUDA_ERROR_NO_BINARY_FOR_GPU, "a CUBIN for " + arch + " on an " + want + " device");
        }
        kind = "cubin";
        name = field("name");
        std::string list = field("kernels");
        for (size_t at = 0; at < list.size();) {
            size_t comma = list.find(',', at);
            if (comma == std::string::npos) {
                comma = list.size();
            }
            if (comma > at) {
                names.push_back(list.substr(at, comma - at));
            }
            at = comma + 1;
        }
    } else {
        return fail(CALL, CUDA_ERROR_INVALID_IMAGE, "neither a fatbin (magic 0xBA55ED50) nor a fake CUBIN: magic "
                    + hex(magic));
    }
    CUmod_st* m = new CUmod_st();
    m->kind = kind;
    std::string missing;
    if (names.empty()) {
        // a fatbin whose cubins are compressed: no names to read; offer every kernel of the table
        fake_log::line("note cuModuleLoadData: no kernel names readable in the %s (compressed?): offering every "
                       "kernel of the fake's table", kind.c_str());
        int n = 0;
        const FakeKernel* t = fake_kernels(&n);
        for (int i = 0; i < n; i++) {
            m->functions.push_back(new_function(&t[i], m));
        }
    } else {
        for (const std::string& k : names) {
            const FakeKernel* fk = table_kernel(k);
            if (fk == nullptr) {
                missing += (missing.empty() ? "" : ", ") + k;
                continue;
            }
            m->functions.push_back(new_function(fk, m));
            if (m->name.empty()) {
                m->name = fk->module;
            }
        }
    }
    if (!missing.empty()) {
        fault("the " + kind + " has kernels with no host build in the fake driver's table (fake_kernels.cpp): "
              + missing);
    }
    if (!name.empty()) {
        m->name = name;
    }
    std::string list;
    for (CUfunc_st* f : m->functions) {
        list += (list.empty() ? "" : ",") + std::string(f->kernel->name);
    }
    std::lock_guard<std::mutex> lock(g_mu);
    g_modules.insert(m);
    for (CUfunc_st* f : m->functions) {
        g_functions.insert(f);
    }
    fake_log::line("module loaded kind=%s module=%s kernels=%s", kind.c_str(), m->name.c_str(), list.c_str());
    *module = m;
    return CUDA_SUCCESS;
}

CUresult CUDAAPI cuModuleUnload(CUmodule hmod) {
    NEED_CONTEXT("cuModuleUnload");
    drain_all();
    std::lock_guard<std::mutex> lock(g_mu);
    if (g_modules.erase(hmod) == 0) {
        return fail("cuModuleUnload", CUDA_ERROR_INVALID_HANDLE, "not a loaded module: " + hex((uintptr_t) hmod));
    }
    for (CUfunc_st* f : hmod->functions) {
        g_functions.erase(f);
        delete f;
    }
    fake_log::line("module unloaded module=%s", hmod->name.c_str());
    delete hmod;
    return CUDA_SUCCESS;
}

CUresult CUDAAPI cuModuleGetFunction(CUfunction* hfunc, CUmodule hmod, const char* name) {
    NEED_CONTEXT("cuModuleGetFunction");
    if (hfunc == nullptr || name == nullptr) {
        return fail("cuModuleGetFunction", CUDA_ERROR_INVALID_VALUE, "hfunc or name is null");
    }
    std::lock_guard<std::mutex> lock(g_mu);
    if (g_modules.count(hmod) == 0) {
        return fail("cuModuleGetFunction", CUDA_ERROR_INVALID_HANDLE, "not a loaded module: " + hex((uintptr_t) hmod));
    }
    for (CUfunc_st* f : hmod->functions) {
        if (std::strcmp(f->kernel->name, name) == 0) {
            *hfunc = f;
            return CUDA_SUCCESS;
        }
    }
    return fail("cuModuleGetFunction", CUDA_ERROR_NOT_FOUND,
                std::string("module ") + hmod->name + " has no kernel " + name);
}

CUresult CUDAAPI cuFuncGetParamInfo(CUfunction func, size_t paramIndex, size_t* paramOffset, size_t* paramSize) {
    NEED_CONTEXT("cuFuncGetParamInfo");
    std::lock_guard<std::mutex> lock(g_mu);
    if (g_functions.count(func) == 0) {
        return fail("cuFuncGetParamInfo", CUDA_ERROR_INVALID_HANDLE, "not a live function");
    }
    if (paramIndex >= (size_t) func->kernel->params) {
        return CUDA_ERROR_INVALID_VALUE; // past the last parameter: how callers find the count (no error line)
    }
    if (paramOffset != nullptr) {
        *paramOffset = func->offsets[paramIndex];
    }
    if (paramSize != nullptr) {
        *paramSize = func->kernel->sizes[paramIndex];
    }
    return CUDA_SUCCESS;
}

CUresult CUDAAPI cuFuncSetAttribute(CUfunction hfunc, CUfunction_attribute attrib, int value) {
    NEED_CONTEXT("cuFuncSetAttribute");
    std::lock_guard<std::mutex> lock(g_mu);
    if (g_functions.count(hfunc) == 0) {
        return fail("cuFuncSetAttribute", CUDA_ERROR_INVALID_HANDLE, "not a live function");
    }
    switch (attrib) {
        case CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES:
            if (value < 0 || value > SHARED_OPTIN) {
                return fail("cuFuncSetAttribute", CUDA_ERROR_INVALID_VALUE,
                            "MAX_DYNAMIC_SHARED_SIZE_BYTES " + std::to_string(value) + " beyond the opt-in limit "
                            + std::to_string(SHARED_OPTIN));
            }
            hfunc->maxDynamicShared = value;
            fake_log::line("note cuFuncSetAttribute %s MAX_DYNAMIC_SHARED_SIZE_BYTES=%d", hfunc->kernel->name, value);
            return CUDA_SUCCESS;
        case CU_FUNC_ATTRIBUTE_PREFERRED_SHARED_MEMORY_CARVEOUT:
            return CUDA_SUCCESS;
        default:
            return fail("cuFuncSetAttribute", CUDA_ERROR_INVALID_VALUE,
                        "attribute " + std::to_string((int) attrib) + " is not emulated");
    }
}

CUresult CUDAAPI cuLaunchKernel(CUfunction f, unsigned int gridDimX, unsigned int gridDimY, unsigned int gridDimZ,
                                unsigned int blockDimX, unsigned int blockDimY, unsigned int blockDimZ,
                                unsigned int sharedMemBytes, CUstream hStream, void** kernelParams, void** extra) {
    static const char* CALL = "cuLaunchKernel";
    NEED_CONTEXT(CALL);
    const FakeKernel* k;
    std::vector<size_t> offsets;
    size_t paramBytes;
    int maxShared;
    {
        std::lock_guard<std::mutex> lock(g_mu);
        if (g_functions.count(f) == 0) {
            return fail(CALL, CUDA_ERROR_INVALID_HANDLE, "not a live function: " + hex((uintptr_t) f));
        }
        k = f->kernel;
        offsets = f->offsets;
        paramBytes = f->paramBytes;
        maxShared = f->maxDynamicShared;
    }
    CUstream_st* s = stream_of(hStream);
    if (s == nullptr) {
        return fail(CALL, CUDA_ERROR_INVALID_HANDLE, "not a live stream");
    }
    char geometry[160];
    std::snprintf(geometry, sizeof geometry, "grid (%u, %u, %u) block (%u, %u, %u) shared %u", gridDimX, gridDimY,
                  gridDimZ, blockDimX, blockDimY, blockDimZ, sharedMemBytes);
    const unsigned long long threads = (unsigned long long) blockDimX * blockDimY * blockDimZ;
    if (gridDimX == 0 || gridDimY == 0 || gridDimZ == 0 || threads == 0 || gridDimX > 2147483647u
        || gridDimY > 65535u || gridDimZ > 65535u || blockDimX > 1024 || blockDimY > 1024 || blockDimZ > 64
        || threads > 1024) {
        return fail(CALL, CUDA_ERROR_INVALID_VALUE, std::string(k->name) + ": " + geometry + " outside CUDA's limits");
    }
    if (threads > (unsigned long long) k->maxThreads) {
        return fail(CALL, CUDA_ERROR_INVALID_VALUE, std::string(k->name) + ": " + geometry + " has more threads than"
                    " its __launch_bounds__ " + std::to_string(k->maxThreads));
    }
    if ((int) sharedMemBytes > maxShared) {
        return fail(CALL, CUDA_ERROR_INVALID_VALUE, std::string(k->name) + ": " + geometry + " asks more dynamic "
                    "shared memory than its CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES "
                    + std::to_string(maxShared));
    }
    if (extra != nullptr) {
        return fail(CALL, CUDA_ERROR_INVALID_VALUE, std::string(k->name) + ": 'extra' is not emulated");
    }
    if (kernelParams == nullptr && k->params > 0) {
        return fail(CALL, CUDA_ERROR_INVALID_VALUE, std::string(k->name) + ": kernelParams is null");
    }
    // the driver copies the argument values at launch
    auto buffer = std::make_shared<std::vector<unsigned char>>(paramBytes + 8);
    std::string args;
    for (int i = 0; i < k->params; i++) {
        if (kernelParams[i] == nullptr) {
            return fail(CALL, CUDA_ERROR_INVALID_VALUE, std::string(k->name) + ": kernelParams[" + std::to_string(i)
                        + "] is null");
        }
        std::memcpy(buffer->data() + offsets[i], kernelParams[i], k->sizes[i]);
        char a[64];
        const unsigned char* p = buffer->data() + offsets[i];
        uint64_t pv = 0;
        int iv = 0;
        float fv = 0;
        switch (k->kinds[i]) {
            case 'p':
                std::memcpy(&pv, p, 8);
                std::snprintf(a, sizeof a, "0x%llx", (unsigned long long) pv);
                break;
            case 'i':
            case 'u':
                std::memcpy(&iv, p, 4);
                std::snprintf(a, sizeof a, k->kinds[i] == 'i' ? "%d" : "%uu", iv);
                break;
            case 'f':
                std::memcpy(&fv, p, 4);
                std::snprintf(a, sizeof a, "%.9gf", (double) fv);
                break;
            default:
                std::snprintf(a, sizeof a, "?");
        }
        args += (i == 0 ? "" : ", ") + std::string(a);
    }
    fake_log::line("launch %s %s args (%s)", k->name, geometry, args.c_str());
    {
        std::lock_guard<std::mutex> lock(g_mu);
        g_launches[k->name]++;
    }
    std::string label = std::string(k->name) + "(" + args + ")";
    enqueue(s, [k, offsets, buffer, label, gridDimX, gridDimY, gridDimZ, blockDimX, blockDimY, blockDimZ] {
        std::vector<void*> params((size_t) k->params);
        for (int i = 0; i < k->params; i++) {
            params[(size_t) i] = buffer->data() + offsets[(size_t) i];
            if (k->kinds[i] == 'p') {
                uint64_t v;
                std::memcpy(&v, params[(size_t) i], 8);
                if (v != 0 && !device_range((uintptr_t) v, 1)) {
                    fault("kernel " + label + ": pointer argument " + std::to_string(i) + " (" + hex(v)
                          + ") is not inside a live device allocation; the kernel did not run");
                    return;
                }
            }
        }
        k->run(params.data(), gridDimX, gridDimY, gridDimZ, blockDimX, blockDimY, blockDimZ);
    });
    return CUDA_SUCCESS;
}

} // extern "C"
