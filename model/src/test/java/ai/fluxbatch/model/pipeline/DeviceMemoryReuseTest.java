package ai.fluxbatch.model.pipeline;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.fluxbatch.kernel.cuda.CudaBackend;
import ai.fluxbatch.kernel.cuda.DeviceMemoryPool;
import ai.fluxbatch.kernel.cuda.EmulatedDevice;
import ai.fluxbatch.model.Golden;
import java.util.List;
import org.junit.jupiter.api.Test;

/**
 * On the CUDA backend (emulated device), a pipeline allocates device memory while it makes its first image and
 * never again for images of the same size: every step, text encoding and decode hands its blocks back to the pool,
 * and only the weights stay in use between images.
 */
class DeviceMemoryReuseTest {
    @Test
    void theSecondImageAllocatesNothing() {
        EmulatedDevice device = new EmulatedDevice();
        try (CudaBackend backend = new CudaBackend(device)) {
            FluxPipeline pipeline = FluxPipeline.load(Golden.path("flux-tiny-dev"), backend);
            long weights = backend.memory().inUseBytes();
            GenerationParams p = new GenerationParams(32, 48, 3, 3.5f);

            FluxPipeline.Batch first =
                    pipeline.generate(List.of(pipeline.embed("a red circle")), new long[] {1}, p, s -> {});
            long allocations = device.allocations();
            DeviceMemoryPool.Stats afterFirst = backend.memory();
            // the weights, and T5's relative position bias (float32 [heads, length, length]) cached on first use:
            // flux-tiny-dev's T5 has 4 heads and pads prompts to 512 tokens
            int heads = 4, length = 512;
            long t5Bias = 4L * heads * length * length;
            assertEquals(weights + t5Bias, afterFirst.inUseBytes(), "bytes in use between images");

            FluxPipeline.Batch second =
                    pipeline.generate(List.of(pipeline.embed("a blue square")), new long[] {1}, p, s -> {});
            assertEquals(allocations, device.allocations(), "device allocations during the second image");
            assertEquals(afterFirst.inUseBytes(), backend.memory().inUseBytes());
            assertEquals(afterFirst.peakDeviceBytes(), backend.memory().peakDeviceBytes());
            FluxPipeline.Batch again =
                    pipeline.generate(List.of(pipeline.embed("a red circle")), new long[] {1}, p, s -> {});
            assertArrayEquals(first.latents(), again.latents(), "the same image again");
        }
    }

    @Test
    void closingAPipelineFreesItsWeightsAndLeavesTheBackendOpen() {
        EmulatedDevice device = new EmulatedDevice();
        try (CudaBackend backend = new CudaBackend(device)) {
            FluxPipeline first = FluxPipeline.load(Golden.path("flux-tiny-dev"), backend);
            long weights = backend.memory().inUseBytes();
            assertTrue(weights > 0, "the weights are in device memory");
            first.close();
            assertEquals(0, backend.memory().inUseBytes(), "bytes in use after close");
            first.close(); // again: nothing more to free
            GenerationParams p = new GenerationParams(32, 48, 1, 3.5f);
            float[] latents = new float[16 * p.latentHeight() * p.latentWidth()];
            IllegalStateException e =
                    assertThrows(IllegalStateException.class, () -> first.decode(latents, 1, p), "decode after close");
            assertTrue(e.getMessage().contains("used after it was freed"), e.getMessage());

            FluxPipeline second = FluxPipeline.load(Golden.path("flux-tiny-dev"), backend); // the same backend
            assertEquals(weights, backend.memory().inUseBytes(), "the failed decode left nothing behind");
            second.close();
            assertEquals(0, backend.memory().inUseBytes());
        }
    }
}
