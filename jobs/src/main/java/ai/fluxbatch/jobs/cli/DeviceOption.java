package ai.fluxbatch.jobs.cli;

import ai.fluxbatch.jobs.ExecutorDevice;
import ai.fluxbatch.kernel.Backend;
import ai.fluxbatch.kernel.BackendSelection;
import ai.fluxbatch.kernel.CudaAvailability;
import ai.fluxbatch.kernel.DeviceKind;
import ai.fluxbatch.kernel.GpuVisibility;
import ai.fluxbatch.kernel.cuda.CudaBackend;
import ai.fluxbatch.kernel.cuda.GemmPrecision;
import java.io.PrintWriter;
import java.util.Optional;
import java.util.function.Supplier;
import picocli.CommandLine;
import picocli.CommandLine.Option;

/**
 * {@code --device auto|cpu|cuda} and {@code --gemm-precision fp32|bf16}. Commands that run in their own JVM choose
 * the backend on the driver ({@link #select}, {@link #open}); Spark jobs check what the driver can ({@link
 * #checkForSpark}) and ship the request to the executors, where each task resolves it ({@code ExecutorDevice}).
 */
public final class DeviceOption {
    /** /dev/nvidia0, then nvidia-smi -L. */
    private static final GpuVisibility GPUS = GpuVisibility.system();

    @Option(
            names = "--device",
            defaultValue = "auto",
            paramLabel = "auto|cpu|cuda",
            converter = Converter.class,
            description = "Backend: auto uses CUDA when an NVIDIA GPU is visible and this build has the CUDA backend,"
                    + " the CPU otherwise; cpu; cuda fails when it cannot be had. In a Spark job each task uses the GPU"
                    + " Spark assigned it (spark.task.resource.gpu.amount), or CUDA device 0 in local mode"
                    + " (default: ${DEFAULT-VALUE}).")
    DeviceKind device = DeviceKind.AUTO;

    @Option(
            names = "--gemm-precision",
            defaultValue = "fp32",
            paramLabel = "fp32|bf16",
            converter = PrecisionConverter.class,
            description = "Arithmetic of the dense matmuls and attention on the CUDA backend: fp32, or bf16 inputs"
                    + " with float32 accumulation on the tensor cores; ignored on the CPU (default: ${DEFAULT-VALUE}).")
    GemmPrecision gemmPrecision = GemmPrecision.FP32;

    /** What {@code --device} asked for. */
    public DeviceKind requested() {
        return device;
    }

    /** {@code --gemm-precision}. */
    public GemmPrecision gemmPrecision() {
        return gemmPrecision;
    }

    /** Chooses the backend and prints {@code COMMAND: device cpu (reason)} to stderr; an impossible cuda throws. */
    public BackendSelection.Decision select(String command, PrintWriter err) {
        BackendSelection.Decision decision = BackendSelection.select(device, GPUS);
        err.printf("%s: device %s%n", command, decision);
        return decision;
    }

    /**
     * Opens the backend of a driver-side {@code decision} for a command that runs in this JVM: CUDA device 0 (the
     * first of CUDA_VISIBLE_DEVICES) with {@code --gemm-precision}, or {@code cpu}. A CUDA backend that fails to open
     * falls back to {@code cpu} under auto, saying so, and is an error under cuda.
     */
    public Backend open(
            String command, BackendSelection.Decision decision, PrintWriter err, Supplier<? extends Backend> cpu) {
        if (decision.kind() != DeviceKind.CUDA) {
            return cpu.get();
        }
        try {
            return CudaBackend.open(0, gemmPrecision);
        } catch (RuntimeException | LinkageError e) {
            String why = e.getMessage() != null ? e.getMessage() : e.toString();
            if (device != DeviceKind.AUTO) {
                throw new IllegalStateException(
                        "--device cuda: the CUDA backend failed to open on device 0: " + why, e);
            }
            err.printf("%s: device cpu (auto: the CUDA backend failed to open on device 0: %s)%n", command, why);
            return cpu.get();
        }
    }

    /**
     * For a Spark job on {@code master} (null: what spark-submit set, else local mode): in local mode the driver is
     * the executor, so this is {@link #select}; on a cluster the executors' GPUs count, not the driver's, so only what
     * this build lacks fails a cuda request here, and each task resolves the device where it runs.
     */
    public void checkForSpark(String command, String master, PrintWriter err) {
        String effective = master != null ? master : System.getProperty("spark.master");
        if (effective == null || ExecutorDevice.isLocalMaster(effective)) {
            select(command, err);
            return;
        }
        if (device == DeviceKind.CPU) {
            err.printf("%s: device cpu (requested with --device cpu)%n", command);
            return;
        }
        if (device == DeviceKind.CUDA) {
            Optional<String> missing = CudaAvailability.missing();
            if (missing.isPresent()) {
                throw new IllegalArgumentException("--device cuda: " + missing.get() + "; use --device cpu or auto");
            }
        }
        err.printf(
                "%s: device %s, resolved by each task on its executor (the GPU Spark assigned it%s)%n",
                command, device.optionName(), device == DeviceKind.AUTO ? ", else the CPU" : "");
    }

    static final class Converter implements CommandLine.ITypeConverter<DeviceKind> {
        @Override
        public DeviceKind convert(String value) {
            try {
                return DeviceKind.parse(value);
            } catch (IllegalArgumentException e) {
                throw new CommandLine.TypeConversionException(e.getMessage());
            }
        }
    }

    static final class PrecisionConverter implements CommandLine.ITypeConverter<GemmPrecision> {
        @Override
        public GemmPrecision convert(String value) {
            try {
                return GemmPrecision.parse(value);
            } catch (IllegalArgumentException e) {
                throw new CommandLine.TypeConversionException(e.getMessage());
            }
        }
    }
}
