// fluxbatch: a FAKE libcublas.so.13 for CudaDriverDeviceOnFakeDriverTest: the cuBLAS calls CudaDriverDevice makes,
// on the fake driver (fake_libcuda.cpp), whose streams run the GEMMs in order with the copies and kernels.
//
// JavaCPP's libjnicublas.so binds VERSIONED symbols (cublasCreate_v2@libcublas.so.13 ...), so this library is linked
// with a version script (libcublas.map) that puts every cublas* symbol in the node libcublas.so.13; it also needs
// libcublasLt.so.13 to exist with the node libcublasLt.so.13 (fake_cublasLt.cpp). Symbols are bound lazily, so the
// hundreds of cuBLAS functions CudaDriverDevice does not call need not exist.
//
// cublasGemmStridedBatchedEx: column-major, CUDA_R_32F A, B and C; compute types CUBLAS_COMPUTE_32F and
// _32F_PEDANTIC (float inputs), CUBLAS_COMPUTE_32F_FAST_16BF (inputs rounded to bfloat16, as the tensor cores take
// them), _32F_FAST_TF32 (rounded to TF32; also what CUBLAS_COMPUTE_32F becomes under CUBLAS_TF32_TENSOR_OP_MATH),
// products summed in double. The argument checks are cuBLAS's (CUBLAS_STATUS_INVALID_VALUE for negative sizes, a bad
// transpose, lda < max(1, rows of A as stored) ...); beta = 0 does not read C. Each matrix's extent (leading dimension,
// stride, batch) must lie inside one allocation of the fake driver, else a FAULT, as a GPU would fault. alpha and beta
// are read when called (CUBLAS_POINTER_MODE_HOST) or when the GEMM runs (_DEVICE). Each call is a "gemm" log line.
// FAKE_CUBLAS_CREATE_FAIL_AT=N makes the N-th cublasCreate_v2 fail with CUBLAS_STATUS_NOT_INITIALIZED.

#include "fake_hooks.h"
#include "fake_log.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>

namespace {

// the values of cublas_api.h and library_types.h (the fake needs no cuBLAS headers)
enum : int {
    CUBLAS_STATUS_SUCCESS = 0,
    CUBLAS_STATUS_NOT_INITIALIZED = 1,
    CUBLAS_STATUS_ALLOC_FAILED = 3,
    CUBLAS_STATUS_INVALID_VALUE = 7,
    CUBLAS_STATUS_ARCH_MISMATCH = 8,
    CUBLAS_STATUS_MAPPING_ERROR = 11,
    CUBLAS_STATUS_EXECUTION_FAILED = 13,
    CUBLAS_STATUS_INTERNAL_ERROR = 14,
    CUBLAS_STATUS_NOT_SUPPORTED = 15,
    CUBLAS_STATUS_LICENSE_ERROR = 16,
};
enum : int { CUBLAS_OP_N = 0, CUBLAS_OP_T = 1, CUBLAS_OP_C = 2 };
enum : int { CUBLAS_POINTER_MODE_HOST = 0, CUBLAS_POINTER_MODE_DEVICE = 1 };
enum : int {
    CUBLAS_DEFAULT_MATH = 0,
    CUBLAS_TENSOR_OP_MATH = 1,
    CUBLAS_PEDANTIC_MATH = 2,
    CUBLAS_TF32_TENSOR_OP_MATH = 3,
    CUBLAS_MATH_DISALLOW_REDUCED_PRECISION_REDUCTION = 16,
};
enum : int {
    CUBLAS_COMPUTE_32F = 68,
    CUBLAS_COMPUTE_32F_PEDANTIC = 69,
    CUBLAS_COMPUTE_32F_FAST_16F = 74,
    CUBLAS_COMPUTE_32F_FAST_16BF = 75,
    CUBLAS_COMPUTE_32F_FAST_TF32 = 77,
};
enum : int { CUDA_R_32F = 0 };
enum : int { CUBLAS_GEMM_DEFAULT = -1, CUBLAS_GEMM_DEFAULT_TENSOR_OP = 99 };

struct Handle {
    uint32_t magic = 0xC0B1A5u;
    void* stream = nullptr;
    int pointerMode = CUBLAS_POINTER_MODE_HOST;
    int mathMode = CUBLAS_DEFAULT_MATH;
};

bool live(const Handle* h) {
    return h != nullptr && h->magic == 0xC0B1A5u;
}

int status(const char* call, int s, const std::string& why) {
    fake_log::line("error %s -> cublasStatus %d: %s", call, s, why.c_str());
    return s;
}

float round_bf16(float x) {
    uint32_t u;
    std::memcpy(&u, &x, 4);
    if ((u & 0x7f800000u) == 0x7f800000u) {
        return x; // inf, nan
    }
    u = (u + 0x7fffu + ((u >> 16) & 1u)) & 0xffff0000u; // round to nearest even
    std::memcpy(&x, &u, 4);
    return x;
}

float round_tf32(float x) {
    uint32_t u;
    std::memcpy(&u, &x, 4);
    if ((u & 0x7f800000u) == 0x7f800000u) {
        return x;
    }
    u = (u + 0xfffu + ((u >> 13) & 1u)) & 0xffffe000u;
    std::memcpy(&x, &u, 4);
    return x;
}

struct Gemm {
    int opA, opB, m, n, k;
    float alpha, beta;
    const float* alphaDevice;
    const float* betaDevice;
    const float* a;
    int lda;
    long long strideA;
    const float* b;
    int ldb;
    long long strideB;
    float* c;
    int ldc;
    long long strideC;
    int batch;
    int rounding; // 0 none, 1 bf16, 2 tf32
};

float input(const Gemm& g, float v) {
    return g.rounding == 1 ? round_bf16(v) : g.rounding == 2 ? round_tf32(v) : v;
}

void run_gemm(void* arg) {
    Gemm* g = static_cast<Gemm*>(arg);
    float alpha = g->alphaDevice != nullptr ? *g->alphaDevice : g->alpha;
    float beta = g->betaDevice != nullptr ? *g->betaDevice : g->beta;
    for (int p = 0; p < g->batch; p++) {
        const float* a = g->a + p * g->strideA;
        const float* b = g->b + p * g->strideB;
        float* c = g->c + p * g->strideC;
        for (int j = 0; j < g->n; j++) {
            for (int i = 0; i < g->m; i++) {
                double acc = 0;
                for (int l = 0; l < g->k; l++) {
                    float av = g->opA == CUBLAS_OP_N ? a[i + (long long) l * g->lda] : a[l + (long long) i * g->lda];
                    float bv = g->opB == CUBLAS_OP_N ? b[l + (long long) j * g->ldb] : b[j + (long long) l * g->ldb];
                    acc += (double) input(*g, av) * (double) input(*g, bv);
                }
                float* out = c + i + (long long) j * g->ldc;
                double v = (double) alpha * acc;
                if (beta != 0.0f) {
                    v += (double) beta * (double) *out;
                }
                *out = (float) v;
            }
        }
    }
    delete g;
}

// Bytes from the first to one past the last element of a rows x cols column-major matrix with leading dimension ld.
uint64_t extent(int rows, int cols, int ld) {
    if (rows <= 0 || cols <= 0) {
        return 0;
    }
    return 4ULL * ((uint64_t) (cols - 1) * (uint64_t) ld + (uint64_t) rows);
}

bool matrix_ok(const char* which, const void* base, int rows, int cols, int ld, long long stride, int batch,
               std::string* why) {
    uint64_t bytes = extent(rows, cols, ld);
    if (bytes == 0) {
        return true;
    }
    for (int p = 0; p < batch; p++) {
        uint64_t start = (uint64_t) (uintptr_t) base + 4ULL * (uint64_t) ((long long) p * stride);
        if (!fakecuda_device_range_ok(start, bytes)) {
            char b[256];
            std::snprintf(b, sizeof b, "%s of batch entry %d: %llu bytes from 0x%llx (%d x %d, ld %d, stride %lld) "
                          "are not inside one device allocation", which, p, (unsigned long long) bytes,
                          (unsigned long long) start, rows, cols, ld, stride);
            *why = b;
            return false;
        }
    }
    return true;
}

const char* status_name(int s) {
    switch (s) {
        case CUBLAS_STATUS_SUCCESS: return "CUBLAS_STATUS_SUCCESS";
        case CUBLAS_STATUS_NOT_INITIALIZED: return "CUBLAS_STATUS_NOT_INITIALIZED";
        case CUBLAS_STATUS_ALLOC_FAILED: return "CUBLAS_STATUS_ALLOC_FAILED";
        case CUBLAS_STATUS_INVALID_VALUE: return "CUBLAS_STATUS_INVALID_VALUE";
        case CUBLAS_STATUS_ARCH_MISMATCH: return "CUBLAS_STATUS_ARCH_MISMATCH";
        case CUBLAS_STATUS_MAPPING_ERROR: return "CUBLAS_STATUS_MAPPING_ERROR";
        case CUBLAS_STATUS_EXECUTION_FAILED: return "CUBLAS_STATUS_EXECUTION_FAILED";
        case CUBLAS_STATUS_INTERNAL_ERROR: return "CUBLAS_STATUS_INTERNAL_ERROR";
        case CUBLAS_STATUS_NOT_SUPPORTED: return "CUBLAS_STATUS_NOT_SUPPORTED";
        case CUBLAS_STATUS_LICENSE_ERROR: return "CUBLAS_STATUS_LICENSE_ERROR";
        default: return "<unrecognized>";
    }
}

const char* status_string(int s) {
    switch (s) {
        case CUBLAS_STATUS_SUCCESS: return "success";
        case CUBLAS_STATUS_NOT_INITIALIZED: return "the library was not initialized";
        case CUBLAS_STATUS_ALLOC_FAILED: return "the resource allocation failed";
        case CUBLAS_STATUS_INVALID_VALUE: return "an invalid numeric value was used as an argument";
        case CUBLAS_STATUS_ARCH_MISMATCH: return "an absent device architectural feature is required";
        case CUBLAS_STATUS_MAPPING_ERROR: return "an access to GPU memory space failed";
        case CUBLAS_STATUS_EXECUTION_FAILED: return "the GPU program failed to execute";
        case CUBLAS_STATUS_INTERNAL_ERROR: return "an internal operation failed";
        case CUBLAS_STATUS_NOT_SUPPORTED: return "the functionality requested is not supported";
        case CUBLAS_STATUS_LICENSE_ERROR: return "an error was detected when checking the current licensing";
        default: return "<unrecognized>";
    }
}

} // namespace

extern "C" {

typedef struct cublasContext* cublasHandle_t;

int cublasCreate_v2(cublasHandle_t* handle) {
    if (handle == nullptr) {
        return status("cublasCreate_v2", CUBLAS_STATUS_INVALID_VALUE, "handle is null");
    }
    if (!fakecuda_context_current()) {
        return status("cublasCreate_v2", CUBLAS_STATUS_NOT_INITIALIZED, "no CUDA context is current");
    }
    static int calls = 0;
    const char* failAt = std::getenv("FAKE_CUBLAS_CREATE_FAIL_AT");
    if (failAt != nullptr && ++calls == std::atoi(failAt)) {
        return status("cublasCreate_v2", CUBLAS_STATUS_NOT_INITIALIZED,
                      "FAKE_CUBLAS_CREATE_FAIL_AT=" + std::string(failAt));
    }
    *handle = reinterpret_cast<cublasHandle_t>(new Handle());
    return CUBLAS_STATUS_SUCCESS;
}

int cublasDestroy_v2(cublasHandle_t handle) {
    Handle* h = reinterpret_cast<Handle*>(handle);
    if (!live(h)) {
        return status("cublasDestroy_v2", CUBLAS_STATUS_NOT_INITIALIZED, "not a live handle");
    }
    if (!fakecuda_context_current()) {
        // the handle's workspace lives in its context: destroying it needs that context current and alive
        return status("cublasDestroy_v2", CUBLAS_STATUS_NOT_INITIALIZED, "no live CUDA context is current");
    }
    fakecuda_drain(); // cublasDestroy synchronizes
    h->magic = 0;
    delete h;
    return CUBLAS_STATUS_SUCCESS;
}

int cublasSetStream_v2(cublasHandle_t handle, void* streamId) {
    Handle* h = reinterpret_cast<Handle*>(handle);
    if (!live(h)) {
        return status("cublasSetStream_v2", CUBLAS_STATUS_NOT_INITIALIZED, "not a live handle");
    }
    if (!fakecuda_stream_valid(streamId)) {
        return status("cublasSetStream_v2", CUBLAS_STATUS_INVALID_VALUE, "not a live stream");
    }
    h->stream = streamId;
    return CUBLAS_STATUS_SUCCESS;
}

int cublasSetPointerMode_v2(cublasHandle_t handle, int mode) {
    Handle* h = reinterpret_cast<Handle*>(handle);
    if (!live(h)) {
        return status("cublasSetPointerMode_v2", CUBLAS_STATUS_NOT_INITIALIZED, "not a live handle");
    }
    if (mode != CUBLAS_POINTER_MODE_HOST && mode != CUBLAS_POINTER_MODE_DEVICE) {
        return status("cublasSetPointerMode_v2", CUBLAS_STATUS_INVALID_VALUE, "mode " + std::to_string(mode));
    }
    h->pointerMode = mode;
    return CUBLAS_STATUS_SUCCESS;
}

int cublasSetMathMode(cublasHandle_t handle, int mode) {
    Handle* h = reinterpret_cast<Handle*>(handle);
    if (!live(h)) {
        return status("cublasSetMathMode", CUBLAS_STATUS_NOT_INITIALIZED, "not a live handle");
    }
    int base = mode & ~CUBLAS_MATH_DISALLOW_REDUCED_PRECISION_REDUCTION;
    if (base < CUBLAS_DEFAULT_MATH || base > CUBLAS_TF32_TENSOR_OP_MATH) {
        return status("cublasSetMathMode", CUBLAS_STATUS_INVALID_VALUE, "mode " + std::to_string(mode));
    }
    h->mathMode = mode;
    fake_log::line("note cublasSetMathMode %d", mode);
    return CUBLAS_STATUS_SUCCESS;
}

const char* cublasGetStatusName(int s) {
    return status_name(s);
}

const char* cublasGetStatusString(int s) {
    return status_string(s);
}

int cublasGemmStridedBatchedEx(cublasHandle_t handle, int transa, int transb, int m, int n, int k,
                               const void* alpha, const void* A, int Atype, int lda, long long strideA,
                               const void* B, int Btype, int ldb, long long strideB, const void* beta, void* C,
                               int Ctype, int ldc, long long strideC, int batchCount, int computeType, int algo) {
    static const char* CALL = "cublasGemmStridedBatchedEx";
    Handle* h = reinterpret_cast<Handle*>(handle);
    char desc[400];
    std::snprintf(desc, sizeof desc, "op(A)=%s op(B)=%s m=%d n=%d k=%d lda=%d ldb=%d ldc=%d strides %lld %lld %lld "
                  "batch=%d types %d/%d/%d compute=%d algo=%d", transa == CUBLAS_OP_N ? "N" : "T",
                  transb == CUBLAS_OP_N ? "N" : "T", m, n, k, lda, ldb, ldc, strideA, strideB, strideC, batchCount,
                  Atype, Btype, Ctype, computeType, algo);
    if (!live(h)) {
        return status(CALL, CUBLAS_STATUS_NOT_INITIALIZED, std::string("not a live handle: ") + desc);
    }
    if ((transa != CUBLAS_OP_N && transa != CUBLAS_OP_T && transa != CUBLAS_OP_C)
        || (transb != CUBLAS_OP_N && transb != CUBLAS_OP_T && transb != CUBLAS_OP_C)) {
        return status(CALL, CUBLAS_STATUS_INVALID_VALUE, std::string("bad transpose: ") + desc);
    }
    const bool ta = transa != CUBLAS_OP_N, tb = transb != CUBLAS_OP_N; // real types: C is T
    if (m < 0 || n < 0 || k < 0 || batchCount < 0) {
        return status(CALL, CUBLAS_STATUS_INVALID_VALUE, std::string("a negative size: ") + desc);
    }
    const int rowsA = ta ? k : m, rowsB = tb ? n : k;
    if (lda < std::max(1, rowsA) || ldb < std::max(1, rowsB) || ldc < std::max(1, m)) {
        return status(CALL, CUBLAS_STATUS_INVALID_VALUE, std::string("a leading dimension is too small: ") + desc);
    }
    if (alpha == nullptr || beta == nullptr) {
        return status(CALL, CUBLAS_STATUS_INVALID_VALUE, std::string("alpha or beta is null: ") + desc);
    }
    if (Atype != CUDA_R_32F || Btype != CUDA_R_32F || Ctype != CUDA_R_32F) {
        return status(CALL, CUBLAS_STATUS_NOT_SUPPORTED, std::string("the fake does CUDA_R_32F only: ") + desc);
    }
    int rounding;
    switch (computeType) {
        case CUBLAS_COMPUTE_32F:
            rounding = (h->mathMode & 0xf) == CUBLAS_TF32_TENSOR_OP_MATH ? 2 : 0;
            break;
        case CUBLAS_COMPUTE_32F_PEDANTIC: rounding = 0; break;
        case CUBLAS_COMPUTE_32F_FAST_16BF: rounding = 1; break;
        case CUBLAS_COMPUTE_32F_FAST_TF32: rounding = 2; break;
        default:
            return status(CALL, CUBLAS_STATUS_NOT_SUPPORTED, std::string("compute type not emulated: ") + desc);
    }
    if (algo != CUBLAS_GEMM_DEFAULT && algo != CUBLAS_GEMM_DEFAULT_TENSOR_OP) {
        return status(CALL, CUBLAS_STATUS_NOT_SUPPORTED, std::string("algo not emulated: ") + desc);
    }
    fake_log::line("gemm %s rounding=%s pointerMode=%d alpha=%.9g beta=%.9g", desc,
                   rounding == 1 ? "bf16" : rounding == 2 ? "tf32" : "none", h->pointerMode,
                   h->pointerMode == CUBLAS_POINTER_MODE_HOST ? (double) *static_cast<const float*>(alpha) : 0.0,
                   h->pointerMode == CUBLAS_POINTER_MODE_HOST ? (double) *static_cast<const float*>(beta) : 0.0);
    if (m == 0 || n == 0 || batchCount == 0) {
        return CUBLAS_STATUS_SUCCESS;
    }
    std::string why;
    const bool readsAB = k > 0;
    if ((readsAB && !matrix_ok("A", A, rowsA, ta ? m : k, lda, strideA, batchCount, &why))
        || (readsAB && !matrix_ok("B", B, rowsB, tb ? k : n, ldb, strideB, batchCount, &why))
        || !matrix_ok("C", C, m, n, ldc, strideC, batchCount, &why)) {
        fakecuda_fault((std::string(CALL) + ": " + why + "; " + desc).c_str());
        return CUBLAS_STATUS_SUCCESS; // a GPU faults asynchronously; the next synchronization reports it
    }
    Gemm* g = new Gemm();
    g->opA = ta ? CUBLAS_OP_T : CUBLAS_OP_N;
    g->opB = tb ? CUBLAS_OP_T : CUBLAS_OP_N;
    g->m = m;
    g->n = n;
    g->k = k;
    if (h->pointerMode == CUBLAS_POINTER_MODE_HOST) {
        g->alpha = *static_cast<const float*>(alpha);
        g->beta = *static_cast<const float*>(beta);
        g->alphaDevice = nullptr;
        g->betaDevice = nullptr;
    } else {
        g->alphaDevice = static_cast<const float*>(alpha);
        g->betaDevice = static_cast<const float*>(beta);
    }
    g->a = static_cast<const float*>(A);
    g->lda = lda;
    g->strideA = strideA;
    g->b = static_cast<const float*>(B);
    g->ldb = ldb;
    g->strideB = strideB;
    g->c = static_cast<float*>(C);
    g->ldc = ldc;
    g->strideC = strideC;
    g->batch = batchCount;
    g->rounding = rounding;
    int r = fakecuda_enqueue(h->stream, run_gemm, g);
    if (r != 0) {
        delete g;
        return status(CALL, CUBLAS_STATUS_EXECUTION_FAILED, "the stream refused the GEMM (CUresult "
                      + std::to_string(r) + ")");
    }
    return CUBLAS_STATUS_SUCCESS;
}

} // extern "C"
