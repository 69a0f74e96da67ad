package ai.fluxbatch.model;

import ai.fluxbatch.kernel.Backend;
import ai.fluxbatch.kernel.cpu.CpuBackend;
import ai.fluxbatch.kernel.cpu.DenseProducts;
import ai.fluxbatch.kernel.cpu.NativeBlas;
import ai.fluxbatch.kernel.cuda.CudaBackend;
import ai.fluxbatch.kernel.cuda.EmulatedDevice;
import ai.fluxbatch.kernel.cuda.GemmPrecision;
import java.io.File;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.params.provider.Arguments;

/**
 * The backends the golden tests run on: the CPU; the CUDA backend on the emulated device (its logic, on any
 * machine); and, where a GPU is present, the CUDA backend on it in float32 and bfloat16 GEMM precision (names
 * {@code cuda-fp32}, {@code cuda-bf16}). The golden tolerance is 1e-4 relative L2, 1e-3 with bfloat16 products.
 */
public final class TestBackends {
    public static final String CPU = "cpu";
    public static final String EMULATED = "cuda-emulated";
    public static final String GPU_FP32 = "cuda-fp32";
    public static final String GPU_BF16 = "cuda-bf16";
    public static final String CPU_VECTOR_API = "cpu-vector-api";
    public static final String CPU_OPENBLAS = "cpu-openblas";
    /** The CPU backend's dense products through the Vector API and through OpenBLAS, each for every shape. */
    public static final List<String> DENSE_PATHS = List.of(CPU_VECTOR_API, CPU_OPENBLAS);

    private TestBackends() {}

    /** Every backend name; the GPU ones are skipped with a reason where there is no GPU. */
    public static List<String> names() {
        return List.of(CPU, EMULATED, GPU_FP32, GPU_BF16);
    }

    /** Every combination of one of {@code backends} with one value of each of {@code dimensions}, in order. */
    public static List<Arguments> cases(List<String> backends, List<?>... dimensions) {
        List<List<Object>> rows = new ArrayList<>();
        backends.forEach(b -> rows.add(List.of(b)));
        for (List<?> dimension : dimensions) {
            List<List<Object>> next = new ArrayList<>();
            for (List<Object> row : rows) {
                for (Object value : dimension) {
                    List<Object> longer = new ArrayList<>(row);
                    longer.add(value);
                    next.add(longer);
                }
            }
            rows.clear();
            rows.addAll(next);
        }
        return rows.stream().map(r -> Arguments.of(r.toArray())).toList();
    }

    public static boolean gpuPresent() {
        return new File("/dev/nvidiactl").exists() || new File("/dev/nvidia0").exists();
    }

    /** Opens the named backend; a GPU one on a machine without a GPU is a skipped test. */
    public static Backend open(String name) {
        return switch (name) {
            case CPU -> new CpuBackend();
            case CPU_VECTOR_API -> new CpuBackend(Runtime.getRuntime().availableProcessors(), DenseProducts.VECTOR_API);
            case CPU_OPENBLAS -> {
                Assumptions.assumeTrue(NativeBlas.available(), "OpenBLAS is " + NativeBlas.description());
                yield new CpuBackend(Runtime.getRuntime().availableProcessors(), DenseProducts.OPENBLAS);
            }
            case EMULATED -> new CudaBackend(new EmulatedDevice());
            case GPU_FP32, GPU_BF16 -> {
                if (Boolean.getBoolean("fluxbatch.requireGpu") && !gpuPresent()) {
                    throw new IllegalStateException("-Dfluxbatch.requireGpu=true but no NVIDIA GPU is visible"
                            + " (/dev/nvidiactl and /dev/nvidia0 absent)");
                }
                Assumptions.assumeTrue(gpuPresent(), "no NVIDIA GPU on this machine (/dev/nvidiactl absent)");
                yield CudaBackend.open(0, name.equals(GPU_BF16) ? GemmPrecision.BF16 : GemmPrecision.FP32);
            }
            default -> throw new IllegalArgumentException("unknown test backend " + name);
        };
    }

    /** The golden relative L2 tolerance on {@code name}: 1e-3 for bfloat16 products, 1e-4 otherwise. */
    public static double tolerance(String name) {
        return name.equals(GPU_BF16) ? 1e-3 : 1e-4;
    }
}
