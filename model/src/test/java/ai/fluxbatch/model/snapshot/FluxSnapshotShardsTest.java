package ai.fluxbatch.model.snapshot;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.fluxbatch.model.ModelException;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** A sharded transformer under a name of its own: the index is the transformer when the others are its shards. */
class FluxSnapshotShardsTest {
    @TempDir
    Path tmp;

    @Test
    void anIndexBesideItsShardsIsTheTransformer() throws IOException {
        Files.writeString(tmp.resolve("model.safetensors.index.json"), "{}");
        Files.writeString(tmp.resolve("model-00001-of-00002.safetensors"), "");
        Files.writeString(tmp.resolve("model-00002-of-00002.safetensors"), "");
        Files.writeString(tmp.resolve("ae.safetensors"), "");
        assertEquals(
                tmp.resolve("model.safetensors.index.json"),
                FluxSnapshot.open(tmp).transformerFile());
    }

    @Test
    void aFileThatIsNotOneOfItsShardsIsStillAmbiguous() throws IOException {
        Files.writeString(tmp.resolve("model.safetensors.index.json"), "{}");
        Files.writeString(tmp.resolve("model-00001-of-00002.safetensors"), "");
        Files.writeString(tmp.resolve("other.safetensors"), "");
        ModelException e =
                assertThrows(ModelException.class, () -> FluxSnapshot.open(tmp).transformerFile());
        assertTrue(e.getMessage().contains("several transformer checkpoints"), e.getMessage());
    }
}
