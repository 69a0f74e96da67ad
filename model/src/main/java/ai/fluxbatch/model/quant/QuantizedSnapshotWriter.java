package ai.fluxbatch.model.quant;

import ai.fluxbatch.model.ModelException;
import ai.fluxbatch.model.Sha256;
import ai.fluxbatch.model.safetensors.TensorSource;
import ai.fluxbatch.model.safetensors.TensorSources;
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
        Path out = output.toAbsolutePath().normalize();
        if (Files.exists(out) && !overwrite) {
            throw new ModelException("output folder " + output + " exists: choose another, or pass --overwrite");
        }
        if (Files.exists(out) && !Files.isDirectory(out)) {
            throw new ModelException("output " + output + " is a file: expected a folder to write the snapshot into");
        }
        Path transformer = source.transformerFile();
        Set<Path> transformerFiles = transformerFiles(transformer);
        Path tmp = out.resolveSibling("." + out.getFileName() + ".tmp-" + Long.toHexString(System.nanoTime()));
        try {
            Files.createDirectories(tmp);
            String name = transformer.getFileName().toString().replaceFirst("\\.index\\.json$", "");
            try (TensorSource weights = TensorSources.open(transformer)) {
                new CheckpointQuantizer(weights, transformer, Sha256.ofFiles(transformerFiles), progress, recipe)
                        .write(tmp.resolve(name));
            }
            copyOthers(source.root(), tmp, transformerFiles);
            replace(tmp, out);
        } catch (IOException e) {
            deleteTree(tmp);
            throw new UncheckedIOException("cannot write " + output + ": " + e.getMessage(), e);
        } catch (RuntimeException e) {
            deleteTree(tmp);
            throw e;
        }
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

    private static void copyOthers(Path root, Path target, Set<Path> skip) throws IOException {
        List<Path> all;
        try (Stream<Path> s = Files.walk(root)) {
            all = s.filter(p -> !p.equals(root)).sorted().toList();
        }
        for (Path p : all) {
            Path rel = root.relativize(p);
            Path dst = target.resolve(rel.toString());
            if (skip.contains(p.toAbsolutePath().normalize())) {
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
