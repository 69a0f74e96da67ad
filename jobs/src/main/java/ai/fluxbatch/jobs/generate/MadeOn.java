package ai.fluxbatch.jobs.generate;

import ai.fluxbatch.jobs.ExecutorBackends;
import ai.fluxbatch.kernel.DeviceKind;
import java.io.Serializable;
import java.util.List;
import java.util.Locale;

/**
 * Where an image was made: {@code device} is {@code cpu} or {@code cuda:N} (the task's CUDA ordinal), {@code backend}
 * the backend's own description ({@code cpu(16 threads)}, {@code cuda(NVIDIA H100 ...)}). Recorded in the metadata
 * table and counted on the driver, so that a job whose tasks got no GPU under {@code --device auto} says so.
 */
public record MadeOn(String device, String backend) implements Serializable {
    /** The device a metadata row's {@code device} names: a GPU when it starts with this. */
    static final String CUDA_PREFIX = "cuda:";

    /**
     * Where the running task makes its images: the backend {@link ExecutorBackends#forCurrentTask} gives it (the
     * one its engine runs on, opened once per JVM; the CPU's where a CUDA backend fell back).
     */
    static MadeOn currentTask(GenerateSettings s) {
        ExecutorBackends.Opened opened = ExecutorBackends.forCurrentTask(s.device(), s.gemmPrecision());
        String device = opened.key().kind() == DeviceKind.CUDA
                ? CUDA_PREFIX + opened.key().ordinal()
                : "cpu";
        return new MadeOn(device, opened.backend().name());
    }

    /** Whether a row's {@code device} column names a GPU. */
    static boolean isGpu(String device) {
        return device != null && device.startsWith(CUDA_PREFIX);
    }

    /** Images written on a GPU and on a CPU. */
    public record Count(long gpu, long cpu) {
        /** "0 on a GPU, 4 on a CPU". */
        @Override
        public String toString() {
            return String.format(Locale.ROOT, "%d on a GPU, %d on a CPU", gpu, cpu);
        }
    }

    /** How many of {@code results} were written ({@code ok}) on a GPU and how many on a CPU. */
    public static Count count(List<ImageResult> results) {
        long gpu = 0, cpu = 0;
        for (ImageResult r : results) {
            if (r.status().equals(ImageResult.OK) && r.device() != null) {
                if (isGpu(r.device())) {
                    gpu++;
                } else {
                    cpu++;
                }
            }
        }
        return new Count(gpu, cpu);
    }
}
