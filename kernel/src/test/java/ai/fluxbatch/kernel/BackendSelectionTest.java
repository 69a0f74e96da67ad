package ai.fluxbatch.kernel;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.fluxbatch.kernel.BackendSelection.Decision;
import ai.fluxbatch.kernel.cuda.CudaModules;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;

/** Every (requested, GPU visible, CUDA backend built) combination. */
class BackendSelectionTest {
    private static final Optional<String> MISSING = Optional.of("this build has no CUDA kernels");

    private static final GpuVisibility GPU = () -> Optional.of("/dev/nvidia0 exists");
    private static final GpuVisibility NO_GPU = GpuVisibility.none();

    @Test
    void cpuIsAlwaysTheCpuAndProbesNothing() {
        AtomicInteger probes = new AtomicInteger();
        GpuVisibility counting = () -> {
            probes.incrementAndGet();
            return Optional.of("x");
        };
        for (Optional<String> cuda : List.of(MISSING, Optional.<String>empty())) {
            Decision d = BackendSelection.select(DeviceKind.CPU, counting, cuda);
            assertEquals(DeviceKind.CPU, d.kind());
            assertEquals("requested with --device cpu", d.reason());
        }
        assertEquals(0, probes.get());
    }

    @Test
    void autoWithoutGpu() {
        for (Optional<String> cuda : List.of(MISSING, Optional.<String>empty())) {
            Decision d = BackendSelection.select(DeviceKind.AUTO, NO_GPU, cuda);
            assertEquals(DeviceKind.CPU, d.kind());
            assertEquals("auto: no NVIDIA GPU visible, using the CPU backend", d.reason());
        }
    }

    @Test
    void autoWithGpuButNoCudaBackend() {
        Decision d = BackendSelection.select(DeviceKind.AUTO, GPU, MISSING);
        assertEquals(DeviceKind.CPU, d.kind());
        assertEquals(
                "auto: a GPU is visible (/dev/nvidia0 exists) but this build has no CUDA kernels,"
                        + " using the CPU backend",
                d.reason());
    }

    @Test
    void autoWithGpuAndCudaBackend() {
        Decision d = BackendSelection.select(DeviceKind.AUTO, GPU, Optional.empty());
        assertEquals(DeviceKind.CUDA, d.kind());
        assertTrue(d.reason().startsWith("auto: a GPU is visible (/dev/nvidia0 exists)"), d.reason());
        assertEquals("cuda (" + d.reason() + ")", d.toString());
    }

    @Test
    void cudaWithGpuAndBackend() {
        Decision d = BackendSelection.select(DeviceKind.CUDA, GPU, Optional.empty());
        assertEquals(DeviceKind.CUDA, d.kind());
        assertTrue(d.reason().contains("--device cuda"), d.reason());
    }

    @Test
    void cudaWithoutGpu() {
        String m = assertThrows(
                        IllegalArgumentException.class,
                        () -> BackendSelection.select(DeviceKind.CUDA, NO_GPU, Optional.empty()))
                .getMessage();
        assertTrue(m.contains("no NVIDIA GPU is visible"), m);
        assertFalse(m.contains("no CUDA backend"), m);
    }

    @Test
    void cudaWithGpuButNoBackend() {
        String m = assertThrows(
                        IllegalArgumentException.class, () -> BackendSelection.select(DeviceKind.CUDA, GPU, MISSING))
                .getMessage();
        assertTrue(m.contains("this build has no CUDA kernels"), m);
        assertFalse(m.contains("no NVIDIA GPU"), m);
    }

    @Test
    void cudaWithNeither() {
        String m = assertThrows(
                        IllegalArgumentException.class, () -> BackendSelection.select(DeviceKind.CUDA, NO_GPU, MISSING))
                .getMessage();
        assertTrue(m.contains("no NVIDIA GPU is visible"), m);
        assertTrue(m.contains("this build has no CUDA kernels"), m);
    }

    @Test
    void thisBuildsAvailabilityDecidesAuto() {
        Optional<String> missing = CudaAvailability.missing();
        assertEquals(
                missing.isEmpty() ? DeviceKind.CUDA : DeviceKind.CPU,
                BackendSelection.select(DeviceKind.AUTO, GPU).kind(),
                missing.orElse("available"));
    }

    @Test
    void aBuildWithKernelsAndJavaCppCanRunCuda() {
        Assumptions.assumeTrue(
                CudaModules.load(CudaModules.OPS).isPresent(), "this build compiled no CUDA kernels (no nvcc)");
        assertEquals(Optional.empty(), CudaAvailability.missing());
    }

    @Test
    void aDecisionIsCpuOrCuda() {
        assertThrows(IllegalArgumentException.class, () -> new Decision(DeviceKind.AUTO, "x"));
    }
}
