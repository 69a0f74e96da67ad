package ai.fluxbatch.jobs;

import java.util.List;
import java.util.Optional;
import org.apache.spark.TaskContext;
import org.apache.spark.resource.ResourceInformation;
import scala.Option;

/**
 * The GPU Spark assigned to the running task ({@code spark.task.resource.gpu.amount}), and its CUDA device ordinal.
 * The engine takes this GPU, never device 0 by default (issue 8).
 */
public final class SparkGpuAddress {
    public static final String GPU = "gpu";

    private SparkGpuAddress() {}

    /** The first "gpu" address of the current task; empty outside a task or when the task was given no GPU. */
    public static Optional<String> current() {
        TaskContext task = TaskContext.get();
        return task == null ? Optional.empty() : of(task.resources());
    }

    /** The first "gpu" address in a task's resources map, as {@code TaskContext.resources()} gives it. */
    public static Optional<String> of(scala.collection.immutable.Map<String, ResourceInformation> resources) {
        Option<ResourceInformation> gpu = resources.get(GPU);
        if (gpu.isEmpty() || gpu.get().addresses().length == 0) {
            return Optional.empty();
        }
        return Optional.of(gpu.get().addresses()[0].strip());
    }

    /** {@link #cudaOrdinal(String, String)} with this process's CUDA_VISIBLE_DEVICES. */
    public static int cudaOrdinal(String address) {
        return cudaOrdinal(address, System.getenv("CUDA_VISIBLE_DEVICES"));
    }

    /**
     * The CUDA device ordinal of a Spark GPU address. Spark's discovery script gives physical indices (or UUIDs); CUDA
     * numbers the devices CUDA_VISIBLE_DEVICES lists from 0 in that order, so with "2,3" address "3" is ordinal 1.
     * Without CUDA_VISIBLE_DEVICES ({@code null}) the ordinal is the address itself.
     *
     * @throws IllegalArgumentException when the address is not a device CUDA_VISIBLE_DEVICES lets this process see
     */
    public static int cudaOrdinal(String address, String cudaVisibleDevices) {
        String a = address.strip();
        if (cudaVisibleDevices == null) {
            try {
                int ordinal = Integer.parseInt(a);
                if (ordinal >= 0) {
                    return ordinal;
                }
            } catch (NumberFormatException e) {
                // below
            }
            throw new IllegalArgumentException("Spark GPU address '" + address + "' is not a device index and"
                    + " CUDA_VISIBLE_DEVICES is not set to map it");
        }
        List<String> visible = List.of(cudaVisibleDevices.split(",", -1));
        for (int i = 0; i < visible.size(); i++) {
            if (sameDevice(visible.get(i).strip(), a)) {
                return i;
            }
        }
        throw new IllegalArgumentException(
                "Spark GPU address '" + address + "' is not among CUDA_VISIBLE_DEVICES=" + cudaVisibleDevices);
    }

    private static boolean sameDevice(String visible, String address) {
        if (visible.equals(address)) {
            return true;
        }
        try {
            return Integer.parseInt(visible) == Integer.parseInt(address); // "03" and "3"
        } catch (NumberFormatException e) {
            return false;
        }
    }
}
