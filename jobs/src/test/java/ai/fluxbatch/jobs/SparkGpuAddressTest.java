package ai.fluxbatch.jobs;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Optional;
import org.apache.spark.resource.ResourceInformation;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import scala.collection.immutable.Map;

class SparkGpuAddressTest {
    @Test
    void firstGpuAddressOfTheTask() {
        Map<String, ResourceInformation> resources = new Map.Map2<>(
                "fpga", new ResourceInformation("fpga", new String[] {"7"}),
                "gpu", new ResourceInformation("gpu", new String[] {"1", "2"}));
        assertEquals(Optional.of("1"), SparkGpuAddress.of(resources));
    }

    @Test
    void noGpuResource() {
        assertEquals(
                Optional.empty(),
                SparkGpuAddress.of(new Map.Map1<>("fpga", new ResourceInformation("fpga", new String[] {"0"}))));
        assertEquals(
                Optional.empty(),
                SparkGpuAddress.of(new Map.Map1<>("gpu", new ResourceInformation("gpu", new String[0]))));
    }

    @Test
    void outsideATask() {
        assertEquals(Optional.empty(), SparkGpuAddress.current());
    }

    @ParameterizedTest
    @CsvSource(
            delimiter = ';',
            value = {"0;0", "3;3", "' 5 ';5"})
    void withoutCudaVisibleDevicesTheOrdinalIsTheAddress(String address, int ordinal) {
        assertEquals(ordinal, SparkGpuAddress.cudaOrdinal(address, null));
    }

    @ParameterizedTest
    @CsvSource(
            delimiter = ';',
            value = {
                "3;2,3;1",
                "2;2,3;0",
                "3;'2, 3';1",
                "03;2,3;1",
                "0;0;0",
                "GPU-5678;GPU-1234,GPU-5678;1",
                "4;6,4,5;1"
            })
    void withCudaVisibleDevicesTheOrdinalIsThePositionInTheList(String address, String visible, int ordinal) {
        assertEquals(ordinal, SparkGpuAddress.cudaOrdinal(address, visible));
    }

    @ParameterizedTest
    @CsvSource(
            delimiter = ';',
            value = {"1;2,3", "0;''", "GPU-9;GPU-1"})
    void addressNotVisible(String address, String visible) {
        String m = assertThrows(IllegalArgumentException.class, () -> SparkGpuAddress.cudaOrdinal(address, visible))
                .getMessage();
        assertTrue(m.contains("not among CUDA_VISIBLE_DEVICES"), m);
    }

    @Test
    void notAnIndexWithoutCudaVisibleDevices() {
        assertThrows(IllegalArgumentException.class, () -> SparkGpuAddress.cudaOrdinal("GPU-1234", null));
        assertThrows(IllegalArgumentException.class, () -> SparkGpuAddress.cudaOrdinal("-1", null));
    }
}
