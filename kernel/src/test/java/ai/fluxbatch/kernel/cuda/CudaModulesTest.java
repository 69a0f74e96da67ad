package ai.fluxbatch.kernel.cuda;

import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;

class CudaModulesTest {

    @Test
    void compiledModuleIsAFatbin() {
        CudaModules.Image image = CudaModules.ternaryMatmul();
        Assumptions.assumeTrue(image.isPresent(), "no CUDA kernels in this build: " + image.missingReason());
        byte[] bytes = image.bytes();
        assertTrue(bytes.length > 1024, "fatbin of " + bytes.length + " bytes");
        assertTrue(CudaModules.isFatbin(bytes), "no fatbin magic");
        assertNull(image.missingReason());
    }

    @Test
    void absentModuleSaysWhy() {
        CudaModules.Image image = CudaModules.load("no_such_module");
        assertFalse(image.isPresent());
        assertTrue(image.missingReason().startsWith("this build has no CUDA kernels"), image.missingReason());
        assertThrows(IllegalStateException.class, image::bytes);
    }

    @Test
    void magicIsLittleEndianBa55ed50() {
        byte[] header = new byte[16];
        header[0] = 0x50;
        header[1] = (byte) 0xed;
        header[2] = 0x55;
        header[3] = (byte) 0xba;
        assertTrue(CudaModules.isFatbin(header));
        header[0] = 0x7f; // an ELF cubin
        assertFalse(CudaModules.isFatbin(header));
        assertFalse(CudaModules.isFatbin(new byte[3]));
    }

    /** Runs the kernels on a GPU against {@link KernelPort}; needs a GPU and the CUDA backend's driver binding. */
    @Test
    void kernelsOnGpu() {
        boolean gpu = Files.isExecutable(Path.of("/usr/bin/nvidia-smi")) || Files.exists(Path.of("/dev/nvidia0"));
        Assumptions.assumeTrue(
                gpu,
                "no NVIDIA GPU on this machine (nvidia-smi and /dev/nvidia0 absent): the CUDA"
                        + " ternary matmul kernels are not executed here");
        Assumptions.assumeTrue(
                false,
                "an NVIDIA GPU is present, but this build has no CUDA driver binding yet (it"
                        + " comes with the CUDA backend): the kernels are not executed");
    }
}
