package ai.fluxbatch.model.quant;

import ai.fluxbatch.model.ModelException;
import ai.fluxbatch.model.snapshot.FluxSnapshot;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.FileVisitOption;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Set;
import java.util.TreeMap;
import java.util.function.Predicate;
import java.util.regex.Pattern;
import java.util.stream.Stream;

/**
 * Which files of a source snapshot a quantized snapshot carries over: {@code model_index.json}, the folders of the
 * components it runs unchanged ({@code scheduler/}, {@code text_encoder/}, {@code text_encoder_2/}, {@code
 * tokenizer/}, {@code tokenizer_2/}), the autoencoder in whichever layouts the source has it ({@code ae.safetensors},
 * {@code vae/}) and the source's licence file (the FLUX.1-dev licence asks that it be passed on). Never a file of the
 * full-precision transformer, in either layout ({@link FluxSnapshot#transformerWeightFiles()}); {@code
 * transformer/config.json} is rewritten and the README replaced by the writer; pickle files are never read, so never
 * carried; everything else is left out and named.
 *
 * @param carried     the files to link or copy, relative to the source folder, sorted
 * @param transformer the full-precision transformer's files, left out (relative, sorted)
 * @param leftOut     the other files left out (relative, sorted)
 */
public record SnapshotFiles(Path root, List<Path> carried, List<Path> transformer, List<Path> leftOut) {
    /** Folders of components that a quantized snapshot runs as the source has them. */
    public static final List<String> COMPONENT_FOLDERS =
            List.of("scheduler", "text_encoder", "text_encoder_2", "tokenizer", "tokenizer_2");

    public static final String MODEL_INDEX = "model_index.json";

    /** The transformer's config, which the writer rewrites with its {@code quantization_config}. */
    public static final Path TRANSFORMER_CONFIG = Path.of("transformer", "config.json");

    /** The licence files carried over: LICENSE, LICENSE.md, COPYING.txt, NOTICE, ... at the top of the source. */
    private static final Pattern LICENCE = Pattern.compile("(?i)^(licen[cs]e|copying|notice)(\\.(md|txt|rst))?$");

    private static final Pattern PICKLE = Pattern.compile("(?i).*\\.(bin|pt|pth|ckpt|pkl|pickle)$");

    public SnapshotFiles {
        carried = List.copyOf(carried);
        transformer = List.copyOf(transformer);
        leftOut = List.copyOf(leftOut);
    }

    /**
     * Sorts every file of {@code source} (symbolic links followed, as a Hugging Face cache's snapshot folders are
     * made of them) into carried, transformer and left out; a file that {@code skip} selects, or that lies in a folder
     * it selects, is in none of them (the caller's own leftovers, such as a marker or a checkpoints folder).
     */
    public static SnapshotFiles of(FluxSnapshot source, Predicate<Path> skip) {
        Path root = source.root();
        Set<Path> transformerFiles = new HashSet<>();
        for (Path p : source.transformerWeightFiles()) {
            transformerFiles.add(root.relativize(p));
        }
        Set<String> autoencoder = new HashSet<>();
        for (Path p : source.autoencoderFiles()) {
            autoencoder.add(root.relativize(p).toString());
        }
        List<Path> all;
        try (Stream<Path> s = Files.walk(root, FileVisitOption.FOLLOW_LINKS)) {
            all = s.filter(Files::isRegularFile).map(root::relativize).sorted().toList();
        } catch (IOException | UncheckedIOException e) {
            throw new ModelException("cannot list the model folder " + root + ": " + e.getMessage(), e);
        }
        List<Path> carried = new ArrayList<>(), transformer = new ArrayList<>(), leftOut = new ArrayList<>();
        for (Path rel : all) {
            if (skipped(rel, skip) || rel.equals(TRANSFORMER_CONFIG)) {
                continue;
            }
            if (transformerFiles.contains(rel)) {
                transformer.add(rel);
            } else if (carries(rel, autoencoder)) {
                carried.add(rel);
            } else {
                leftOut.add(rel);
            }
        }
        return new SnapshotFiles(root, carried, transformer, leftOut);
    }

    private static boolean carries(Path rel, Set<String> autoencoder) {
        String top = rel.getName(0).toString();
        if (rel.getNameCount() == 1) {
            return top.equals(MODEL_INDEX)
                    || autoencoder.contains(top)
                    || LICENCE.matcher(top).matches();
        }
        return (COMPONENT_FOLDERS.contains(top) || autoencoder.contains(top))
                && !PICKLE.matcher(rel.getFileName().toString()).matches();
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

    /** Hard-links (or, where the file system refuses, copies) every carried file into {@code target}. */
    public void linkInto(Path target) throws IOException {
        for (Path rel : carried) {
            Path src = root.resolve(rel);
            Path dst = target.resolve(rel.toString());
            Files.createDirectories(dst.getParent());
            try {
                Files.createLink(dst, src.toRealPath());
            } catch (IOException | UnsupportedOperationException e) {
                Files.copy(src, dst, StandardCopyOption.COPY_ATTRIBUTES);
            }
        }
    }

    /** What {@link #carried} and {@link #transformer} leave out, a folder none of whose files is carried as one entry. */
    public List<String> leftOutSummary() {
        Set<String> carriedTops = new HashSet<>();
        for (Path p : carried) {
            carriedTops.add(p.getName(0).toString());
        }
        TreeMap<String, Integer> folders = new TreeMap<>();
        Set<String> out = new LinkedHashSet<>();
        for (Path p : leftOut) {
            String top = p.getName(0).toString();
            if (p.getNameCount() > 1 && !carriedTops.contains(top) && !top.equals("transformer")) {
                folders.merge(top, 1, Integer::sum);
                out.add(top + "/");
            } else {
                out.add(p.toString());
            }
        }
        List<String> lines = new ArrayList<>();
        for (String s : out) {
            Integer n = folders.get(s.substring(0, s.length() - 1));
            lines.add(s.endsWith("/") && n != null ? s + " (" + n + (n == 1 ? " file)" : " files)") : s);
        }
        return lines;
    }

    /**
     * One line for the user: {@code left out: flux1-dev.safetensors (the full-precision transformer); README.md,
     * dev_grid.jpg (not needed)}.
     */
    public String leftOutLine() {
        List<String> parts = new ArrayList<>();
        if (!transformer.isEmpty()) {
            parts.add(String.join(", ", transformer.stream().map(Path::toString).toList())
                    + " (the full-precision transformer)");
        }
        List<String> others = leftOutSummary();
        if (!others.isEmpty()) {
            parts.add(String.join(", ", others) + " (not needed to run it)");
        }
        return parts.isEmpty() ? "left out: nothing" : "left out: " + String.join("; ", parts);
    }
}
