package ai.fluxbatch.kernel.cuda;

import java.nio.charset.StandardCharsets;
import org.bytedeco.cuda.global.cublas;
import org.bytedeco.cuda.global.cudart;
import org.bytedeco.cuda.global.nvrtc;
import org.bytedeco.javacpp.BytePointer;
import org.bytedeco.javacpp.PointerPointer;

/** Checks of driver, cuBLAS and NVRTC results: a failure becomes a {@link CudaException} with the error's name. */
final class CudaErrors {
    private CudaErrors() {}

    static void check(int result, String call, String doing) {
        if (result != cudart.CUDA_SUCCESS) {
            throw driverError(result, call, doing);
        }
    }

    static CudaException driverError(int result, String call, String doing) {
        return CudaException.of(call, result, errorName(result), errorString(result), doing);
    }

    static String errorName(int result) {
        try (PointerPointer<BytePointer> text = new PointerPointer<>(1)) {
            if (cudart.cuGetErrorName(result, text) == cudart.CUDA_SUCCESS) {
                BytePointer s = text.get(BytePointer.class, 0);
                if (s != null && !s.isNull()) {
                    return s.getString();
                }
            }
        }
        return "CUresult " + result;
    }

    static String errorString(int result) {
        try (PointerPointer<BytePointer> text = new PointerPointer<>(1)) {
            if (cudart.cuGetErrorString(result, text) == cudart.CUDA_SUCCESS) {
                BytePointer s = text.get(BytePointer.class, 0);
                if (s != null && !s.isNull()) {
                    return s.getString();
                }
            }
        }
        return null;
    }

    static void checkCublas(int status, String call, String doing) {
        if (status != cublas.CUBLAS_STATUS_SUCCESS) {
            BytePointer statusName = cublas.cublasGetStatusName(status);
            BytePointer statusString = cublas.cublasGetStatusString(status);
            throw CudaException.of(
                    call,
                    status,
                    statusName == null || statusName.isNull() ? "cublasStatus " + status : statusName.getString(),
                    statusString == null || statusString.isNull() ? null : statusString.getString(),
                    doing);
        }
    }

    static void checkNvrtc(int result, String call, String doing) {
        if (result != nvrtc.NVRTC_SUCCESS) {
            throw CudaException.of(call, result, nvrtcError(result), null, doing);
        }
    }

    static String nvrtcError(int result) {
        BytePointer s = nvrtc.nvrtcGetErrorString(result);
        return s == null || s.isNull() ? "nvrtcResult " + result : s.getString();
    }

    static String cString(byte[] bytes) {
        int n = 0;
        while (n < bytes.length && bytes[n] != 0) {
            n++;
        }
        return new String(bytes, 0, n, StandardCharsets.UTF_8);
    }
}
