package ai.fluxbatch.model.snapshot;

import ai.fluxbatch.model.JsonFiles;
import ai.fluxbatch.model.ModelException;
import ai.fluxbatch.model.Sha256;
import ai.fluxbatch.model.safetensors.RegularFiles;
import ai.fluxbatch.model.safetensors.TensorSource;
import ai.fluxbatch.model.safetensors.TensorSources;
import com.fasterxml.jackson.databind.JsonNode;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.stream.Stream;

/**
 * A FLUX.1 snapshot in either Hugging Face layout: the original one (BFL's single-file transformer {@code
 * flux1-dev.safetensors} / {@code flux1-schnell.safetensors}, or a sharded {@code *.safetensors.index.json}, at the
 * root; {@code ae.safetensors}) or the diffusers one ({@code transformer/diffusion_pytorch_model*.safetensors} with its
 * index, {@code vae/diffusion_pytorch_model.safetensors}), with {@code transformer/config.json} and the other
 * components in their folders. Whatever the layout, {@link #openTransformer()} gives the reference tensor names; when
 * a snapshot holds both, the original is read and {@link #layoutNote()} says so.
 */
public final class FluxSnapshot {
    private static final List<String> KNOWN_TRANSFORMER_FILES = List.of(
            "flux1-dev.safetensors", "flux1-schnell.safetensors",
            "flux1-dev.safetensors.index.json", "flux1-schnell.safetensors.index.json");
    private static final List<String> NOT_A_TRANSFORMER = List.of("ae.safetensors");
    /** The diffusers transformer's weights in {@code transformer/}, one file or an index of shards. */
    private static final List<String> DIFFUSERS_TRANSFORMER_FILES =
            List.of("diffusion_pytorch_model.safetensors.index.json", "diffusion_pytorch_model.safetensors");

    /** Where a snapshot's transformer weights are and how they are named. */
    public enum Layout {
        /** BFL's file at the root, reference tensor names. */
        ORIGINAL,
        /** diffusers' {@code transformer/diffusion_pytorch_model*.safetensors}, diffusers tensor names. */
        DIFFUSERS
    }

    private final Path root;

    private FluxSnapshot(Path root) {
        this.root = root;
    }

    /** Checks only that the folder exists; each component is located, and its absence reported, when asked for. */
    public static FluxSnapshot open(Path dir) {
        if (!Files.exists(dir)) {
            throw new ModelException("model folder " + dir + " does not exist: expected a FLUX.1 snapshot folder"
                    + " in the Hugging Face layout (flux1-dev.safetensors, transformer/config.json, ...)");
        }
        if (!Files.isDirectory(dir)) {
            throw new ModelException("model " + dir + " is a file: --model takes the snapshot folder that holds it");
        }
        return new FluxSnapshot(dir);
    }

    public Path root() {
        return root;
    }

    /**
     * The transformer checkpoint: the original layout's file (or index) at the root when there is one, else the
     * diffusers layout's {@code transformer/diffusion_pytorch_model.safetensors} (or its index).
     */
    public Path transformerFile() {
        Path original = findTransformer(root);
        if (original != null) {
            return original;
        }
        Path diffusers = findDiffusersTransformer(root.resolve("transformer"));
        if (diffusers != null) {
            return diffusers;
        }
        throw new ModelException("no transformer checkpoint found in " + root + ": expected the FLUX.1 transformer as"
                + " flux1-dev.safetensors or flux1-schnell.safetensors (or one *.safetensors / *.safetensors.index.json)"
                + " at the root (original layout), or transformer/diffusion_pytorch_model.safetensors or its"
                + " .safetensors.index.json (diffusers layout)" + pickleNote(root));
    }

    /** The layout of the transformer {@link #transformerFile()} names. */
    public Layout transformerLayout() {
        return findTransformer(root) != null ? Layout.ORIGINAL : Layout.DIFFUSERS;
    }

    /**
     * The files that make up the transformer's weights in the layout read: the file, or the index and its shards.
     */
    public List<Path> transformerFiles() {
        Path file = transformerFile();
        List<Path> files = new ArrayList<>(List.of(file));
        if (file.getFileName().toString().endsWith(".index.json")) {
            try (TensorSource index = TensorSources.open(file)) {
                new java.util.TreeSet<>(index.names().stream().map(index::file).toList()).forEach(files::add);
            }
        }
        return files;
    }

    /**
     * A line for the user when the snapshot holds the transformer in both layouts (which one is read), else null.
     */
    public String layoutNote() {
        Path original = findTransformer(root);
        Path diffusers = findDiffusersTransformer(root.resolve("transformer"));
        if (original == null || diffusers == null) {
            return null;
        }
        return "model " + root + " holds the transformer in both layouts: reading the original "
                + root.relativize(original) + ", not the diffusers " + root.relativize(diffusers);
    }

    /**
     * The transformer's weights under the reference tensor names ({@code double_blocks.0.img_attn.qkv.weight}, ...),
     * whichever layout and names the file has: a diffusers-named checkpoint is seen through {@link DiffusersNames},
     * checked before anything is read. The caller closes it.
     */
    public TensorSource openTransformer() {
        return openTransformer(transformerFile());
    }

    /**
     * A transformer checkpoint file (or index) under the reference tensor names, whichever names it has (see {@link
     * #openTransformer()}). The caller closes it.
     */
    public static TensorSource openTransformer(Path file) {
        TensorSource weights = TensorSources.open(file);
        if (!DiffusersNames.looksLikeTransformer(weights.names())) {
            return weights;
        }
        return DiffusersTensorSource.open(weights, DiffusersNames.transformer(weights.names()), file.toString());
    }

    public Path transformerConfigFile() {
        return root.resolve("transformer").resolve("config.json");
    }

    public JsonNode transformerConfig() {
        return JsonFiles.read(transformerConfigFile(), "the transformer configuration");
    }

    /** Whether the transformer is guidance-distilled (FLUX.1-dev) rather than timestep-distilled (-schnell). */
    public boolean hasGuidanceEmbedding() {
        try (TensorSource weights = openTransformer()) {
            return weights.contains("guidance_in.in_layer.weight");
        }
    }

    /**
     * A cheap identity of the transformer checkpoint for metadata: SHA-256 of its safetensors header (names, shapes,
     * offsets, metadata) and its size, not of all its bytes (hashing 24 GB on every run would take minutes); for a sharded
     * checkpoint, of the index's bytes and each shard's header and size.
     */
    public String transformerFingerprint() {
        List<Path> files = transformerFiles();
        if (files.size() == 1) {
            return headerFingerprint(files.get(0));
        }
        // a sharded checkpoint: the index's bytes and each shard's fingerprint
        java.security.MessageDigest sha = Sha256.digest();
        for (Path file : files) {
            try {
                sha.update(
                        file.getFileName().toString().endsWith(".json")
                                ? Files.readAllBytes(file)
                                : headerFingerprint(file).getBytes(java.nio.charset.StandardCharsets.US_ASCII));
            } catch (IOException e) {
                throw new ModelException("cannot read " + file + ": " + e.getMessage(), e);
            }
        }
        return Sha256.hex(sha);
    }

    /** SHA-256 of a safetensors file's header and its size. */
    private static String headerFingerprint(Path file) {
        try (java.nio.channels.FileChannel ch = java.nio.channels.FileChannel.open(file)) {
            java.nio.ByteBuffer len = java.nio.ByteBuffer.allocate(8).order(java.nio.ByteOrder.LITTLE_ENDIAN);
            ch.read(len, 0);
            long n = Math.min(len.flip().getLong(), 100L << 20);
            java.nio.ByteBuffer header = java.nio.ByteBuffer.allocate((int) Math.max(0, Math.min(n, ch.size() - 8)));
            ch.read(header, 8);
            java.security.MessageDigest sha = Sha256.digest();
            sha.update(header.flip());
            sha.update(Long.toString(ch.size()).getBytes(java.nio.charset.StandardCharsets.US_ASCII));
            return Sha256.hex(sha);
        } catch (IOException e) {
            throw new ModelException("cannot read " + file + ": " + e.getMessage(), e);
        }
    }

    /** The quantization method recorded in the transformer checkpoint, or "none" for a full-precision one. */
    public String quantizationMethod() {
        try (TensorSource weights = TensorSources.open(transformerFile())) {
            return weights.metadata().getOrDefault("quantization_method", "none");
        }
    }

    /** The T5 sequence length the reference uses: 512 for dev, 256 for schnell. */
    public int t5MaxLength() {
        return hasGuidanceEmbedding() ? 512 : 256;
    }

    /** The reference command line's default step count: 50 for dev, 4 for schnell. */
    public int defaultSteps() {
        return hasGuidanceEmbedding() ? 50 : 4;
    }

    /**
     * The default image size, height and width, in pixels: {@link SampleSize} from {@code transformer/config.json} and
     * {@code vae/config.json} (1024 for FLUX.1, 64 for the shipped miniature). Read when called.
     */
    public SampleSize defaultSampleSize() {
        return SampleSize.read(transformerConfigFile(), root.resolve("vae").resolve("config.json"));
    }

    /** CLIP-L: {@code text_encoder/}. */
    public Path clipTextEncoder() {
        return root.resolve("text_encoder");
    }

    /** T5-XXL: {@code text_encoder_2/}. */
    public Path t5TextEncoder() {
        return root.resolve("text_encoder_2");
    }

    /** The CLIP BPE vocabulary: {@code tokenizer/} with vocab.json and merges.txt. */
    public Path clipTokenizer() {
        return root.resolve("tokenizer");
    }

    /** The T5 SentencePiece model: {@code tokenizer_2/spiece.model}. */
    public Path t5Tokenizer() {
        return root.resolve("tokenizer_2").resolve("spiece.model");
    }

    /**
     * Every file that holds or indexes transformer weights, in either layout, whether or not it is the one {@link
     * #transformerFile()} reads: at the root the original layout's {@code *.safetensors} and {@code
     * *.safetensors.index.json} other than the autoencoder's ({@code flux1-dev.safetensors}, or its shards and index),
     * and under {@code transformer/} the diffusers layout's {@code diffusion_pytorch_model*.safetensors} and its
     * {@code .index.json}. Sorted; only names are looked at.
     */
    public List<Path> transformerWeightFiles() {
        List<Path> files = new ArrayList<>();
        files.addAll(listed(
                root,
                name -> (name.endsWith(".safetensors") || name.endsWith(".safetensors.index.json"))
                        && !NOT_A_TRANSFORMER.contains(name)));
        files.addAll(listed(
                root.resolve("transformer"),
                name -> name.startsWith("diffusion_pytorch_model")
                        && (name.endsWith(".safetensors") || name.endsWith(".safetensors.index.json"))));
        return files;
    }

    /**
     * The autoencoder's entries that exist, in either layout: {@code ae.safetensors} (original) and the {@code vae/}
     * folder (its config, and in the diffusers layout its weights).
     */
    public List<Path> autoencoderFiles() {
        return Stream.of(root.resolve("ae.safetensors"), root.resolve("vae"))
                .filter(Files::exists)
                .toList();
    }

    /** The regular files directly in {@code dir} whose lower-case name {@code keep} accepts, sorted; none if absent. */
    private static List<Path> listed(Path dir, java.util.function.Predicate<String> keep) {
        if (!Files.isDirectory(dir)) {
            return List.of();
        }
        try (Stream<Path> files = Files.list(dir)) {
            return files.filter(Files::isRegularFile)
                    .filter(p -> keep.test(p.getFileName().toString().toLowerCase(Locale.ROOT)))
                    .sorted()
                    .toList();
        } catch (IOException e) {
            throw new ModelException("cannot list " + dir + ": " + e.getMessage(), e);
        }
    }

    /**
     * The one {@code NAME.safetensors.index.json} among {@code candidates} when every other candidate is one of its
     * shards by the Hugging Face naming, {@code NAME-00001-of-00004.safetensors}; else null.
     */
    private static Path shardedIndex(List<Path> candidates) {
        List<Path> indexes = candidates.stream()
                .filter(p -> p.getFileName().toString().endsWith(".safetensors.index.json"))
                .toList();
        if (indexes.size() != 1) {
            return null;
        }
        String index = indexes.get(0).getFileName().toString();
        String shard =
                java.util.regex.Pattern.quote(index.substring(0, index.length() - ".safetensors.index.json".length()))
                        + "-\\d{5}-of-\\d{5}\\.safetensors";
        for (Path p : candidates) {
            if (!p.equals(indexes.get(0)) && !p.getFileName().toString().matches(shard)) {
                return null;
            }
        }
        return indexes.get(0);
    }

    /** The original layout's transformer at the root, or null when the root holds no candidate. */
    private static Path findTransformer(Path dir) {
        Path known = firstOf(dir, KNOWN_TRANSFORMER_FILES);
        if (known != null) {
            return known;
        }
        List<Path> candidates = new ArrayList<>();
        try (Stream<Path> files = Files.list(dir)) {
            files.filter(Files::isRegularFile).forEach(p -> {
                String name = p.getFileName().toString().toLowerCase(Locale.ROOT);
                if ((name.endsWith(".safetensors") || name.endsWith(".safetensors.index.json"))
                        && !NOT_A_TRANSFORMER.contains(name)) {
                    candidates.add(p);
                }
            });
        } catch (IOException e) {
            throw new ModelException("cannot list model folder " + dir + ": " + e.getMessage(), e);
        }
        if (candidates.size() == 1) {
            return candidates.get(0);
        }
        Path index = shardedIndex(candidates);
        if (index != null) {
            return index;
        }
        if (candidates.isEmpty()) {
            return null;
        }
        throw new ModelException("several transformer checkpoints found " + candidates + ": expected the FLUX.1"
                + " transformer as flux1-dev.safetensors or flux1-schnell.safetensors (or one *.safetensors /"
                + " *.safetensors.index.json) in " + dir);
    }

    /** diffusers' transformer weights in {@code dir} ({@code transformer/}), or null when there are none. */
    private static Path findDiffusersTransformer(Path dir) {
        return firstOf(dir, DIFFUSERS_TRANSFORMER_FILES);
    }

    /** The first of {@code names} present in {@code dir} (refused if not a regular file), or null. */
    private static Path firstOf(Path dir, List<String> names) {
        for (String name : names) {
            Path p = dir.resolve(name);
            if (Files.exists(p, LinkOption.NOFOLLOW_LINKS)) {
                String problem = RegularFiles.problem(p);
                if (problem != null) {
                    throw new ModelException("the transformer checkpoint " + p + " " + problem);
                }
                return p;
            }
        }
        return null;
    }

    /** "; found only pickle files [...] ..." when the root holds pickles, else "". */
    private static String pickleNote(Path dir) {
        List<Path> pickles = new ArrayList<>();
        try (Stream<Path> files = Files.list(dir)) {
            files.filter(Files::isRegularFile)
                    .filter(p ->
                            p.getFileName().toString().toLowerCase(Locale.ROOT).matches(".*\\.(bin|pt|pth|ckpt|pkl)$"))
                    .forEach(pickles::add);
        } catch (IOException e) {
            throw new ModelException("cannot list model folder " + dir + ": " + e.getMessage(), e);
        }
        return pickles.isEmpty()
                ? ""
                : "; found only pickle files " + pickles + ", which are never read because unpickling can run arbitrary"
                        + " code";
    }
}
