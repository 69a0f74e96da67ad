package ai.fluxbatch.jobs;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import ai.fluxbatch.jobs.ExecutorDevice.Resolution;
import ai.fluxbatch.kernel.DeviceKind;
import ai.fluxbatch.kernel.GpuVisibility;
import java.util.Optional;
import java.util.function.Supplier;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.junit.jupiter.params.provider.EnumSource;
import org.junit.jupiter.params.provider.ValueSource;

/** The executor-side rules of {@code --device}, with fake task addresses, GPUs and CUDA support: no Spark. */
class ExecutorDeviceTest {
    private static final GpuVisibility GPU = () -> Optional.of("/dev/nvidia0 exists");
    private static final Supplier<Optional<String>> CUDA_OK = Optional::empty;
    private static final Supplier<Optional<String>> NO_KERNELS =
            () -> Optional.of("the CUDA kernels were not compiled into this build");
    private static final GpuVisibility NOT_ASKED = () -> fail("GPU visibility asked");
    private static final Supplier<Optional<String>> CUDA_NOT_ASKED = () -> fail("CUDA availability asked");

    // cpu

    @ParameterizedTest
    @ValueSource(booleans = {false, true})
    void cpuIsTheCpuWhateverTheTaskHas(boolean local) {
        Resolution r = ExecutorDevice.resolve(DeviceKind.CPU, Optional.of("0"), local, "0", NOT_ASKED, CUDA_NOT_ASKED);
        assertEquals(DeviceKind.CPU, r.kind());
        assertEquals(-1, r.ordinal());
        assertEquals("requested with --device cpu", r.reason());
        assertEquals("cpu (requested with --device cpu)", r.toString());
    }

    // a task GPU address

    @ParameterizedTest
    @EnumSource(
            value = DeviceKind.class,
            names = {"AUTO", "CUDA"})
    void theTaskAddressWithoutCudaVisibleDevicesIsTheOrdinal(DeviceKind requested) {
        Resolution r = ExecutorDevice.resolve(requested, Optional.of("3"), false, null, NOT_ASKED, CUDA_OK);
        assertEquals(DeviceKind.CUDA, r.kind());
        assertEquals(3, r.ordinal(), "never device 0 by default");
        assertTrue(r.reason().contains("Spark assigned this task GPU 3, CUDA device 3"), r.reason());
        assertTrue(
                r.reason().startsWith(requested == DeviceKind.AUTO ? "auto: " : "requested with --device cuda"),
                r.reason());
        assertEquals("cuda:3", r.toString().substring(0, 6));
    }

    @ParameterizedTest
    @EnumSource(
            value = DeviceKind.class,
            names = {"AUTO", "CUDA"})
    void theTaskAddressMapsThroughCudaVisibleDevices(DeviceKind requested) {
        Resolution r = ExecutorDevice.resolve(requested, Optional.of("3"), false, "2,3", NOT_ASKED, CUDA_OK);
        assertEquals(DeviceKind.CUDA, r.kind());
        assertEquals(1, r.ordinal());
        assertTrue(r.reason().contains("CUDA device 1 under CUDA_VISIBLE_DEVICES=2,3"), r.reason());
    }

    @Test
    void theTaskAddressWinsInLocalModeToo() {
        Resolution r = ExecutorDevice.resolve(DeviceKind.AUTO, Optional.of("1"), true, null, NOT_ASKED, CUDA_OK);
        assertEquals(Resolution.cuda(1, r.reason()), r);
    }

    @Test
    void autoWithATaskAddressFallsBackWhenTheBuildCannotRunCuda() {
        Resolution r = ExecutorDevice.resolve(DeviceKind.AUTO, Optional.of("0"), false, null, NOT_ASKED, NO_KERNELS);
        assertEquals(DeviceKind.CPU, r.kind());
        assertEquals(-1, r.ordinal());
        assertEquals(
                "auto: Spark assigned this task GPU 0 but the CUDA kernels were not compiled into this build,"
                        + " using the CPU backend",
                r.reason());
    }

    @Test
    void cudaWithATaskAddressFailsWhenTheBuildCannotRunCuda() {
        IllegalStateException e = assertThrows(
                IllegalStateException.class,
                () -> ExecutorDevice.resolve(DeviceKind.CUDA, Optional.of("0"), false, null, NOT_ASKED, NO_KERNELS));
        assertEquals(
                "--device cuda: Spark assigned this task GPU 0 but the CUDA kernels were not compiled into this"
                        + " build",
                e.getMessage());
    }

    @Test
    void anAddressCudaCannotSeeFallsBackUnderAuto() {
        Resolution r = ExecutorDevice.resolve(DeviceKind.AUTO, Optional.of("5"), false, "2,3", NOT_ASKED, CUDA_OK);
        assertEquals(DeviceKind.CPU, r.kind());
        assertTrue(r.reason().contains("Spark GPU address '5' is not among CUDA_VISIBLE_DEVICES=2,3"), r.reason());
    }

    @Test
    void anAddressCudaCannotSeeFailsUnderCuda() {
        IllegalStateException e = assertThrows(
                IllegalStateException.class,
                () -> ExecutorDevice.resolve(DeviceKind.CUDA, Optional.of("GPU-abc"), false, null, NOT_ASKED, CUDA_OK));
        assertTrue(
                e.getMessage().startsWith("--device cuda: Spark assigned this task GPU GPU-abc but"), e.getMessage());
        assertTrue(e.getMessage().contains("CUDA_VISIBLE_DEVICES is not set"), e.getMessage());
    }

    // no task GPU address, local mode

    @ParameterizedTest
    @EnumSource(
            value = DeviceKind.class,
            names = {"AUTO", "CUDA"})
    void localModeWithAVisibleGpuTakesDeviceZero(DeviceKind requested) {
        Resolution r = ExecutorDevice.resolve(requested, Optional.empty(), true, null, GPU, CUDA_OK);
        assertEquals(DeviceKind.CUDA, r.kind());
        assertEquals(0, r.ordinal());
        assertTrue(r.reason().contains("local mode: the driver and the executor are one process"), r.reason());
        assertTrue(r.reason().contains("/dev/nvidia0 exists"), r.reason());
        assertTrue(r.reason().contains("using CUDA device 0"), r.reason());
    }

    @Test
    void localModeNamesCudaVisibleDevices() {
        Resolution r = ExecutorDevice.resolve(DeviceKind.AUTO, Optional.empty(), true, "6,7", GPU, CUDA_OK);
        assertEquals(0, r.ordinal());
        assertTrue(r.reason().contains("the first of CUDA_VISIBLE_DEVICES=6,7"), r.reason());
    }

    @Test
    void localModeAutoFallsBackWhenTheBuildCannotRunCuda() {
        Resolution r = ExecutorDevice.resolve(DeviceKind.AUTO, Optional.empty(), true, null, GPU, NO_KERNELS);
        assertEquals(DeviceKind.CPU, r.kind());
        assertTrue(
                r.reason().contains("sees a GPU (/dev/nvidia0 exists) but the CUDA kernels were not compiled"),
                r.reason());
    }

    @Test
    void localModeCudaFailsWhenTheBuildCannotRunCuda() {
        IllegalStateException e = assertThrows(
                IllegalStateException.class,
                () -> ExecutorDevice.resolve(DeviceKind.CUDA, Optional.empty(), true, null, GPU, NO_KERNELS));
        assertTrue(e.getMessage().contains("the CUDA kernels were not compiled"), e.getMessage());
    }

    @Test
    void localModeWithoutAGpuIsTheCpuUnderAuto() {
        Resolution r = ExecutorDevice.resolve(
                DeviceKind.AUTO, Optional.empty(), true, null, GpuVisibility.none(), CUDA_NOT_ASKED);
        assertEquals(DeviceKind.CPU, r.kind());
        assertTrue(r.reason().contains("Spark assigned this task no GPU"), r.reason());
        assertTrue(r.reason().contains("sees no NVIDIA GPU"), r.reason());
    }

    @Test
    void localModeWithoutAGpuFailsUnderCuda() {
        IllegalStateException e = assertThrows(
                IllegalStateException.class,
                () -> ExecutorDevice.resolve(
                        DeviceKind.CUDA, Optional.empty(), true, null, GpuVisibility.none(), CUDA_NOT_ASKED));
        assertTrue(e.getMessage().contains("Spark assigned this task no GPU"), e.getMessage());
    }

    // no task GPU address, a cluster

    @Test
    void aClusterTaskWithoutAGpuIsTheCpuUnderAuto() {
        // a visible GPU does not matter: Spark did not give it to this task, and another task may hold it
        Resolution r = ExecutorDevice.resolve(DeviceKind.AUTO, Optional.empty(), false, "0", NOT_ASKED, CUDA_NOT_ASKED);
        assertEquals(Resolution.cpu("auto: Spark assigned this task no GPU, using the CPU backend"), r);
        assertTrue(r.reason().contains("Spark assigned this task no GPU"));
    }

    @Test
    void aClusterTaskWithoutAGpuFailsUnderCudaNamingTheSettings() {
        IllegalStateException e = assertThrows(
                IllegalStateException.class,
                () -> ExecutorDevice.resolve(
                        DeviceKind.CUDA, Optional.empty(), false, null, NOT_ASKED, CUDA_NOT_ASKED));
        String m = e.getMessage();
        assertTrue(m.startsWith("--device cuda: Spark assigned this task no GPU"), m);
        assertTrue(m.contains("spark.executor.resource.gpu.amount"), m);
        assertTrue(m.contains("spark.task.resource.gpu.amount"), m);
        assertTrue(m.contains("conf/spark-defaults-gpu.conf.template"), m);
    }

    // the record and the master

    @Test
    void resolutionsAreCpuOrCudaWithAnOrdinal() {
        assertThrows(IllegalArgumentException.class, () -> new Resolution(DeviceKind.AUTO, -1, "x"));
        assertThrows(IllegalArgumentException.class, () -> new Resolution(DeviceKind.CPU, 0, "x"));
        assertThrows(IllegalArgumentException.class, () -> new Resolution(DeviceKind.CUDA, -1, "x"));
        assertThrows(NullPointerException.class, () -> Resolution.cpu(null));
        assertEquals("cuda:2 (why)", Resolution.cuda(2, "why").toString());
    }

    @ParameterizedTest
    @CsvSource({
        "local,true",
        "local[*],true",
        "local[4],true",
        "'local[2,3]',true",
        "' local[1] ',true",
        "local-cluster[2;1;1024],false",
        "spark://host:7077,false",
        "yarn,false",
        "k8s://https://h:443,false"
    })
    void localMasters(String master, boolean local) {
        assertEquals(local, ExecutorDevice.isLocalMaster(master.replace(';', ',')));
    }

    @Test
    void noMasterIsNotLocal() {
        assertFalse(ExecutorDevice.isLocalMaster(null));
    }
}
