package ai.fluxbatch.kernel.cuda;

/**
 * A call of the CUDA driver, cuBLAS or NVRTC failed. The message names the call, the error's name and description
 * and what was being done, e.g. {@code cuModuleLoadData failed: CUDA_ERROR_INVALID_IMAGE (device kernel image is
 * invalid) while loading module ternary_matmul's fatbin on NVIDIA H200 (sm_90, 139.8 GiB, CUDA device 0)}.
 */
public class CudaException extends RuntimeException {
    private static final long serialVersionUID = 1L;

    private final String call;
    private final int code;
    private final String errorName;

    public CudaException(String message, String call, int code, String errorName) {
        super(message);
        this.call = call;
        this.code = code;
        this.errorName = errorName;
    }

    /**
     * The exception of {@code call} returning {@code code}: "{call} failed: {errorName} ({errorString}) while {doing}".
     */
    public static CudaException of(String call, int code, String errorName, String errorString, String doing) {
        StringBuilder m = new StringBuilder(call).append(" failed: ").append(errorName);
        if (errorString != null && !errorString.isEmpty() && !errorString.equals(errorName)) {
            m.append(" (").append(errorString).append(')');
        }
        if (doing != null && !doing.isEmpty()) {
            m.append(" while ").append(doing);
        }
        return new CudaException(m.toString(), call, code, errorName);
    }

    /** The failed function, e.g. cuMemAlloc, cublasGemmStridedBatchedEx, nvrtcCompileProgram. */
    public String call() {
        return call;
    }

    /** Its CUresult, cublasStatus_t or nvrtcResult. */
    public int code() {
        return code;
    }

    /** The name of the code, e.g. CUDA_ERROR_OUT_OF_MEMORY. */
    public String errorName() {
        return errorName;
    }
}
