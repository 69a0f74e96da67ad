package ai.fluxbatch.kernel.cuda;

import static ai.fluxbatch.kernel.cuda.CudaErrors.cString;
import static ai.fluxbatch.kernel.cuda.CudaErrors.checkNvrtc;
import static ai.fluxbatch.kernel.cuda.CudaErrors.nvrtcError;

import java.util.Arrays;
import java.util.List;
import org.bytedeco.cuda.global.nvrtc;
import org.bytedeco.cuda.nvrtc._nvrtcProgram;
import org.bytedeco.javacpp.BytePointer;
import org.bytedeco.javacpp.PointerPointer;
import org.bytedeco.javacpp.SizeTPointer;

/** Compiles a module's CUDA source to a CUBIN with NVRTC, the fallback for a GPU the fatbins have no code for. */
final class NvrtcCompiler {
    private NvrtcCompiler() {}

    /** NVRTC's options: the real architecture, C++17, and exact math (no --use_fast_math), as nvcc builds them. */
    static List<String> nvrtcOptions(String arch) {
        return List.of("--gpu-architecture=" + arch, "-std=c++17");
    }

    static byte[] nvrtcCompile(String module, byte[] source, List<String> options, String doing) {
        _nvrtcProgram program = new _nvrtcProgram();
        try (BytePointer text = new BytePointer(Arrays.copyOf(source, source.length + 1)); // NUL-terminated
                BytePointer fileName = new BytePointer(module + ".cu")) {
            checkNvrtc(
                    nvrtc.nvrtcCreateProgram(
                            program, text, fileName, 0, (PointerPointer<?>) null, (PointerPointer<?>) null),
                    "nvrtcCreateProgram",
                    doing);
            int result;
            try (PointerPointer<BytePointer> opts = new PointerPointer<>(options.toArray(new String[0]))) {
                result = nvrtc.nvrtcCompileProgram(program, options.size(), opts);
            }
            if (result != nvrtc.NVRTC_SUCCESS) {
                String log = programLog(program);
                throw new CudaException(
                        "nvrtcCompileProgram failed: " + nvrtcError(result) + " while " + doing + " with options "
                                + options + "; NVRTC's log:\n" + log,
                        "nvrtcCompileProgram",
                        result,
                        nvrtcError(result));
            }
            try (SizeTPointer size = new SizeTPointer(1)) {
                checkNvrtc(nvrtc.nvrtcGetCUBINSize(program, size), "nvrtcGetCUBINSize", doing);
                if (size.get() <= 0 || size.get() > Integer.MAX_VALUE - 8) {
                    throw new IllegalStateException(
                            "NVRTC produced a CUBIN of " + size.get() + " bytes while " + doing);
                }
                byte[] cubin = new byte[(int) size.get()];
                checkNvrtc(nvrtc.nvrtcGetCUBIN(program, cubin), "nvrtcGetCUBIN", doing);
                return cubin;
            }
        } finally {
            if (!program.isNull()) {
                nvrtc.nvrtcDestroyProgram(program);
            }
        }
    }

    private static String programLog(_nvrtcProgram program) {
        try (SizeTPointer size = new SizeTPointer(1)) {
            if (nvrtc.nvrtcGetProgramLogSize(program, size) != nvrtc.NVRTC_SUCCESS || size.get() <= 1) {
                return "(no log)";
            }
            byte[] log = new byte[(int) Math.min(size.get(), 1 << 20)];
            if (nvrtc.nvrtcGetProgramLog(program, log) != nvrtc.NVRTC_SUCCESS) {
                return "(the log could not be read)";
            }
            return cString(log);
        }
    }
}
