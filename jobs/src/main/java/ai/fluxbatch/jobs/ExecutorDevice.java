package ai.fluxbatch.jobs;

import ai.fluxbatch.kernel.DeviceKind;
import ai.fluxbatch.kernel.GpuVisibility;
import java.util.Objects;
import java.util.Optional;
import java.util.function.Supplier;

/**
 * Which backend a Spark task gets, decided on the executor from what the user asked for ({@code --device}) and what
 * the task was given: the GPU Spark assigned it ({@code TaskContext.resources()}), never device 0 by default. Only in
 * local mode, where the driver and the executor are one process and Spark usually assigns no GPU, does a task take
 * CUDA device 0 of the GPUs that process sees. No Spark here: {@link ExecutorBackends} gathers the inputs.
 *
 * <ul>
 *   <li>cpu: the CPU.</li>
 *   <li>cuda or auto with a task GPU address: CUDA on that address' ordinal under CUDA_VISIBLE_DEVICES
 *       ({@link SparkGpuAddress#cudaOrdinal(String, String)}).</li>
 *   <li>no task GPU address, local mode, a GPU visible: CUDA device 0.</li>
 *   <li>no task GPU address otherwise: auto takes the CPU, cuda is an error naming the Spark settings that give
 *       tasks GPUs.</li>
 * </ul>
 * Wherever CUDA would be chosen but this build cannot run it ({@code CudaAvailability.missing()}) or the address
 * maps to no visible device, auto takes the CPU with that reason and cuda fails with it.
 */
public final class ExecutorDevice {
    /** The Spark settings that give each task a GPU, for the message of a cuda task that got none. */
    public static final String GPU_SETTINGS_HINT = "set spark.executor.resource.gpu.amount and"
            + " spark.task.resource.gpu.amount (with a discovery script), as"
            + " conf/spark-defaults-gpu.conf.template does, or use --device auto or cpu";

    private ExecutorDevice() {}

    /**
     * The backend a task uses: {@link DeviceKind#CPU} (ordinal -1) or {@link DeviceKind#CUDA} on {@code ordinal}, and
     * why.
     */
    public record Resolution(DeviceKind kind, int ordinal, String reason) {
        public Resolution {
            Objects.requireNonNull(kind, "kind");
            Objects.requireNonNull(reason, "reason");
            if (kind == DeviceKind.CPU && ordinal != -1) {
                throw new IllegalArgumentException("a cpu resolution has ordinal -1, not " + ordinal);
            }
            if (kind == DeviceKind.CUDA && ordinal < 0) {
                throw new IllegalArgumentException("a cuda resolution needs a device ordinal >= 0, not " + ordinal);
            }
            if (kind == DeviceKind.AUTO) {
                throw new IllegalArgumentException("a resolution is cpu or cuda, not auto");
            }
        }

        public static Resolution cpu(String reason) {
            return new Resolution(DeviceKind.CPU, -1, reason);
        }

        public static Resolution cuda(int ordinal, String reason) {
            return new Resolution(DeviceKind.CUDA, ordinal, reason);
        }

        /** "cpu (reason)" or "cuda:1 (reason)". */
        @Override
        public String toString() {
            return (kind == DeviceKind.CUDA ? "cuda:" + ordinal : "cpu") + " (" + reason + ")";
        }
    }

    /**
     * Resolves {@code requested} for one task.
     *
     * @param requested          {@code --device}
     * @param taskGpuAddress     the first GPU address Spark assigned the task ({@link SparkGpuAddress#current()})
     * @param localMode          whether the driver and the executor are one JVM (Spark's local mode)
     * @param cudaVisibleDevices this process' CUDA_VISIBLE_DEVICES, or null when unset
     * @param gpus               whether this process sees a GPU; asked only in local mode without a task address
     * @param cudaMissing        why this build cannot run CUDA ({@code CudaAvailability.missing()}), empty when it can;
     *                           asked only when CUDA would be chosen
     * @throws IllegalStateException when cuda is requested and cannot be had, saying why
     */
    public static Resolution resolve(
            DeviceKind requested,
            Optional<String> taskGpuAddress,
            boolean localMode,
            String cudaVisibleDevices,
            GpuVisibility gpus,
            Supplier<Optional<String>> cudaMissing) {
        Objects.requireNonNull(requested, "requested");
        Objects.requireNonNull(taskGpuAddress, "taskGpuAddress");
        if (requested == DeviceKind.CPU) {
            return Resolution.cpu("requested with --device cpu");
        }
        boolean auto = requested == DeviceKind.AUTO;
        if (taskGpuAddress.isPresent()) {
            String address = taskGpuAddress.get();
            String given = "Spark assigned this task GPU " + address;
            int ordinal;
            try {
                ordinal = SparkGpuAddress.cudaOrdinal(address, cudaVisibleDevices);
            } catch (IllegalArgumentException e) {
                return cannot(auto, given + " but " + e.getMessage());
            }
            Optional<String> missing = cudaMissing.get();
            if (missing.isPresent()) {
                return cannot(auto, given + " but " + missing.get());
            }
            return Resolution.cuda(
                    ordinal,
                    prefix(auto) + given + ", CUDA device " + ordinal
                            + (cudaVisibleDevices == null ? "" : " under CUDA_VISIBLE_DEVICES=" + cudaVisibleDevices));
        }
        if (localMode) {
            Optional<String> gpu = gpus.detect();
            if (gpu.isPresent()) {
                String seen =
                        "local mode: the driver and the executor are one process, which sees a GPU (" + gpu.get() + ")";
                Optional<String> missing = cudaMissing.get();
                if (missing.isPresent()) {
                    return cannot(auto, seen + " but " + missing.get());
                }
                return Resolution.cuda(
                        0,
                        prefix(auto) + seen + "; using CUDA device 0"
                                + (cudaVisibleDevices == null
                                        ? ""
                                        : " (the first of CUDA_VISIBLE_DEVICES=" + cudaVisibleDevices + ")"));
            }
            if (auto) {
                return Resolution.cpu("auto: Spark assigned this task no GPU and this local-mode process sees no"
                        + " NVIDIA GPU, using the CPU backend");
            }
            throw new IllegalStateException("--device cuda: Spark assigned this task no GPU and this local-mode"
                    + " process sees no NVIDIA GPU; " + GPU_SETTINGS_HINT);
        }
        if (auto) {
            return Resolution.cpu("auto: Spark assigned this task no GPU, using the CPU backend");
        }
        throw new IllegalStateException("--device cuda: Spark assigned this task no GPU; " + GPU_SETTINGS_HINT);
    }

    /**
     * Whether a Spark master URL runs everything in the driver's JVM: {@code local}, {@code local[N]},
     * {@code local[*]}, {@code local[N,F]}; not {@code local-cluster[...]}, whose executors are processes of their own.
     */
    public static boolean isLocalMaster(String master) {
        if (master == null) {
            return false;
        }
        String m = master.strip();
        return m.equals("local") || m.startsWith("local[");
    }

    private static String prefix(boolean auto) {
        return auto ? "auto: " : "requested with --device cuda; ";
    }

    private static Resolution cannot(boolean auto, String why) {
        if (auto) {
            return Resolution.cpu("auto: " + why + ", using the CPU backend");
        }
        throw new IllegalStateException("--device cuda: " + why);
    }
}
