package ai.fluxbatch.model.safetensors;

import static ai.fluxbatch.model.safetensors.SafetensorsWriterTest.assertMessage;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

class TensorSourcesTest {
    @TempDir
    Path dir;

    @Test
    void opensASafetensorsFile() {
        Path file = dir.resolve("x.safetensors");
        new SafetensorsWriter().addF32("x", new long[] {1}, new float[] {2}).write(file);
        try (TensorSource s = TensorSources.open(file)) {
            assertInstanceOf(SafetensorsFile.class, s);
            assertEquals(2f, s.floats("x")[0]);
        }
    }

    @ParameterizedTest
    @ValueSource(strings = {"pytorch_model.bin", "model.pt", "model.pth", "sd.ckpt", "state.pkl", "MODEL.BIN"})
    void refusesPickleFiles(String name) throws IOException {
        Path file = Files.write(dir.resolve(name), new byte[] {(byte) 0x80, 2});
        SafetensorsException e = assertThrows(SafetensorsException.class, () -> TensorSources.open(file));
        assertMessage(e, "refusing to read " + file, "pickle", "arbitrary code", "safetensors library");
    }

    @Test
    void refusesOtherExtensions() throws IOException {
        Path file = Files.writeString(dir.resolve("weights.npz"), "x");
        SafetensorsException e = assertThrows(SafetensorsException.class, () -> TensorSources.open(file));
        assertMessage(e, file.toString(), ".safetensors", ".safetensors.index.json");
    }

    @Test
    void missingFile() {
        Path file = dir.resolve("absent.safetensors");
        SafetensorsException e = assertThrows(SafetensorsException.class, () -> TensorSources.open(file));
        assertMessage(e, file.toString(), "no such file");
    }

    @Test
    void dtypeNamesAndSizes() {
        assertEquals(DType.BF16, DType.fromName("BF16"));
        assertEquals(2, DType.BF16.size());
        assertEquals(8, DType.I64.size());
        assertMessage(
                assertThrows(SafetensorsException.class, () -> DType.fromName("bf16")),
                "'bf16'",
                "supported: F64, F32, F16, BF16, I64, I32, I8, U8");
    }
}
