package ai.fluxbatch.jobs;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.fluxbatch.jobs.ExecutorBackends.Key;
import ai.fluxbatch.jobs.ExecutorBackends.Opened;
import ai.fluxbatch.jobs.ExecutorDevice.Resolution;
import ai.fluxbatch.kernel.Backend;
import ai.fluxbatch.kernel.DeviceKind;
import ai.fluxbatch.kernel.cpu.CpuBackend;
import ai.fluxbatch.kernel.cuda.GemmPrecision;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import org.junit.jupiter.api.Test;

/** One backend per key per JVM, opened once and logged once; a CUDA backend that will not open under auto and cuda. */
class ExecutorBackendsTest {
    private final List<Key> opened = new ArrayList<>();
    private final List<String> log = new ArrayList<>();

    private ExecutorBackends backends(Set<Integer> brokenOrdinals) {
        return new ExecutorBackends(
                key -> {
                    opened.add(key);
                    if (key.kind() == DeviceKind.CUDA && brokenOrdinals.contains(key.ordinal())) {
                        throw new IllegalStateException("cuInit failed: CUDA_ERROR_NO_DEVICE");
                    }
                    return new CpuBackend(1); // stands in for either
                },
                log::add);
    }

    @Test
    void opensEachKeyOnceAndLogsItsReasonOnce() {
        ExecutorBackends b = backends(Set.of());
        Opened first = b.get(Resolution.cuda(1, "Spark assigned this task GPU 1"), DeviceKind.AUTO, GemmPrecision.FP32);
        Opened again = b.get(Resolution.cuda(1, "Spark assigned this task GPU 1"), DeviceKind.CUDA, GemmPrecision.FP32);
        Opened cpu = b.get(Resolution.cpu("requested with --device cpu"), DeviceKind.CPU, GemmPrecision.BF16);
        Opened cpuAgain = b.get(Resolution.cpu("auto: no GPU"), DeviceKind.AUTO, GemmPrecision.FP32);
        assertEquals(Key.cuda(1, GemmPrecision.FP32), first.key());
        assertSame(first.backend(), again.backend());
        assertSame(cpu.backend(), cpuAgain.backend());
        assertEquals(Key.CPU, cpu.key());
        assertEquals(List.of(Key.cuda(1, GemmPrecision.FP32), Key.CPU), opened);
        assertEquals(2, log.size(), log.toString());
        assertTrue(
                log.get(0).startsWith("backend cuda:1/fp32 opened (--device auto): Spark assigned this task GPU 1"),
                log.get(0));
        assertTrue(log.get(1).startsWith("backend cpu opened (--device cpu): requested with --device cpu"), log.get(1));
        assertEquals(Set.of(Key.CPU, Key.cuda(1, GemmPrecision.FP32)), b.openKeys());
    }

    @Test
    void devicesAndPrecisionsAreBackendsOfTheirOwn() {
        ExecutorBackends b = backends(Set.of());
        Backend d0 = b.get(Resolution.cuda(0, "r"), DeviceKind.CUDA, GemmPrecision.FP32)
                .backend();
        Backend d1 = b.get(Resolution.cuda(1, "r"), DeviceKind.CUDA, GemmPrecision.FP32)
                .backend();
        Backend d0bf16 = b.get(Resolution.cuda(0, "r"), DeviceKind.CUDA, GemmPrecision.BF16)
                .backend();
        assertTrue(d0 != d1 && d0 != d0bf16 && d1 != d0bf16);
        assertEquals(3, opened.size());
    }

    @Test
    void autoFallsBackToTheCpuWhenCudaWillNotOpenAndTriesOnce() {
        ExecutorBackends b = backends(Set.of(0));
        Opened o = b.get(Resolution.cuda(0, "local mode"), DeviceKind.AUTO, GemmPrecision.FP32);
        assertEquals(Key.CPU, o.key());
        Opened again = b.get(Resolution.cuda(0, "local mode"), DeviceKind.AUTO, GemmPrecision.FP32);
        assertSame(o.backend(), again.backend());
        assertEquals(List.of(Key.cuda(0, GemmPrecision.FP32), Key.CPU), opened, "the broken device is tried once");
        assertTrue(log.get(0).contains("cuInit failed: CUDA_ERROR_NO_DEVICE"), log.toString());
        assertTrue(
                log.get(1)
                        .startsWith(
                                "backend cpu opened (--device auto): auto: the CUDA backend on device 0 failed to open:"
                                        + " cuInit failed"),
                log.toString());
    }

    @Test
    void cudaRethrowsWhenTheBackendWillNotOpen() {
        ExecutorBackends b = backends(Set.of(2));
        for (int attempt = 0; attempt < 2; attempt++) {
            IllegalStateException e = assertThrows(
                    IllegalStateException.class,
                    () -> b.get(
                            Resolution.cuda(2, "Spark assigned this task GPU 2"), DeviceKind.CUDA, GemmPrecision.BF16));
            assertTrue(
                    e.getMessage().startsWith("--device cuda: the CUDA backend on device 2 failed to open"),
                    e.getMessage());
            assertTrue(e.getMessage().contains("cuInit failed: CUDA_ERROR_NO_DEVICE"), e.getMessage());
        }
        assertEquals(List.of(Key.cuda(2, GemmPrecision.BF16)), opened);
        assertEquals(Set.of(), b.openKeys());
    }

    @Test
    void keys() {
        assertEquals("cpu", Key.CPU.toString());
        assertEquals("cuda:3/bf16", Key.cuda(3, GemmPrecision.BF16).toString());
        assertEquals(Key.CPU, Key.of(Resolution.cpu("x"), GemmPrecision.BF16));
        assertThrows(IllegalArgumentException.class, () -> new Key(DeviceKind.AUTO, -1, null));
        assertThrows(IllegalArgumentException.class, () -> new Key(DeviceKind.CPU, 0, null));
        assertThrows(IllegalArgumentException.class, () -> Key.cuda(0, null));
    }
}
