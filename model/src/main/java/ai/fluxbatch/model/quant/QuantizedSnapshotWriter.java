package ai.fluxbatch.model.quant;

import ai.fluxbatch.model.ModelException;
import ai.fluxbatch.model.Sha256;
import ai.fluxbatch.model.safetensors.TensorSource;
import ai.fluxbatch.model.safetensors.TensorSources;
import ai.fluxbatch.model.snapshot.DiffusersTensorSource;
import ai.fluxbatch.model.snapshot.FluxSnapshot;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.FileAlreadyExistsException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.Comparator;
import java.util.List;
import java.util.Set;
import java.util.TreeSet;
import java.util.function.Predicate;
import java.util.stream.Stream;

/**
 * Writes a quantized snapshot folder that {@code --model} takes like any other: the 1.58-bit transformer under the
 * source's file name, and every other file of the source (configs, text encoders, autoencoder, tokenizers) hard-linked
 * where the file system allows, else copied. Built in a temporary sibling folder and renamed into place at the end.
 */
public final class QuantizedSnapshotWriter {
    private QuantizedSnapshotWriter() {}

    public static void write(FluxSnapshot source, Path output, boolean overwrite, QuantizeProgress progress) {
        write(source, output, overwrite, progress, QuantizeRecipe.ABSMEAN);
    }

    public static void write(
            FluxSnapshot source, Path output, boolean overwrite, QuantizeProgress progress, QuantizeRecipe recipe) {
        write(
                source,
                output,
                overwrite,
                inSourceLayout(source, target -> {
                    Path transformer = source.transformerFile();
                    String sha = Sha256.ofFiles(transformerFiles(transformer));
                    try (TensorSource weights = source.openTransformer()) {
                        new CheckpointQuantizer(weights, transformer, sha, progress, recipe).write(target);
                    }
                }),
                rel -> false);
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
     * file name, a sharded source's index name without {@code .index.json}), with every other file of {@code source}
     * except those {@code skip} selects (by path relative to the source folder) hard-linked or copied. Built in a
     * temporary sibling folder and renamed into place; an existing {@code output} is replaced only with {@code
     * overwrite}, and only once the new folder is complete.
     */
    public static void write(
            FluxSnapshot source, Path output, boolean overwrite, TransformerWriter transformer, Predicate<Path> skip) {
        write(source, output, overwrite, transformer, skip, Extras.NONE);
    }

    /** {@link #write(FluxSnapshot, Path, boolean, TransformerWriter, Predicate)} with {@code extras} added last. */
    public static void write(
            FluxSnapshot source,
            Path output,
            boolean overwrite,
            TransformerWriter transformer,
            Predicate<Path> skip,
            Extras extras) {
        Path out = output.toAbsolutePath().normalize();
        if (Files.exists(out) && !overwrite) {
            throw new ModelException("output folder " + output + " exists: choose another, or pass --overwrite");
        }
        if (Files.exists(out) && !Files.isDirectory(out)) {
            throw new ModelException("output " + output + " is a file: expected a folder to write the snapshot into");
        }
        Path file = source.transformerFile();
        Set<Path> transformerFiles = transformerFiles(file);
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
            copyOthers(source.root(), tmp, transformerFiles, skip);
            extras.addTo(tmp);
            replace(tmp, out);
        } catch (IOException e) {
            deleteTree(tmp);
            throw new UncheckedIOException("cannot write " + output + ": " + e.getMessage(), e);
        } catch (RuntimeException e) {
            deleteTree(tmp);
            throw e;
        }
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

    private static void copyOthers(Path root, Path target, Set<Path> transformerFiles, Predicate<Path> skip)
            throws IOException {
        List<Path> all;
        try (Stream<Path> s = Files.walk(root)) {
            all = s.filter(p -> !p.equals(root)).sorted().toList();
        }
        for (Path p : all) {
            Path rel = root.relativize(p);
            Path dst = target.resolve(rel.toString());
            if (transformerFiles.contains(p.toAbsolutePath().normalize()) || skipped(rel, skip)) {
                continue;
            }
            if (Files.isDirectory(p)) {
                Files.createDirectories(dst);
            } else {
                Files.createDirectories(dst.getParent());
                try {
                    Files.createLink(dst, p.toRealPath());
                } catch (IOException | UnsupportedOperationException e) {
                    Files.copy(p, dst, StandardCopyOption.COPY_ATTRIBUTES);
                }
            }
        }
    }

    /** Whether {@code rel} or a folder it lies in is selected. */
    private static boolean skipped(Path rel, Predicate<Path> skip) {
        for (Path p = rel; p != null; p = p.getParent()) {
            if (skip.test(p)) {
                return true;
            }
        }
        return false;
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
