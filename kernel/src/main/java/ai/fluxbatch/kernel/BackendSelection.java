package ai.fluxbatch.kernel;

import java.util.Objects;
import java.util.Optional;

/**
 * Turns {@code --device auto|cpu|cuda} into the backend a run uses: {@code auto} takes CUDA when a GPU is visible and
 * this build can run the CUDA backend (its kernels were compiled and the JavaCPP CUDA classes are on the class path),
 * the CPU otherwise; {@code cuda} when either is missing is an error that says which.
 */
public final class BackendSelection {

    private BackendSelection() {}

    /** The backend chosen ({@link DeviceKind#CPU} or {@link DeviceKind#CUDA}) and why. */
    public record Decision(DeviceKind kind, String reason) {
        public Decision {
            Objects.requireNonNull(reason);
            if (kind != DeviceKind.CPU && kind != DeviceKind.CUDA) {
                throw new IllegalArgumentException("a decision is cpu or cuda, not " + kind);
            }
        }

        /** "cpu (requested with --device cpu)". */
        @Override
        public String toString() {
            return kind.optionName() + " (" + reason + ")";
        }
    }

    /** With what this build has: {@link CudaAvailability#missing()}. */
    public static Decision select(DeviceKind requested, GpuVisibility gpus) {
        return select(requested, gpus, CudaAvailability.missing());
    }

    /**
     * The backend for {@code requested}; {@code gpus} is probed only for auto and cuda; {@code cudaMissing} says
     * why this build cannot run the CUDA backend, or is empty when it can.
     *
     * @throws IllegalArgumentException when cuda is requested but no GPU is visible or the CUDA backend is missing
     */
    public static Decision select(DeviceKind requested, GpuVisibility gpus, Optional<String> cudaMissing) {
        boolean cudaAvailable = cudaMissing.isEmpty();
        String noBackend = cudaMissing.orElse("");
        Objects.requireNonNull(requested, "requested");
        if (requested == DeviceKind.CPU) {
            return new Decision(DeviceKind.CPU, "requested with --device cpu");
        }
        Optional<String> gpu = gpus.detect();
        if (requested == DeviceKind.AUTO) {
            if (gpu.isEmpty()) {
                return new Decision(DeviceKind.CPU, "auto: no NVIDIA GPU visible, using the CPU backend");
            }
            if (!cudaAvailable) {
                return new Decision(
                        DeviceKind.CPU,
                        "auto: a GPU is visible (" + gpu.get() + ") but " + noBackend + ", using the CPU backend");
            }
            return new Decision(DeviceKind.CUDA, "auto: a GPU is visible (" + gpu.get() + "), using the CUDA backend");
        }
        if (gpu.isEmpty() && !cudaAvailable) {
            throw new IllegalArgumentException(
                    "--device cuda: no NVIDIA GPU is visible" + " and " + noBackend + "; use --device cpu or auto");
        }
        if (gpu.isEmpty()) {
            throw new IllegalArgumentException(
                    "--device cuda: no NVIDIA GPU is visible" + "; use --device cpu or auto");
        }
        if (!cudaAvailable) {
            throw new IllegalArgumentException("--device cuda: a GPU is visible (" + gpu.get() + ") but " + noBackend
                    + "; use --device cpu or auto");
        }
        return new Decision(DeviceKind.CUDA, "requested with --device cuda; " + gpu.get());
    }
}
