package ai.fluxbatch.model.quant;

import ai.fluxbatch.model.ModelException;
import ai.fluxbatch.model.Sha256;
import ai.fluxbatch.model.safetensors.TensorSource;
import ai.fluxbatch.model.safetensors.TensorSources;
import ai.fluxbatch.model.snapshot.DiffusersTensorSource;
import ai.fluxbatch.model.snapshot.FluxSnapshot;
import com.fasterxml.jackson.databind.JsonNode;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.FileAlreadyExistsException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.Comparator;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;
import java.util.function.Predicate;
import java.util.stream.Stream;

/**
 * Writes a quantized snapshot folder that {@code --model} takes like any other: the 1.58-bit transformer under the
 * source's file name, {@code transformer/config.json} with a {@code quantization_config} ({@link QuantizationConfig}),
 * a README.md model card ({@link ModelCard}), and of the source's other files those the snapshot runs with ({@link
 * SnapshotFiles}: configs, text encoders, tokenizers, scheduler, autoencoder, licence), hard-linked where the file
 * system allows, else copied; never a full-precision transformer file. Built in a temporary sibling folder and renamed
 * into place at the end. The one piece of code that assembles a quantized snapshot, for every path that makes one
 * (one-process and spread quantize, distill).
 */
public final class QuantizedSnapshotWriter {
    private QuantizedSnapshotWriter() {}

    /**
     * What a written snapshot left out of its source.
     *
     * @param files the source's files sorted into carried, transformer and left out
     */
    public record Written(Path folder, SnapshotFiles files) {
        /** One line for the user, {@code left out: ...}. */
        public String leftOutLine() {
            return files.leftOutLine();
        }
    }

    public static Written write(FluxSnapshot source, Path output, boolean overwrite, QuantizeProgress progress) {
        return write(source, output, overwrite, progress, QuantizeRecipe.ABSMEAN);
    }

    public static Written write(
            FluxSnapshot source, Path output, boolean overwrite, QuantizeProgress progress, QuantizeRecipe recipe) {
        return write(source, output, overwrite, progress, recipe, ModelCard.Notes.of(source));
    }

    /** The one-process quantization of {@code source} into {@code output}, with {@code notes} in its card. */
    public static Written write(
            FluxSnapshot source,
            Path output,
            boolean overwrite,
            QuantizeProgress progress,
            QuantizeRecipe recipe,
            ModelCard.Notes notes) {
        return write(source, output, overwrite, quantizing(source, progress, recipe), rel -> false, Extras.NONE, notes);
    }

    /**
     * The one-process quantization of {@code source}'s transformer, tensor by tensor, as a transformer writer, in the
     * source's layout ({@link #inSourceLayout}).
     */
    public static TransformerWriter quantizing(FluxSnapshot source, QuantizeProgress progress, QuantizeRecipe recipe) {
        return inSourceLayout(source, target -> {
            Path transformer = source.transformerFile();
            String sha = Sha256.ofFiles(transformerFiles(transformer));
            try (TensorSource weights = source.openTransformer()) {
                new CheckpointQuantizer(weights, transformer, sha, progress, recipe).write(target);
            }
        });
    }

    /**
     * A transformer writer that keeps the layout of {@code source}: {@code referenceNamed} writes the checkpoint under
     * the reference names, and for a diffusers source that checkpoint is rewritten under diffusers' names (each
     * concatenated layer cut back into its parts) before it takes the target's place.
     */
    public static TransformerWriter inSourceLayout(FluxSnapshot source, TransformerWriter referenceNamed) {
        return target -> {
            try (TensorSource weights = source.openTransformer()) {
                if (!(weights instanceof DiffusersTensorSource diffusers)) {
                    referenceNamed.write(target);
                    return;
                }
                Path reference = target.resolveSibling("." + target.getFileName() + ".reference-names");
                try {
                    referenceNamed.write(reference);
                    diffusers.rewriteInDiffusersNames(reference, target);
                } finally {
                    Files.deleteIfExists(reference);
                }
            }
        };
    }

    /** Writes the transformer checkpoint of a snapshot under construction to {@code target}. */
    @FunctionalInterface
    public interface TransformerWriter {
        void write(Path target) throws IOException;
    }

    /** Adds files of its own to a finished snapshot folder under construction, before it is renamed into place. */
    @FunctionalInterface
    public interface Extras {
        Extras NONE = folder -> {};

        void addTo(Path folder) throws IOException;
    }

    /**
     * Writes a snapshot folder whose transformer checkpoint {@code transformer} writes (under the source's transformer
     * file name, a sharded source's index name without {@code .index.json}), with the files of {@code source} that a
     * quantized snapshot carries ({@link SnapshotFiles}), except those {@code skip} selects (by path relative to the
     * source folder), hard-linked or copied. Built in a temporary sibling folder and renamed into place; an existing
     * {@code output} is replaced only with {@code overwrite}, and only once the new folder is complete.
     */
    public static Written write(
            FluxSnapshot source, Path output, boolean overwrite, TransformerWriter transformer, Predicate<Path> skip) {
        return write(source, output, overwrite, transformer, skip, Extras.NONE, ModelCard.Notes.of(source));
    }

    /** {@link #write(FluxSnapshot, Path, boolean, TransformerWriter, Predicate)} with {@code extras} added last. */
    public static Written write(
            FluxSnapshot source,
            Path output,
            boolean overwrite,
            TransformerWriter transformer,
            Predicate<Path> skip,
            Extras extras) {
        return write(source, output, overwrite, transformer, skip, extras, ModelCard.Notes.of(source));
    }

    /**
     * {@link #write(FluxSnapshot, Path, boolean, TransformerWriter, Predicate, Extras)} with {@code notes} (how the
     * user named the source, measured quality) in the model card.
     */
    public static Written write(
            FluxSnapshot source,
            Path output,
            boolean overwrite,
            TransformerWriter transformer,
            Predicate<Path> skip,
            Extras extras,
            ModelCard.Notes notes) {
        Path out = output.toAbsolutePath().normalize();
        if (Files.exists(out) && !overwrite) {
            throw new ModelException("output folder " + output + " exists: choose another, or pass --overwrite");
        }
        if (Files.exists(out) && !Files.isDirectory(out)) {
            throw new ModelException("output " + output + " is a file: expected a folder to write the snapshot into");
        }
        Path file = source.transformerFile();
        source.transformerConfig(); // its absence or bad JSON reported before any work
        JsonNode config = exactConfig(source.transformerConfigFile());
        SnapshotFiles files = SnapshotFiles.of(source, skip);
        Set<Path> sourceFiles = transformerFiles(file);
        Path tmp = out.resolveSibling("." + out.getFileName() + ".tmp-" + Long.toHexString(System.nanoTime()));
        try {
            Files.createDirectories(tmp);
            // the source's place and name: flux1-dev.safetensors, or transformer/diffusion_pytorch_model.safetensors
            String name = source.root()
                    .toAbsolutePath()
                    .normalize()
                    .relativize(file.toAbsolutePath().normalize())
                    .toString()
                    .replaceFirst("\\.index\\.json$", "");
            Path target = tmp.resolve(name);
            Files.createDirectories(target.getParent());
            transformer.write(target);
            files.linkInto(tmp);
            describe(source, tmp, config, sourceFiles, notes);
            extras.addTo(tmp);
            replace(tmp, out);
            return new Written(out, files);
        } catch (IOException e) {
            deleteTree(tmp);
            throw new UncheckedIOException("cannot write " + output + ": " + e.getMessage(), e);
        } catch (RuntimeException e) {
            deleteTree(tmp);
            throw e;
        }
    }

    /**
     * Writes into the snapshot folder {@code folder}, whose transformer is written, its {@code transformer/config.json}
     * ({@code config} with the {@code quantization_config} of the written checkpoint) and its model card.
     */
    private static void describe(
            FluxSnapshot source, Path folder, JsonNode config, Set<Path> sourceFiles, ModelCard.Notes notes)
            throws IOException {
        Path written = FluxSnapshot.open(folder).transformerFile();
        Set<Path> writtenFiles = transformerFiles(written);
        Map<String, String> metadata;
        QuantizationConfig.Layers layers;
        try (TensorSource w = TensorSources.open(written)) {
            metadata = w.metadata();
            layers = QuantizationConfig.Layers.of(w);
        }
        Path configFile = folder.resolve(SnapshotFiles.TRANSFORMER_CONFIG.toString());
        Files.createDirectories(configFile.getParent());
        Files.writeString(
                configFile, QuantizationConfig.configJson(config, QuantizationConfig.of(metadata, layers, written)));

        Map<String, String> sourceCard = ModelCard.frontMatter(source.root().resolve(ModelCard.FILE));
        boolean sourceQuantized;
        try (TensorSource s = TensorSources.open(source.transformerFile())) {
            sourceQuantized = s.metadata().containsKey(TernaryFormat.KEY_FORMAT);
        }
        ModelCard card = new ModelCard(
                notes.source(),
                ModelCard.baseModel(source, sourceCard, sourceQuantized),
                ModelCard.license(sourceCard),
                metadata,
                layers,
                relative(folder, writtenFiles),
                bytes(writtenFiles),
                relative(source.root().toAbsolutePath().normalize(), sourceFiles),
                bytes(sourceFiles),
                notes.quality().apply(metadata, layers));
        Files.writeString(folder.resolve(ModelCard.FILE), card.render());
    }

    /** The source's transformer config with its numbers as written (no float rounding on the way through). */
    private static JsonNode exactConfig(Path file) {
        try {
            return QuantizationConfig.parse(Files.readString(file));
        } catch (IOException e) {
            throw new ModelException("cannot read " + file + ": " + e.getMessage(), e);
        }
    }

    private static List<String> relative(Path root, Set<Path> files) {
        Path r = root.toAbsolutePath().normalize();
        return files.stream().map(p -> r.relativize(p).toString()).sorted().toList();
    }

    private static long bytes(Set<Path> files) throws IOException {
        long n = 0;
        for (Path p : files) {
            n += Files.size(p);
        }
        return n;
    }

    /**
     * The SHA-256 of a snapshot's transformer checkpoint as quantized checkpoints record it ({@link
     * TernaryFormat#KEY_SOURCE_SHA256}): of the file, or of a sharded index and its shards in path order.
     */
    public static String transformerSha256(FluxSnapshot snapshot) {
        return Sha256.ofFiles(transformerFiles(snapshot.transformerFile()));
    }

    /** The transformer file, or a sharded index and every shard it names. */
    private static Set<Path> transformerFiles(Path transformer) {
        Set<Path> files = new TreeSet<>();
        files.add(transformer.toAbsolutePath().normalize());
        if (transformer.getFileName().toString().endsWith(".index.json")) {
            try (TensorSource s = TensorSources.open(transformer)) {
                for (String n : s.names()) {
                    files.add(s.file(n).toAbsolutePath().normalize());
                }
            }
        }
        return files;
    }

    private static void replace(Path tmp, Path out) throws IOException {
        if (!Files.exists(out)) {
            try {
                Files.move(tmp, out, StandardCopyOption.ATOMIC_MOVE);
                return;
            } catch (FileAlreadyExistsException e) {
                throw new ModelException("output folder " + out + " appeared while quantizing; nothing was replaced");
            }
        }
        Path old = out.resolveSibling("." + out.getFileName() + ".old-" + Long.toHexString(System.nanoTime()));
        Files.move(out, old, StandardCopyOption.ATOMIC_MOVE);
        Files.move(tmp, out, StandardCopyOption.ATOMIC_MOVE);
        deleteTree(old);
    }

    private static void deleteTree(Path dir) {
        if (!Files.exists(dir)) {
            return;
        }
        try (Stream<Path> s = Files.walk(dir)) {
            for (Path p : s.sorted(Comparator.reverseOrder()).toList()) {
                Files.deleteIfExists(p);
            }
        } catch (IOException e) {
            throw new UncheckedIOException("cannot remove " + dir + ": " + e.getMessage(), e);
        }
    }
}
