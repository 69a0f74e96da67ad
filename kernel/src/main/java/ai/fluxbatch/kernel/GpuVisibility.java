package ai.fluxbatch.kernel;

import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.TimeUnit;

/**
 * Whether an NVIDIA GPU is visible to this process: the evidence found, or empty when there is none. The system probe
 * looks for the device node {@code /dev/nvidia0} and then asks {@code nvidia-smi -L}; tests pass their own node and
 * command to {@link #probing}, or a lambda.
 */
@FunctionalInterface
public interface GpuVisibility {
    /** What shows a GPU ("/dev/nvidia0 exists", "nvidia-smi -L lists GPU 0: ..."), or empty when none is visible. */
    Optional<String> detect();

    /** The real machine: {@code /dev/nvidia0}, then {@code nvidia-smi -L} found on the PATH. */
    static GpuVisibility system() {
        return probing(Path.of("/dev/nvidia0"), List.of("nvidia-smi", "-L"));
    }

    /** No GPU anywhere. */
    static GpuVisibility none() {
        return Optional::empty;
    }

    /**
     * A GPU is visible when {@code deviceNode} exists, or when {@code command} exits 0 within 10 seconds printing a
     * line that starts with "GPU " (as {@code nvidia-smi -L} does). A command that cannot be started counts as none.
     */
    static GpuVisibility probing(Path deviceNode, List<String> command) {
        List<String> cmd = List.copyOf(command);
        return () -> {
            if (Files.exists(deviceNode)) {
                return Optional.of(deviceNode + " exists");
            }
            return listedGpu(cmd).map(line -> String.join(" ", cmd) + " lists " + line);
        };
    }

    private static Optional<String> listedGpu(List<String> command) {
        Process process;
        try {
            process = new ProcessBuilder(command)
                    .redirectErrorStream(true)
                    .redirectInput(ProcessBuilder.Redirect.from(new java.io.File("/dev/null")))
                    .start();
        } catch (IOException | RuntimeException e) {
            return Optional.empty(); // not installed
        }
        try (InputStream in = process.getInputStream()) {
            // nvidia-smi -L prints a line per GPU; more than 64 KiB is not that
            String out = new String(in.readNBytes(1 << 16), StandardCharsets.UTF_8);
            if (!process.waitFor(10, TimeUnit.SECONDS) || process.exitValue() != 0) {
                return Optional.empty();
            }
            return out.lines()
                    .map(String::strip)
                    .filter(l -> l.startsWith("GPU "))
                    .findFirst();
        } catch (IOException e) {
            return Optional.empty();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return Optional.empty();
        } finally {
            process.destroyForcibly();
        }
    }
}
