package ai.fluxbatch.kernel;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Optional;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.condition.DisabledOnOs;
import org.junit.jupiter.api.condition.OS;
import org.junit.jupiter.api.io.TempDir;

/** The probe against a fake /dev folder and fake nvidia-smi scripts. */
@DisabledOnOs(OS.WINDOWS)
class GpuVisibilityTest {
    @TempDir
    Path tmp;

    @Test
    void deviceNodeIsEnough() throws IOException {
        Path dev = Files.createDirectories(tmp.resolve("dev"));
        Files.createFile(dev.resolve("nvidia0"));
        GpuVisibility probe = GpuVisibility.probing(
                dev.resolve("nvidia0"), List.of(tmp.resolve("absent").toString()));
        assertEquals(Optional.of(dev.resolve("nvidia0") + " exists"), probe.detect());
    }

    @Test
    void nvidiaSmiListingAGpu() throws IOException {
        Path smi = script(
                "nvidia-smi", "echo 'GPU 0: NVIDIA H200 (UUID: GPU-1234)'\necho 'GPU 1: NVIDIA H200 (UUID: GPU-5678)'");
        Optional<String> found = GpuVisibility.probing(tmp.resolve("dev/nvidia0"), List.of(smi.toString(), "-L"))
                .detect();
        assertEquals(Optional.of(smi + " -L lists GPU 0: NVIDIA H200 (UUID: GPU-1234)"), found);
    }

    @Test
    void nvidiaSmiListingNothing() throws IOException {
        Path smi = script("nvidia-smi", "echo 'No devices found.'");
        assertEquals(
                Optional.empty(),
                GpuVisibility.probing(tmp.resolve("dev/nvidia0"), List.of(smi.toString(), "-L"))
                        .detect());
    }

    @Test
    void nvidiaSmiFailing() throws IOException {
        Path smi = script("nvidia-smi", "echo 'GPU 0: ghost'\necho 'NVIDIA-SMI has failed' >&2\nexit 9");
        assertEquals(
                Optional.empty(),
                GpuVisibility.probing(tmp.resolve("dev/nvidia0"), List.of(smi.toString(), "-L"))
                        .detect());
    }

    @Test
    void neitherNodeNorCommand() {
        GpuVisibility probe = GpuVisibility.probing(
                tmp.resolve("dev/nvidia0"), List.of(tmp.resolve("no-smi").toString(), "-L"));
        assertEquals(Optional.empty(), probe.detect());
    }

    @Test
    void systemProbeAnswers() {
        Optional<String> found = GpuVisibility.system().detect(); // whatever this machine has, without throwing
        found.ifPresent(s -> assertTrue(s.contains("nvidia"), s));
    }

    private Path script(String name, String body) throws IOException {
        Path file = tmp.resolve(name);
        Files.writeString(file, "#!/bin/sh\n" + body + "\n");
        assertTrue(file.toFile().setExecutable(true));
        return file;
    }
}
