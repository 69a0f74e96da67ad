package ai.fluxbatch.model.snapshot;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.fluxbatch.model.Golden;
import ai.fluxbatch.model.JsonFiles;
import ai.fluxbatch.model.ModelException;
import ai.fluxbatch.model.flux.FluxConfig;
import ai.fluxbatch.model.flux.FluxConfigReader;
import ai.fluxbatch.model.safetensors.TensorSource;
import ai.fluxbatch.model.safetensors.TensorSources;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * The default image size from a snapshot's configs, as diffusers derives it (transformer sample_size, else 128, times
 * 2^(VAE blocks - 1)), and the variant's T5 length and steps, on full-size synthetic FLUX.1 snapshots (all-zero sparse
 * files: nothing runs) and the miniatures.
 */
class SampleSizeTest {
    @TempDir
    Path tmp;

    @ParameterizedTest
    @CsvSource({"flux1-dev-layout.json, 512, 50", "flux1-schnell-layout.json, 256, 4"})
    void aFullSizeFlux1SnapshotDefaultsTo1024AndItsVariantsLengthAndSteps(String layout, int t5Length, int steps)
            throws IOException {
        Path dir = tmp.resolve("synthetic");
        SyntheticSnapshot.writeZeros(Golden.path(layout), dir, new int[] {16, 56, 56});
        FluxSnapshot snapshot = FluxSnapshot.open(dir);
        try (TensorSource weights = TensorSources.open(snapshot.transformerFile())) {
            FluxConfig config =
                    FluxConfigReader.derive(weights, snapshot.transformerConfig(), snapshot.transformerConfigFile());
            assertEquals(3072, config.hidden(), "the full FLUX.1 layout");
            assertEquals(38, config.depthSingle());
            assertTrue(Files.size(snapshot.transformerFile()) > 23_000_000_000L, "every byte of 23.8 GB is there");
            String last = weights.names().last();
            java.nio.ByteBuffer tail = weights.bytes(last, weights.info(last).byteLength() - 64, 64);
            byte[] bytes = new byte[64];
            tail.get(bytes);
            assertArrayEquals(new byte[64], bytes, "the end of " + last + " reads as zeros");
        }
        SampleSize size = snapshot.defaultSampleSize();
        assertEquals(new SampleSize(128, 8, false), size);
        assertEquals(1024, size.pixels());
        assertEquals(t5Length, snapshot.t5MaxLength());
        assertEquals(steps, snapshot.defaultSteps());
    }

    @Test
    void theShippedMiniatureDefaultsTo64FromItsOwnConfig() {
        Path shipped = Path.of(System.getProperty("fluxbatch.root", "..")).resolve("models/flux-shapes-dev");
        SampleSize size = FluxSnapshot.open(shipped).defaultSampleSize();
        assertEquals(new SampleSize(8, 8, true), size);
        assertEquals(64, size.pixels());
        assertEquals("sample_size 8 x VAE scale factor 8", size.describe());
    }

    @Test
    void aConfigWithoutSampleSizeGetsFlux1sAsTheGoldenMiniaturesDo() {
        SampleSize size = FluxSnapshot.open(Golden.path("flux-tiny-dev")).defaultSampleSize();
        assertEquals(1024, size.pixels());
        assertFalse(size.configured());
        assertTrue(size.describe().contains("(FLUX.1's: the transformer config has none)"), size.describe());
    }

    @Test
    void theScaleFactorFollowsTheNumberOfAutoencoderBlocks() throws IOException {
        Path dir = snapshot("{\"sample_size\": 32}", "{\"block_out_channels\": [64, 128, 256]}");
        assertEquals(new SampleSize(32, 4, true), FluxSnapshot.open(dir).defaultSampleSize());
        assertEquals(128, FluxSnapshot.open(dir).defaultSampleSize().pixels());
        dir = snapshot("{\"sample_size\": null}", "{\"block_out_channels\": [64]}");
        assertEquals(new SampleSize(128, 1, false), FluxSnapshot.open(dir).defaultSampleSize());
    }

    @ParameterizedTest
    @ValueSource(strings = {"0", "-8", "1.5", "\"64\"", "[8]", "4294967296"})
    void aBadSampleSizeIsRefusedNamingTheFile(String value) throws IOException {
        Path dir = snapshot("{\"sample_size\": " + value + "}", "{\"block_out_channels\": [1, 2, 3, 4]}");
        ModelException e =
                assertThrows(ModelException.class, () -> FluxSnapshot.open(dir).defaultSampleSize());
        assertTrue(
                e.getMessage().contains(dir.resolve("transformer/config.json") + ": sample_size is "), e.getMessage());
        assertTrue(e.getMessage().contains("expected a positive integer"), e.getMessage());
    }

    @Test
    void aMissingOrIncompleteAutoencoderConfigIsRefusedNamingIt() throws IOException {
        Path dir = snapshot("{}", null);
        ModelException e =
                assertThrows(ModelException.class, () -> FluxSnapshot.open(dir).defaultSampleSize());
        assertTrue(e.getMessage().contains(dir.resolve("vae/config.json") + " is missing"), e.getMessage());
        assertTrue(e.getMessage().contains("block_out_channels"), e.getMessage());

        for (String vae : new String[] {"{}", "{\"block_out_channels\": []}", "{\"block_out_channels\": 4}"}) {
            Path other = snapshot("{}", vae);
            e = assertThrows(
                    ModelException.class, () -> FluxSnapshot.open(other).defaultSampleSize());
            assertTrue(
                    e.getMessage().contains(other.resolve("vae/config.json") + ": block_out_channels is "),
                    e.getMessage());
        }
    }

    @Test
    void aSampleSizeTooLargeForTheScaleFactorIsRefused() throws IOException {
        Path dir = snapshot("{\"sample_size\": 1000000000}", "{\"block_out_channels\": [1, 2, 3, 4]}");
        ModelException e =
                assertThrows(ModelException.class, () -> FluxSnapshot.open(dir).defaultSampleSize());
        assertTrue(e.getMessage().contains("is no image size"), e.getMessage());
    }

    private int count;

    /** A snapshot folder with these two configs ({@code vae} null: no vae/config.json). */
    private Path snapshot(String transformer, String vae) throws IOException {
        Path dir = tmp.resolve("s" + count++);
        Files.createDirectories(dir.resolve("transformer"));
        Files.writeString(dir.resolve("transformer/config.json"), transformer);
        if (vae != null) {
            Files.createDirectories(dir.resolve("vae"));
            Files.writeString(dir.resolve("vae/config.json"), vae);
        }
        JsonFiles.read(dir.resolve("transformer/config.json"), "a test config"); // the test's own JSON is valid
        return dir;
    }
}
