package ai.fluxbatch.kernel;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.junit.jupiter.params.provider.ValueSource;

class DeviceKindTest {
    @ParameterizedTest
    @CsvSource({"auto,AUTO", "AUTO,AUTO", "Cpu,CPU", "cpu,CPU", "cuda,CUDA", "CUDA,CUDA", "' cuda ',CUDA"})
    void parsesIgnoringCase(String text, DeviceKind expected) {
        assertEquals(expected, DeviceKind.parse(text));
    }

    @ParameterizedTest
    @ValueSource(strings = {"bogus", "gpu", "", "cuda:0"})
    void rejectsOthersListingTheChoices(String text) {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> DeviceKind.parse(text));
        assertTrue(e.getMessage().contains("'" + text + "'"), e.getMessage());
        assertTrue(e.getMessage().contains("auto, cpu, cuda"), e.getMessage());
    }

    @Test
    void rejectsNull() {
        assertThrows(IllegalArgumentException.class, () -> DeviceKind.parse(null));
    }

    @Test
    void optionNames() {
        assertEquals("cuda", DeviceKind.CUDA.optionName());
        assertEquals("auto, cpu, cuda", DeviceKind.choices());
    }
}
