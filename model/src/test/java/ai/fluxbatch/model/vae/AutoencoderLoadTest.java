package ai.fluxbatch.model.vae;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.fluxbatch.kernel.cpu.CpuBackend;
import ai.fluxbatch.model.Golden;
import ai.fluxbatch.model.ModelException;
import ai.fluxbatch.model.safetensors.SafetensorsFile;
import ai.fluxbatch.model.safetensors.SafetensorsWriter;
import ai.fluxbatch.model.safetensors.TensorInfo;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Bad snapshots: each is a ModelException that names the file or tensor and says what was expected. */
class AutoencoderLoadTest {
    private static final CpuBackend CPU = new CpuBackend(2);

    @TempDir
    Path dir;

    @AfterAll
    static void close() {
        CPU.close();
    }

    private static Path tinyConfig() {
        return Golden.path("flux-tiny-dev", "vae", "config.json");
    }

    /** A snapshot folder with the tiny config.json (or {@code config}) and no weights. */
    private Path snapshot(String config) throws IOException {
        Files.createDirectories(dir.resolve("vae"));
        if (config == null) {
            Files.copy(tinyConfig(), dir.resolve("vae/config.json"));
        } else {
            Files.writeString(dir.resolve("vae/config.json"), config);
        }
        return dir;
    }

    /** The tiny autoencoder's tensors, with {@code name} given {@code shape} (zeros), or left out if shape is null. */
    private void writeWeights(Path target, String name, long[] shape) {
        SafetensorsWriter w = new SafetensorsWriter();
        try (SafetensorsFile ae = SafetensorsFile.open(Golden.path("flux-tiny-dev", "ae.safetensors"))) {
            for (String n : ae.names()) {
                TensorInfo info = ae.info(n);
                if (n.equals(name)) {
                    if (shape != null) {
                        w.addF32(
                                n,
                                shape,
                                new float[Math.toIntExact(Arrays.stream(shape).reduce(1, (a, b) -> a * b))]);
                    }
                } else {
                    w.addF32(n, info.shape(), ae.floats(n));
                }
            }
        }
        w.write(target);
    }

    @Test
    void missingWeightsNameTheFile() throws IOException {
        Path root = snapshot(null);
        ModelException e = assertThrows(ModelException.class, () -> Autoencoder.load(root, CPU));
        assertTrue(e.getMessage().contains(root.resolve("ae.safetensors").toString()), e.getMessage());
        assertTrue(e.getMessage().contains("is missing"), e.getMessage());
    }

    @Test
    void pickleWeightsAreNeverRead() throws IOException {
        Path root = snapshot(null);
        Files.write(root.resolve("ae.ckpt"), new byte[] {(byte) 0x80, 2});
        ModelException e = assertThrows(ModelException.class, () -> Autoencoder.load(root, CPU));
        assertTrue(e.getMessage().contains("ae.ckpt"), e.getMessage());
        assertTrue(e.getMessage().contains("pickle files, which are never read"), e.getMessage());
    }

    @Test
    void missingConfigNamesTheFile() throws IOException {
        Files.copy(Golden.path("flux-tiny-dev", "ae.safetensors"), dir.resolve("ae.safetensors"));
        ModelException e = assertThrows(ModelException.class, () -> Autoencoder.load(dir, CPU));
        assertTrue(
                e.getMessage()
                        .contains(dir.resolve("vae").resolve("config.json").toString()),
                e.getMessage());
        assertTrue(e.getMessage().contains("autoencoder configuration"), e.getMessage());
    }

    @Test
    void missingFolderIsNamed() {
        Path nowhere = dir.resolve("nowhere");
        ModelException e = assertThrows(ModelException.class, () -> Autoencoder.load(nowhere, CPU));
        assertTrue(e.getMessage().contains(nowhere.toString()), e.getMessage());
    }

    @Test
    void tensorWithWrongShapeIsNamed() throws IOException {
        Path root = snapshot(null);
        writeWeights(root.resolve("ae.safetensors"), "decoder.up.1.block.0.conv2.weight", new long[] {32, 32, 3, 1});
        ModelException e = assertThrows(ModelException.class, () -> Autoencoder.load(root, CPU));
        assertEquals(
                "tensor 'decoder.up.1.block.0.conv2.weight' in " + root.resolve("ae.safetensors")
                        + " has shape [32, 32, 3, 1], expected [32, 32, 3, 3] for " + expectedDescription(),
                e.getMessage());
    }

    @Test
    void missingTensorIsNamed() throws IOException {
        Path root = snapshot(null);
        writeWeights(root.resolve("ae.safetensors"), "decoder.mid.attn_1.proj_out.bias", null);
        ModelException e = assertThrows(ModelException.class, () -> Autoencoder.load(root, CPU));
        assertEquals(
                "tensor 'decoder.mid.attn_1.proj_out.bias' is missing from " + root.resolve("ae.safetensors")
                        + ": expected shape [64] for " + expectedDescription(),
                e.getMessage());
    }

    private static String expectedDescription() {
        return "FLUX autoencoder (channels [32, 32, 64, 64], 1 resnets per level, 16 latent channels, 3 -> 3 image"
                + " channels, 32 groups, scaling 0.3611, shift 0.1159)";
    }

    private String tinyConfigWith(String key, String value) throws IOException {
        String json = Files.readString(tinyConfig());
        String pattern = "\"" + key + "\":\\s*(\\[[^\\]]*\\]|[^,\\n]*)";
        String replaced = json.replaceFirst(pattern, "\"" + key + "\": " + value);
        assertTrue(!replaced.equals(json), "no " + key + " in " + tinyConfig());
        return replaced;
    }

    @Test
    void configDisagreeingOnChannelsIsReported() throws IOException {
        Path root = snapshot(tinyConfigWith("block_out_channels", "[32, 64, 64, 64]"));
        Files.copy(Golden.path("flux-tiny-dev", "ae.safetensors"), root.resolve("ae.safetensors"));
        ModelException e = assertThrows(ModelException.class, () -> Autoencoder.load(root, CPU));
        assertEquals(
                root.resolve("vae/config.json") + ": block_out_channels is [32,64,64,64] but the checkpoint gives"
                        + " [32, 32, 64, 64] (from encoder.down.<level>.block.0.conv1.weight)",
                e.getMessage());
    }

    @Test
    void configDisagreeingOnLatentChannelsIsReported() throws IOException {
        Path root = snapshot(tinyConfigWith("latent_channels", "4"));
        Files.copy(Golden.path("flux-tiny-dev", "ae.safetensors"), root.resolve("ae.safetensors"));
        ModelException e = assertThrows(ModelException.class, () -> Autoencoder.load(root, CPU));
        assertEquals(
                root.resolve("vae/config.json") + ": latent_channels is 4 but the checkpoint gives 16"
                        + " (from decoder.conv_in.weight)",
                e.getMessage());
    }

    @Test
    void configDisagreeingOnResnetsIsReported() throws IOException {
        Path root = snapshot(tinyConfigWith("layers_per_block", "2"));
        Files.copy(Golden.path("flux-tiny-dev", "ae.safetensors"), root.resolve("ae.safetensors"));
        ModelException e = assertThrows(ModelException.class, () -> Autoencoder.load(root, CPU));
        assertTrue(
                e.getMessage()
                        .startsWith(root.resolve("vae/config.json") + ": layers_per_block is 2 but the"
                                + " checkpoint gives 1"),
                e.getMessage());
    }

    @Test
    void configWithoutScalingFactorIsReported() throws IOException {
        String json = Files.readString(tinyConfig()).replaceFirst("\"scaling_factor\":\\s*[^,\\n]*,", "");
        Path root = snapshot(json);
        Files.copy(Golden.path("flux-tiny-dev", "ae.safetensors"), root.resolve("ae.safetensors"));
        ModelException e = assertThrows(ModelException.class, () -> Autoencoder.load(root, CPU));
        assertTrue(e.getMessage().contains("scaling_factor is missing"), e.getMessage());
    }

    @Test
    void wrongInputShapesAreRejected() {
        Autoencoder ae = Autoencoder.load(Golden.path("flux-tiny-dev"), CPU);
        IllegalArgumentException e = assertThrows(
                IllegalArgumentException.class, () -> ae.decode(CPU.upload(new float[4 * 4 * 4], 1, 4, 4, 4)));
        assertTrue(e.getMessage().contains("latent z has shape [1, 4, 4, 4], expected [B, 16, H, W]"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> ae.encode(CPU.upload(new float[3 * 4 * 4], 1, 3, 4, 4)));
        assertTrue(e.getMessage().contains("H, W >= 8"), e.getMessage());
    }
}
