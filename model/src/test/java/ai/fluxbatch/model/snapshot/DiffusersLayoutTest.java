package ai.fluxbatch.model.snapshot;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.fluxbatch.kernel.cpu.CpuBackend;
import ai.fluxbatch.model.Golden;
import ai.fluxbatch.model.ModelException;
import ai.fluxbatch.model.TinySnapshots;
import ai.fluxbatch.model.safetensors.SafetensorsException;
import ai.fluxbatch.model.safetensors.SafetensorsFile;
import ai.fluxbatch.model.safetensors.SafetensorsWriter;
import ai.fluxbatch.model.safetensors.TensorInfo;
import ai.fluxbatch.model.safetensors.TensorSource;
import ai.fluxbatch.model.safetensors.TensorSources;
import ai.fluxbatch.model.vae.Autoencoder;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.function.Consumer;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The diffusers layout against the original one (the golden -diffusers copies hold the same weights), and the errors
 * for diffusers snapshots that do not fit the name map, each before any weight is loaded.
 */
class DiffusersLayoutTest {
    private static final String SHARD_1 = "diffusion_pytorch_model-00001-of-00002.safetensors";

    @TempDir
    Path tmp;

    @Test
    void everyReferenceTensorReadsTheSameFromBothLayouts() {
        try (TensorSource original =
                        FluxSnapshot.open(Golden.path("flux-tiny-dev")).openTransformer();
                TensorSource diffusers = FluxSnapshot.open(Golden.path("flux-tiny-dev-diffusers"))
                        .openTransformer()) {
            assertTrue(diffusers instanceof DiffusersTensorSource, diffusers.toString());
            assertEquals(original.names(), diffusers.names());
            for (String name : original.names()) {
                TensorInfo a = original.info(name), b = diffusers.info(name);
                assertEquals(a.dtype(), b.dtype(), name);
                assertArrayEquals(a.shape(), b.shape(), name);
                int n = (int) a.byteLength();
                assertEquals(original.bytes(name, 0, n), diffusers.bytes(name, 0, n), name);
                // a read that crosses from one part into the next (q into k), and one inside a swapped half
                if (n > 64) {
                    assertEquals(original.bytes(name, n / 3 - 7, 30), diffusers.bytes(name, n / 3 - 7, 30), name);
                }
                assertArrayEquals(original.floats(name), diffusers.floats(name), name);
            }
        }
        try (TensorSource original = TensorSources.open(Golden.path("flux-tiny-dev", "ae.safetensors"));
                TensorSource diffusers = Autoencoder.openDiffusers(
                        Golden.path("flux-tiny-dev-diffusers", "vae", "diffusion_pytorch_model.safetensors"))) {
            assertEquals(original.names(), diffusers.names());
            for (String name : original.names()) {
                assertArrayEquals(
                        original.info(name).shape(), diffusers.info(name).shape(), name);
                assertArrayEquals(original.floats(name), diffusers.floats(name), name);
            }
        }
    }

    /** The reverse map: the original checkpoint written under diffusers' names is diffusers' own conversion. */
    @Test
    void theOriginalCheckpointWrittenInDiffusersNamesIsDiffusersOwnConversion() throws IOException {
        Path out = tmp.resolve("converted.safetensors");
        try (DiffusersTensorSource diffusers = (DiffusersTensorSource)
                FluxSnapshot.open(Golden.path("flux-tiny-dev-diffusers")).openTransformer()) {
            diffusers.rewriteInDiffusersNames(Golden.path("flux-tiny-dev", "flux1-dev.safetensors"), out);
            TensorSource expected = diffusers.diffusersTensors();
            try (TensorSource actual = SafetensorsFile.open(out)) {
                assertEquals(expected.names(), actual.names());
                for (String name : expected.names()) {
                    assertEquals(expected.info(name).dtype(), actual.info(name).dtype(), name);
                    assertArrayEquals(
                            expected.info(name).shape(), actual.info(name).shape(), name);
                    int n = (int) expected.info(name).byteLength();
                    assertEquals(expected.bytes(name, 0, n), actual.bytes(name, 0, n), name);
                }
            }
        }
    }

    @Test
    void aSnapshotWithBothLayoutsReadsTheOriginalAndSaysSo() throws IOException {
        Path both = TinySnapshots.copy("flux-tiny-dev", tmp);
        Path diffusers = Golden.path("flux-tiny-dev-diffusers", "transformer");
        try (var files = Files.list(diffusers)) {
            for (Path p : files.toList()) {
                if (p.getFileName().toString().startsWith("diffusion_pytorch_model")) {
                    Files.copy(p, both.resolve("transformer").resolve(p.getFileName()));
                }
            }
        }
        FluxSnapshot snapshot = FluxSnapshot.open(both);
        assertEquals(FluxSnapshot.Layout.ORIGINAL, snapshot.transformerLayout());
        assertEquals(both.resolve("flux1-dev.safetensors"), snapshot.transformerFile());
        String note = snapshot.layoutNote();
        assertTrue(
                note.contains("both layouts")
                        && note.contains("flux1-dev.safetensors")
                        && note.contains("diffusion_pytorch_model.safetensors.index.json"),
                note);
        assertNull(FluxSnapshot.open(Golden.path("flux-tiny-dev-diffusers")).layoutNote());
        assertEquals(
                FluxSnapshot.Layout.DIFFUSERS,
                FluxSnapshot.open(Golden.path("flux-tiny-dev-diffusers")).transformerLayout());
        assertEquals(
                4,
                snapshot.transformerWeightFiles().size(),
                snapshot.transformerWeightFiles()
                        .toString()); // flux1-dev, the index, two shards (and no ae.safetensors, no config.json)
    }

    @Test
    void theFingerprintOfAShardedCheckpointCoversItsIndex() throws IOException {
        Path copy = TinySnapshots.copy("flux-tiny-dev-diffusers", tmp);
        String before = FluxSnapshot.open(copy).transformerFingerprint();
        assertEquals(
                before,
                FluxSnapshot.open(Golden.path("flux-tiny-dev-diffusers")).transformerFingerprint());
        assertTrue(
                !before.equals(FluxSnapshot.open(Golden.path("flux-tiny-dev")).transformerFingerprint()));
        Path index = copy.resolve("transformer").resolve("diffusion_pytorch_model.safetensors.index.json");
        Files.writeString(index, Files.readString(index).replace("980992", "980993"));
        assertTrue(!before.equals(FluxSnapshot.open(copy).transformerFingerprint()));
    }

    @Test
    void aMissingShardIsNamed() throws IOException {
        Path copy = TinySnapshots.copy("flux-tiny-dev-diffusers", tmp);
        Files.delete(copy.resolve("transformer").resolve(SHARD_1));
        SafetensorsException e = assertThrows(
                SafetensorsException.class, () -> FluxSnapshot.open(copy).openTransformer());
        assertTrue(e.getMessage().contains(SHARD_1) && e.getMessage().contains("does not exist"), e.getMessage());
    }

    @Test
    void anIndexNamingATensorItsShardLacksIsNamed() throws IOException {
        Path copy = TinySnapshots.copy("flux-tiny-dev-diffusers", tmp);
        Path index = copy.resolve("transformer").resolve("diffusion_pytorch_model.safetensors.index.json");
        Files.writeString(
                index,
                Files.readString(index)
                        .replaceFirst(
                                "\"weight_map\"\\s*:\\s*\\{",
                                "\"weight_map\": {\"transformer_blocks.0.attn.to_z.weight\": \"" + SHARD_1 + "\","));
        SafetensorsException e = assertThrows(
                SafetensorsException.class, () -> FluxSnapshot.open(copy).openTransformer());
        assertTrue(e.getMessage().contains("transformer_blocks.0.attn.to_z.weight"), e.getMessage());
    }

    @Test
    void aTensorTheMapDoesNotUseIsNamed() throws IOException {
        Path copy =
                rewrittenShard(w -> w.addF32("transformer_blocks.0.attn.to_z.weight", new long[] {2}, new float[2]));
        ModelException e =
                assertThrows(ModelException.class, () -> FluxSnapshot.open(copy).openTransformer());
        assertTrue(
                e.getMessage().contains("unused") && e.getMessage().contains("transformer_blocks.0.attn.to_z.weight"),
                e.getMessage());
    }

    @Test
    void aMissingPartIsNamed() throws IOException {
        Path copy = rewrittenShard(null, "transformer_blocks.0.attn.to_k.weight");
        ModelException e =
                assertThrows(ModelException.class, () -> FluxSnapshot.open(copy).openTransformer());
        assertTrue(
                e.getMessage().contains("missing") && e.getMessage().contains("transformer_blocks.0.attn.to_k.weight"),
                e.getMessage());
    }

    @Test
    void partsThatDoNotFitTogetherAreRefused() throws IOException {
        Path copy = rewrittenShard(
                w -> w.addF32("transformer_blocks.0.attn.to_k.weight", new long[] {32, 64}, new float[32 * 64]),
                "transformer_blocks.0.attn.to_k.weight");
        ModelException e =
                assertThrows(ModelException.class, () -> FluxSnapshot.open(copy).openTransformer());
        assertTrue(e.getMessage().contains("double_blocks.0.img_attn.qkv.weight"), e.getMessage());
        assertTrue(e.getMessage().contains("transformer_blocks.0.attn.to_k.weight"), e.getMessage());
    }

    @Test
    void anAutoencoderTensorTheMapDoesNotUseIsNamed() throws IOException {
        Path copy = TinySnapshots.copy("flux-tiny-dev-diffusers", tmp);
        Path vae = copy.resolve("vae").resolve("diffusion_pytorch_model.safetensors");
        rewrite(vae, w -> w.addF32("decoder.mid_block.attentions.0.extra.weight", new long[] {1}, new float[1]));
        try (CpuBackend cpu = new CpuBackend()) {
            ModelException e = assertThrows(ModelException.class, () -> Autoencoder.load(copy, cpu));
            assertTrue(e.getMessage().contains("decoder.mid_block.attentions.0.extra.weight"), e.getMessage());
        }
    }

    /** A copy of flux-tiny-dev-diffusers whose first shard gets {@code add}'s tensors and loses {@code drop}. */
    private Path rewrittenShard(Consumer<SafetensorsWriter> add, String... drop) throws IOException {
        Path copy = TinySnapshots.copy("flux-tiny-dev-diffusers", tmp);
        Path transformer = copy.resolve("transformer");
        // one file instead of the index and its shards, so that the index need not follow
        Path single = transformer.resolve("diffusion_pytorch_model.safetensors");
        try (TensorSource all =
                TensorSources.open(transformer.resolve("diffusion_pytorch_model.safetensors.index.json"))) {
            SafetensorsWriter w = copyOf(all, drop);
            if (add != null) {
                add.accept(w);
            }
            w.write(single);
        }
        try (var files = Files.list(transformer)) {
            for (Path p : files.toList()) {
                if (p.getFileName().toString().contains("-of-") || p.toString().endsWith(".index.json")) {
                    Files.delete(p);
                }
            }
        }
        return copy;
    }

    /** A writer holding every tensor of {@code all} but {@code drop}, bytes copied. */
    private static SafetensorsWriter copyOf(TensorSource all, String... drop) {
        SafetensorsWriter w = new SafetensorsWriter();
        for (String name : all.names()) {
            if (!java.util.List.of(drop).contains(name)) {
                TensorInfo t = all.info(name);
                ByteBuffer b = ByteBuffer.allocate((int) t.byteLength());
                b.put(all.bytes(name, 0, (int) t.byteLength())).flip();
                w.add(name, t.dtype(), t.shape(), b);
            }
        }
        return w;
    }

    private static void rewrite(Path file, Consumer<SafetensorsWriter> add) throws IOException {
        SafetensorsWriter w;
        try (TensorSource all = SafetensorsFile.open(file)) {
            w = copyOf(all);
        }
        add.accept(w);
        Path tmpFile = file.resolveSibling("rewritten.safetensors");
        w.write(tmpFile);
        Files.move(tmpFile, file, java.nio.file.StandardCopyOption.REPLACE_EXISTING);
    }
}
