package ai.fluxbatch.kernel.cuda;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.fluxbatch.kernel.Tensor;
import ai.fluxbatch.kernel.TensorScope;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/** Device memory of the CUDA backend: scopes, the caching pool, reuse across steps, use after free. */
class CudaMemoryTest {
    private final EmulatedDevice device = new EmulatedDevice();
    private final CudaBackend gpu = new CudaBackend(device);

    @AfterEach
    void close() {
        gpu.close();
    }

    /** One "step": a few operations on x, of which only the result survives the scope. */
    private float[] step(Tensor x, Tensor w) {
        try (TensorScope scope = gpu.openScope()) {
            Tensor h = gpu.silu(gpu.linear(x, w, null));
            Tensor y = gpu.add(gpu.layerNorm(h, 1e-6f), h);
            return gpu.download(y);
        }
    }

    @Test
    void stepsAfterTheFirstAllocateNothing() {
        Tensor x = gpu.upload(new float[] {1, 2, 3, 4, 5, 6}, 2, 3);
        Tensor w = gpu.upload(new float[] {1, 0, 0, 0, 1, 0, 0, 0, 1, 1, 1, 1}, 4, 3);
        float[] first = step(x, w);
        long allocations = device.allocations();
        DeviceMemoryPool.Stats afterFirst = gpu.memory();
        for (int i = 0; i < 5; i++) {
            assertArrayEquals(first, step(x, w));
        }
        assertEquals(allocations, device.allocations(), "device allocations after the first step");
        assertEquals(afterFirst.inUseBytes(), gpu.memory().inUseBytes(), "bytes in live tensors after each step");
        assertEquals(2 * DeviceMemoryPool.GRANULE, gpu.memory().inUseBytes(), "only x and w stay");
    }

    /** A training step's backward operations: only the gradients kept by the caller survive the scope. */
    private float[] backwardStep(Tensor x, Tensor w, Tensor tw) {
        try (TensorScope scope = gpu.openScope()) {
            Tensor dy = gpu.silu(gpu.linear(x, w, null));
            Tensor dx = gpu.linearBackward(gpu.layerNormBackward(dy, dy, 1e-6f), w);
            Tensor t = gpu.reshape(dx, 1, 2, 3);
            Tensor a = gpu.attentionBackward(t, t, t, t, 1, 0.5f).key();
            Tensor g = gpu.ternaryLinearBackward(gpu.reshape(a, 2, 3), tw, dy, true)
                    .scale();
            return gpu.download(gpu.add(g, gpu.zeros(4)));
        }
    }

    @Test
    void backwardStepsAfterTheFirstAllocateNothingAndFreeTheirScratch() {
        Tensor x = gpu.upload(new float[] {1, 2, 3, 4, 5, 6}, 2, 3);
        Tensor w = gpu.upload(new float[] {1, 0, 0, 0, 1, 0, 0, 0, 1, 1, 1, 1}, 4, 3);
        Tensor tw = gpu.uploadTernary(
                new byte[] {(byte) 0b10_01_00, 0b01_10, 0b00_00_10}, 4, 3, new float[] {1, 0, -2, 0.5f});
        float[] first = backwardStep(x, w, tw);
        long allocations = device.allocations();
        long inUse = gpu.memory().inUseBytes();
        for (int i = 0; i < 3; i++) {
            assertArrayEquals(first, backwardStep(x, w, tw));
        }
        assertEquals(allocations, device.allocations(), "device allocations after the first step");
        assertEquals(inUse, gpu.memory().inUseBytes(), "bytes in live tensors after each step");
        assertEquals(4 * DeviceMemoryPool.GRANULE, gpu.memory().inUseBytes(), "only x, w and the ternary weight stay");
    }

    @Test
    void aKeptTensorMovesToTheEnclosingScope() {
        Tensor kept;
        Tensor dropped;
        try (TensorScope outer = gpu.openScope()) {
            try (TensorScope inner = gpu.openScope()) {
                kept = inner.keep(gpu.upload(new float[] {1, 2}, 2));
                dropped = gpu.upload(new float[] {3, 4}, 2);
            }
            assertArrayEquals(new float[] {1, 2}, gpu.download(kept));
            String m = assertThrows(IllegalStateException.class, () -> gpu.download(dropped))
                    .getMessage();
            assertTrue(m.contains("used after it was freed"), m);
        }
        assertThrows(IllegalStateException.class, () -> gpu.download(kept));
        assertEquals(0, gpu.memory().inUseBytes());
    }

    @Test
    void aViewSharesItsStorage() {
        try (TensorScope scope = gpu.openScope()) {
            Tensor t = gpu.upload(new float[] {1, 2, 3, 4}, 2, 2);
            Tensor view = gpu.reshape(t, 4);
            t.close();
            assertThrows(IllegalStateException.class, () -> gpu.download(view));
        }
    }

    @Test
    void retainedTensorsOutliveEveryScope() {
        Tensor cached;
        try (TensorScope outer = gpu.openScope();
                TensorScope inner = gpu.openScope()) {
            cached = gpu.retain(gpu.upload(new float[] {5}, 1));
        }
        assertArrayEquals(new float[] {5}, gpu.download(cached));
    }

    @Test
    void aDetachedScopeLeavesItsTensorsAliveUntilItsReleaseRuns() {
        Tensor weight;
        Runnable release;
        try (TensorScope outer = gpu.openScope()) {
            TensorScope load = gpu.openScope();
            weight = gpu.upload(new float[] {7, 8}, 2);
            release = load.detach();
            gpu.upload(new float[] {1}, 1); // the outer scope's again
            assertEquals(2 * DeviceMemoryPool.GRANULE, gpu.memory().inUseBytes());
            assertThrows(IllegalStateException.class, load::detach, "detached once");
        }
        assertArrayEquals(new float[] {7, 8}, gpu.download(weight), "the outer scope did not free it");
        assertEquals(DeviceMemoryPool.GRANULE, gpu.memory().inUseBytes());
        release.run();
        assertThrows(IllegalStateException.class, () -> gpu.download(weight));
        assertEquals(0, gpu.memory().inUseBytes());
        release.run(); // a second run frees nothing more
        assertEquals(0, gpu.memory().inUseBytes());
    }

    @Test
    void scopesCloseInReverseOrder() {
        TensorScope outer = gpu.openScope();
        TensorScope inner = gpu.openScope();
        assertThrows(IllegalStateException.class, outer::close);
        inner.close();
        outer.close();
    }

    @Test
    void aFullDeviceDropsTheCacheAndRetries() {
        EmulatedDevice small = new EmulatedDevice(4 * DeviceMemoryPool.GRANULE);
        try (CudaBackend b = new CudaBackend(small)) {
            try (TensorScope scope = b.openScope()) {
                b.upload(new float[128], 128);
                b.upload(new float[128], 128);
                b.upload(new float[128], 128);
            }
            assertEquals(3 * DeviceMemoryPool.GRANULE, b.memory().cachedBytes());
            Tensor big = b.upload(new float[512], 512);
            assertEquals(4 * DeviceMemoryPool.GRANULE, big.residentBytes());
            assertEquals(0, b.memory().cachedBytes(), "the cached blocks were freed to make room");
            DeviceOutOfMemoryException e =
                    assertThrows(DeviceOutOfMemoryException.class, () -> b.upload(new float[1], 1));
            assertTrue(e.getMessage().contains("live tensors"), e.getMessage());
        }
    }

    @Test
    void closingTheBackendFreesEverything() {
        gpu.upload(new float[1000], 1000);
        try (TensorScope scope = gpu.openScope()) {
            gpu.upload(new float[10], 10);
        }
        gpu.close();
        assertEquals(0, device.liveBytes());
    }

    @Test
    void aTernaryWeightKeepsItsPackedSize() {
        byte[] packed = new byte[1 * 64];
        Tensor w = gpu.uploadTernary(packed, 4, 64, new float[] {1, 1, 1, 1});
        assertEquals(GpuTernaryLayout.bytes(4, 64) + 16, w.residentBytes());
    }
}
