package ai.fluxbatch.model.distill;

import ai.fluxbatch.model.ModelException;
import ai.fluxbatch.model.safetensors.DType;
import ai.fluxbatch.model.safetensors.SafetensorsFile;
import ai.fluxbatch.model.safetensors.SafetensorsWriter;
import ai.fluxbatch.model.safetensors.TensorSource;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.TreeMap;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;

/**
 * A distillation's state after {@code step} steps, enough to continue it exactly: the student's trainable parameters,
 * Adam's state, the loss of every step so far, and what identifies the run ({@code run}: model, prompts, settings),
 * which a resumed run must match. One safetensors file per checkpoint, {@code step-000025.safetensors}, written to a
 * temporary name and renamed, so a checkpoint is either complete or absent.
 */
public record DistillCheckpoint(
        int step, TrainableParameters parameters, Adam.State adam, double[] losses, Map<String, String> run) {
    public static final String FORMAT = "fluxbatch-distill-checkpoint";
    public static final String VERSION = "1";

    private static final Pattern FILE = Pattern.compile("step-(\\d{6,})\\.safetensors");
    private static final Pattern TEMPORARY = Pattern.compile("\\.step-\\d{6,}\\.safetensors\\.tmp-.*");
    private static final String FIRST = "adam.first.";
    private static final String SECOND = "adam.second.";
    private static final String LOSS = "loss";
    private static final String RUN = "run.";

    public DistillCheckpoint {
        if (step < 1) {
            throw new IllegalArgumentException("a checkpoint comes after step 1 or later, not " + step);
        }
        if (losses.length != step) {
            throw new IllegalArgumentException(
                    "a checkpoint after " + step + " steps has " + losses.length + " losses");
        }
        losses = losses.clone();
        run = java.util.Collections.unmodifiableMap(new TreeMap<>(run));
    }

    @Override
    public double[] losses() {
        return losses.clone();
    }

    public static String fileName(int step) {
        return String.format(java.util.Locale.ROOT, "step-%06d.safetensors", step);
    }

    /** Writes this checkpoint into {@code folder} (created if needed) and returns the file. */
    public Path write(Path folder) {
        try {
            Files.createDirectories(folder);
        } catch (IOException e) {
            throw new UncheckedIOException("cannot create the checkpoint folder " + folder + ": " + e.getMessage(), e);
        }
        SafetensorsWriter w = new SafetensorsWriter()
                .metadata("format", FORMAT)
                .metadata("format_version", VERSION)
                .metadata("step", Integer.toString(step))
                .metadata("adam_steps", Long.toString(adam.steps()));
        run.forEach((k, v) -> w.metadata(RUN + k, v));
        parameters.layers().forEach((layer, p) -> {
            w.addF32(Adam.scaleTensor(layer), new long[] {p.channels()}, p.scale());
            w.addF32(Adam.biasTensor(layer), new long[] {p.channels()}, p.bias());
        });
        adam.first().forEach((k, v) -> addF64(w, FIRST + k, v));
        adam.second().forEach((k, v) -> addF64(w, SECOND + k, v));
        addF64(w, LOSS, losses);
        Path file = folder.resolve(fileName(step));
        w.write(file);
        return file;
    }

    private static void addF64(SafetensorsWriter w, String name, double[] v) {
        ByteBuffer b = ByteBuffer.allocate(8 * v.length).order(ByteOrder.LITTLE_ENDIAN);
        b.asDoubleBuffer().put(v);
        w.add(name, DType.F64, new long[] {v.length}, b);
    }

    /** Reads a checkpoint file; anything but a complete checkpoint of this format is a {@link ModelException}. */
    public static DistillCheckpoint read(Path file) {
        try (TensorSource s = SafetensorsFile.open(file)) {
            Map<String, String> meta = s.metadata();
            if (!FORMAT.equals(meta.get("format")) || !VERSION.equals(meta.get("format_version"))) {
                throw new ModelException(file + " is not a distillation checkpoint of format " + FORMAT + " version "
                        + VERSION + " (format " + meta.get("format") + ", version " + meta.get("format_version") + ")");
            }
            int step = Integer.parseInt(meta.get("step"));
            Map<String, LayerParameters> layers = new LinkedHashMap<>();
            Map<String, double[]> first = new LinkedHashMap<>(), second = new LinkedHashMap<>();
            for (String name : s.names()) {
                if (name.startsWith(FIRST)) {
                    first.put(name.substring(FIRST.length()), s.doubles(name));
                } else if (name.startsWith(SECOND)) {
                    second.put(name.substring(SECOND.length()), s.doubles(name));
                } else if (name.endsWith(".weight_scale")) {
                    String layer = name.substring(0, name.length() - ".weight_scale".length());
                    String bias = Adam.biasTensor(layer);
                    if (!s.contains(bias)) {
                        throw new ModelException(file + " has " + name + " but no " + bias + ": a damaged checkpoint");
                    }
                    layers.put(layer, new LayerParameters(s.floats(name), s.floats(bias)));
                }
            }
            Map<String, String> run = new TreeMap<>();
            meta.forEach((k, v) -> {
                if (k.startsWith(RUN)) {
                    run.put(k.substring(RUN.length()), v);
                }
            });
            return new DistillCheckpoint(
                    step,
                    new TrainableParameters(layers),
                    new Adam.State(Long.parseLong(meta.get("adam_steps")), first, second),
                    s.doubles(LOSS),
                    run);
        } catch (RuntimeException e) {
            if (e instanceof ModelException) {
                throw e;
            }
            throw new ModelException("cannot read the distillation checkpoint " + file + ": " + e.getMessage(), e);
        }
    }

    /** The checkpoint files in {@code folder}, by step, highest last; none when the folder does not exist. */
    public static List<Path> list(Path folder) {
        if (!Files.isDirectory(folder)) {
            return List.of();
        }
        List<Path> files = new ArrayList<>();
        try (Stream<Path> s = Files.list(folder)) {
            s.filter(p -> FILE.matcher(p.getFileName().toString()).matches()).forEach(files::add);
        } catch (IOException e) {
            throw new UncheckedIOException("cannot list " + folder + ": " + e.getMessage(), e);
        }
        files.sort(Comparator.comparingLong(DistillCheckpoint::stepOf));
        return files;
    }

    /** The latest checkpoint in {@code folder}, if any. */
    public static Optional<DistillCheckpoint> latest(Path folder) {
        List<Path> files = list(folder);
        return files.isEmpty() ? Optional.empty() : Optional.of(read(files.get(files.size() - 1)));
    }

    /**
     * Deletes all but the {@code keep} latest checkpoints of {@code folder}, and temporaries a killed run left behind.
     */
    public static void prune(Path folder, int keep) {
        List<Path> files = list(folder);
        try {
            for (Path p : files.subList(0, Math.max(0, files.size() - keep))) {
                Files.deleteIfExists(p);
            }
            try (Stream<Path> s = Files.list(folder)) {
                for (Path p : s.filter(p ->
                                TEMPORARY.matcher(p.getFileName().toString()).matches())
                        .toList()) {
                    Files.deleteIfExists(p);
                }
            }
        } catch (IOException e) {
            throw new UncheckedIOException("cannot remove old checkpoints in " + folder + ": " + e.getMessage(), e);
        }
    }

    private static long stepOf(Path p) {
        Matcher m = FILE.matcher(p.getFileName().toString());
        if (!m.matches()) {
            throw new IllegalArgumentException(p + " is not a checkpoint file name");
        }
        return Long.parseLong(m.group(1));
    }
}
