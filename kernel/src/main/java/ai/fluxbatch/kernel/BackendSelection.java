package ai.fluxbatch.kernel;

import java.util.Objects;
import java.util.Optional;

/**
 * Turns {@code --device auto|cpu|cuda} into the backend a run uses: {@code auto} takes CUDA when a GPU is visible and
 * this build has a CUDA backend, the CPU otherwise; {@code cuda} when either is missing is an error that says which.
 */
public final class BackendSelection {
    /** Whether this build has a CUDA backend to run the model on: not yet (issue 8), only its kernels. */
    public static final boolean CUDA_BACKEND_BUILT = false;

    static final String NO_BACKEND = "this build has no CUDA backend yet (issue 8)";

    private BackendSelection() {
    }

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

    /** With this build's {@link #CUDA_BACKEND_BUILT}. */
    public static Decision select(DeviceKind requested, GpuVisibility gpus) {
        return select(requested, gpus, CUDA_BACKEND_BUILT);
    }

    /**
     * The backend for {@code requested}; {@code gpus} is probed only for auto and cuda.
     *
     * @throws IllegalArgumentException when cuda is requested but no GPU is visible or {@code cudaAvailable} is false
     */
    public static Decision select(DeviceKind requested, GpuVisibility gpus, boolean cudaAvailable) {
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
                return new Decision(DeviceKind.CPU, "auto: a GPU is visible (" + gpu.get() + ") but " + NO_BACKEND
                        + ", using the CPU backend");
            }
            return new Decision(DeviceKind.CUDA, "auto: a GPU is visible (" + gpu.get() + "), using the CUDA backend");
        }
        if (gpu.isEmpty() && !cudaAvailable) {
            throw new IllegalArgumentException("--device cuda: no NVIDIA GPU is visible"
                    + " and " + NO_BACKEND + "; use --device cpu or auto");
        }
        if (gpu.isEmpty()) {
            throw new IllegalArgumentException("--device cuda: no NVIDIA GPU is visible"
                    + "; use --device cpu or auto");
        }
        if (!cudaAvailable) {
            throw new IllegalArgumentException("--device cuda: a GPU is visible (" + gpu.get() + ") but " + NO_BACKEND
                    + "; use --device cpu or auto");
        }
        return new Decision(DeviceKind.CUDA, "requested with --device cuda; " + gpu.get());
    }
}
