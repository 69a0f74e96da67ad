package ai.fluxbatch.model.safetensors;

import static ai.fluxbatch.model.safetensors.SafetensorsWriterTest.assertMessage;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class ShardedSafetensorsTest {
    @TempDir
    Path dir;

    private Path index;

    @BeforeEach
    void twoShards() {
        new SafetensorsWriter()
                .addF32("a", new long[] {2}, new float[] {1, 2})
                .addF32("b", new long[] {1}, new float[] {3})
                .write(dir.resolve("m-00001-of-00002.safetensors"));
        new SafetensorsWriter()
                .addI64("c", new long[] {3}, new long[] {4, 5, 6})
                .write(dir.resolve("m-00002-of-00002.safetensors"));
        index = dir.resolve("m.safetensors.index.json");
    }

    private void writeIndex(String json) throws IOException {
        Files.writeString(index, json);
    }

    @Test
    void readsTensorsAcrossShards() throws IOException {
        writeIndex("{\"metadata\": {\"total_size\": 36, \"format\": \"pt\"}, \"weight_map\": {"
                + "\"a\": \"m-00001-of-00002.safetensors\", \"b\": \"m-00001-of-00002.safetensors\","
                + " \"c\": \"m-00002-of-00002.safetensors\"}}");
        try (TensorSource s = TensorSources.open(index)) {
            assertInstanceOf(ShardedSafetensors.class, s);
            assertEquals(List.of("a", "b", "c"), List.copyOf(s.names()));
            assertArrayEquals(new float[] {1, 2}, s.floats("a"));
            assertArrayEquals(new long[] {4, 5, 6}, s.longs("c"));
            assertArrayEquals(new double[] {3}, s.doubles("b"));
            assertEquals(DType.I64, s.info("c").dtype());
            assertEquals(
                    dir.resolve("m-00002-of-00002.safetensors"), s.file("c").toAbsolutePath());
            assertEquals(5L, s.bytes("c", 8, 8).getLong(0));
            assertEquals(Map.of("total_size", "36", "format", "pt"), s.metadata());
            SafetensorsException e = assertThrows(SafetensorsException.class, () -> s.info("zz"));
            assertMessage(e, "tensor 'zz' not found in " + index);
        }
    }

    @Test
    void shardThatLacksItsTensor() throws IOException {
        writeIndex("{\"weight_map\": {\"a\": \"m-00001-of-00002.safetensors\","
                + " \"c\": \"m-00001-of-00002.safetensors\"}}");
        SafetensorsException e = assertThrows(SafetensorsException.class, () -> ShardedSafetensors.open(index));
        assertMessage(e, "tensor 'c'", "shard 'm-00001-of-00002.safetensors'", "index " + index, "does not contain");
    }

    @Test
    void missingShard() throws IOException {
        writeIndex("{\"weight_map\": {\"a\": \"gone.safetensors\"}}");
        SafetensorsException e = assertThrows(SafetensorsException.class, () -> ShardedSafetensors.open(index));
        assertMessage(e, "shard 'gone.safetensors'", index.toString(), "does not exist");
    }

    @Test
    void shardOutsideTheIndexFolder() throws IOException {
        writeIndex("{\"weight_map\": {\"a\": \"../elsewhere.safetensors\"}}");
        SafetensorsException e = assertThrows(SafetensorsException.class, () -> ShardedSafetensors.open(index));
        assertMessage(e, "'../elsewhere.safetensors'", index.toString(), "outside");
    }

    @Test
    void indexWithoutWeightMap() throws IOException {
        writeIndex("{\"metadata\": {}}");
        SafetensorsException e = assertThrows(SafetensorsException.class, () -> ShardedSafetensors.open(index));
        assertMessage(e, index.toString(), "\"weight_map\"");
    }

    @Test
    void indexThatIsNotJson() throws IOException {
        writeIndex("{\"weight_map\": ");
        SafetensorsException e = assertThrows(SafetensorsException.class, () -> ShardedSafetensors.open(index));
        assertMessage(e, index.toString(), "not valid JSON");
    }

    @Test
    void brokenShardNamesShardAndIndex() throws IOException {
        Files.write(dir.resolve("broken.safetensors"), new byte[3]);
        writeIndex("{\"weight_map\": {\"a\": \"m-00001-of-00002.safetensors\", \"x\": \"broken.safetensors\"}}");
        SafetensorsException e = assertThrows(SafetensorsException.class, () -> ShardedSafetensors.open(index));
        assertMessage(e, "shard 'broken.safetensors'", index.toString(), "shorter than the 8-byte");
    }
}
