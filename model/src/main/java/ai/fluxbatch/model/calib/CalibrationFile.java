package ai.fluxbatch.model.calib;

import ai.fluxbatch.model.FiniteValues;
import ai.fluxbatch.model.ModelException;
import ai.fluxbatch.model.safetensors.DType;
import ai.fluxbatch.model.safetensors.SafetensorsException;
import ai.fluxbatch.model.safetensors.SafetensorsFile;
import ai.fluxbatch.model.safetensors.SafetensorsWriter;
import ai.fluxbatch.model.safetensors.TensorInfo;
import ai.fluxbatch.model.safetensors.TensorSource;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.SortedMap;
import java.util.TreeMap;
import java.util.TreeSet;
import java.util.function.Predicate;

/**
 * Calibration statistics as one safetensors file: per layer {@code <layer>.tokens} (I64 [1]), {@code .input_sum} and
 * {@code .input_sum_sq} (F64 [in]), {@code .input_absmax} (F32 [in]) and, when recorded, {@code .input_gram} (F32
 * [in, in]); {@code __metadata__} holds the format, its version and what the job says (model, prompts, steps, counts).
 */
public final class CalibrationFile {
    public static final String FORMAT = "fluxbatch-calibration";
    public static final String VERSION = "1";
    public static final String KEY_FORMAT = "format";
    public static final String KEY_VERSION = "format_version";

    private static final String TOKENS = ".tokens";
    private static final String SUM = ".input_sum";
    private static final String SUM_SQ = ".input_sum_sq";
    private static final String ABSMAX = ".input_absmax";
    private static final String GRAM = ".input_gram";
    private static final List<String> SUFFIXES = List.of(TOKENS, SUM, SUM_SQ, ABSMAX, GRAM);

    /** Statistics read back, with the file's metadata. */
    public record Contents(CalibrationStats stats, Map<String, String> metadata) {}

    /**
     * What statistics files hold for one layer, from their headers and token counts alone (no array read): enough to
     * check a quantization plan before the statistics themselves, Gram matrices included, are read where they are used.
     */
    public record LayerSummary(int inFeatures, long tokens, boolean hasGram) {
        /** The summary of statistics in memory. */
        public static LayerSummary of(LayerStats stats) {
            return new LayerSummary(stats.inFeatures(), stats.tokens(), stats.hasGram());
        }

        /** The summary of the merged statistics; refused as {@link LayerStats#merge} refuses them. */
        LayerSummary plus(LayerSummary other) {
            if (other.inFeatures != inFeatures || other.hasGram != hasGram) {
                throw new IllegalArgumentException("cannot merge statistics of " + other.inFeatures + " inputs"
                        + (other.hasGram ? " with Gram" : "") + " into " + inFeatures + " inputs"
                        + (hasGram ? " with Gram" : ""));
            }
            return new LayerSummary(inFeatures, tokens + other.tokens, hasGram);
        }
    }

    private CalibrationFile() {}

    public static void write(CalibrationStats stats, Map<String, String> metadata, Path target) {
        SafetensorsWriter w =
                new SafetensorsWriter().metadata(KEY_FORMAT, FORMAT).metadata(KEY_VERSION, VERSION);
        metadata.forEach(w::metadata);
        for (var e : stats.layers().entrySet()) {
            String l = e.getKey();
            LayerStats s = e.getValue();
            long in = s.inFeatures();
            w.addI64(l + TOKENS, new long[] {1}, new long[] {s.tokens()});
            w.add(l + SUM, DType.F64, new long[] {in}, doubles(s.sum()));
            w.add(l + SUM_SQ, DType.F64, new long[] {in}, doubles(s.sumSq()));
            w.addF32(l + ABSMAX, new long[] {in}, s.absMax());
            if (s.hasGram()) {
                w.addF32(l + GRAM, new long[] {in, in}, s.gram());
            }
        }
        w.write(target);
    }

    /**
     * Several statistics files merged into one value (files from runs over different --layers add up to the whole
     * model; files over the same layers add their tokens); the metadata is the first file's, plus {@code parts}.
     */
    public static Contents readAll(List<Path> files) {
        return readAll(files, layer -> true);
    }

    /**
     * {@link #readAll(List)} with the statistics of the layers {@code layers} selects only (the same values, merged in
     * the same order), so that a worker holds just the layers it quantizes; every file is still checked as a whole
     * (format, version, tensor names, dtypes and shapes), the values of the selected layers only.
     */
    public static Contents readAll(List<Path> files, Predicate<String> layers) {
        Contents first = read(files.get(0), layers);
        for (Path f : files.subList(1, files.size())) {
            try {
                first.stats().merge(read(f, layers).stats());
            } catch (IllegalArgumentException e) {
                throw mergeFailure(files, f, e);
            }
        }
        Map<String, String> meta = new LinkedHashMap<>(first.metadata());
        if (files.size() > 1) {
            meta.put("parts", String.valueOf(files.size()));
        }
        return new Contents(first.stats(), meta);
    }

    /**
     * Per layer what {@link #readAll(List)} would give, in summary: input channels, tokens in all files, whether there
     * is a Gram matrix. Refuses what {@code readAll} refuses from headers and token counts (files of another format or
     * version, unknown or missing tensors, wrong dtypes or shapes, negative counts, layers that do not merge), with
     * the same messages; the values themselves (finite, non-negative) are checked only when read.
     */
    public static SortedMap<String, LayerSummary> summarize(List<Path> files) {
        SortedMap<String, LayerSummary> all = new TreeMap<>();
        for (Path f : files) {
            SortedMap<String, LayerSummary> some = new TreeMap<>();
            try (TensorSource src = open(f)) {
                for (String l : layers(src, f)) {
                    LayerSummary s = summary(src, f, l);
                    requireTokens(f, l, s.tokens());
                    some.put(l, s);
                }
            } catch (SafetensorsException e) {
                throw unreadable(f, e);
            }
            for (var e : some.entrySet()) {
                try {
                    all.merge(e.getKey(), e.getValue(), LayerSummary::plus);
                } catch (IllegalArgumentException ex) {
                    throw mergeFailure(
                            files, f, new IllegalArgumentException("layer " + e.getKey() + ": " + ex.getMessage(), ex));
                }
            }
        }
        return all;
    }

    private static ModelException mergeFailure(List<Path> files, Path f, IllegalArgumentException e) {
        return new ModelException(
                "cannot merge calibration statistics " + f + " into " + files.get(0) + ": " + e.getMessage(), e);
    }

    /**
     * Reads a statistics file by its content, whatever its name ({@code calibrate --output stats} writes one without
     * an extension, and quantize takes it back as it is): the one rule for both is "a safetensors file whose metadata
     * says {@value #FORMAT}".
     */
    public static Contents read(Path file) {
        return read(file, layer -> true);
    }

    private static Contents read(Path file, Predicate<String> load) {
        try (TensorSource src = open(file)) {
            Map<String, String> meta = new LinkedHashMap<>(src.metadata());
            meta.remove(KEY_FORMAT);
            meta.remove(KEY_VERSION);
            CalibrationStats stats = new CalibrationStats();
            for (String l : layers(src, file)) {
                LayerSummary s = summary(src, file, l);
                if (load.test(l)) {
                    stats.put(l, layer(src, file, l, s));
                }
            }
            return new Contents(stats, meta);
        } catch (SafetensorsException e) {
            throw unreadable(file, e);
        }
    }

    /** The file opened, once its metadata says it is statistics of this format version. */
    private static TensorSource open(Path file) {
        TensorSource src = SafetensorsFile.open(file);
        try {
            Map<String, String> meta = src.metadata();
            if (!FORMAT.equals(meta.get(KEY_FORMAT))) {
                throw new ModelException(file + " is not a calibration statistics file: its metadata " + KEY_FORMAT
                        + " is " + meta.get(KEY_FORMAT) + ", expected " + FORMAT + " (made by fluxbatch calibrate)");
            }
            if (!VERSION.equals(meta.get(KEY_VERSION))) {
                throw new ModelException(
                        file + " has calibration format version " + meta.get(KEY_VERSION) + ", expected " + VERSION);
            }
            return src;
        } catch (RuntimeException e) {
            src.close();
            throw e;
        }
    }

    /** The layers of a statistics file, once every tensor is one of a layer's. */
    private static TreeSet<String> layers(TensorSource src, Path file) {
        TreeSet<String> layers = new TreeSet<>();
        for (String n : src.names()) {
            if (n.endsWith(TOKENS)) {
                layers.add(n.substring(0, n.length() - TOKENS.length()));
            }
        }
        if (layers.isEmpty()) {
            throw new ModelException(file + " holds no layer statistics (no <layer>" + TOKENS + " entry)");
        }
        for (String n : src.names()) {
            String suffix = n.substring(Math.max(0, n.lastIndexOf('.')));
            String layer = n.substring(0, n.length() - suffix.length());
            if (!SUFFIXES.contains(suffix) || !layers.contains(layer)) {
                throw new ModelException(file + " holds an unexpected tensor '" + n + "': expected only <layer>"
                        + String.join(", <layer>", SUFFIXES) + " entries of layers that have a " + TOKENS
                        + " entry (the file is corrupt or not made by fluxbatch calibrate)");
            }
        }
        return layers;
    }

    private static ModelException unreadable(Path file, SafetensorsException e) {
        return new ModelException("calibration statistics " + file + " cannot be read: " + e.getMessage(), e);
    }

    /** A layer's entries checked by dtype and shape, and its token count. */
    private static LayerSummary summary(TensorSource src, Path file, String l) {
        int in = Math.toIntExact(require(src, file, l + SUM, DType.F64).shape()[0]);
        require(src, file, l + SUM_SQ, DType.F64, in);
        require(src, file, l + ABSMAX, DType.F32, in);
        require(src, file, l + TOKENS, DType.I64, 1);
        boolean gram = src.contains(l + GRAM);
        if (gram) {
            require(src, file, l + GRAM, DType.F32, in, in);
        }
        return new LayerSummary(in, src.longs(l + TOKENS)[0], gram);
    }

    private static void requireTokens(Path file, String l, long tokens) {
        if (tokens < 0) {
            throw new ModelException(file + ": " + l + TOKENS + " is " + tokens + ", expected a token count >= 0"
                    + " (the file is corrupt)");
        }
    }

    private static LayerStats layer(TensorSource src, Path file, String l, LayerSummary s) {
        int in = s.inFeatures();
        float[] gram = s.hasGram() ? finite(file, l + GRAM, src.floats(l + GRAM)) : null;
        long tokens = s.tokens();
        requireTokens(file, l, tokens);
        double[] sumSq = finite(file, l + SUM_SQ, src.doubles(l + SUM_SQ));
        float[] absMax = finite(file, l + ABSMAX, src.floats(l + ABSMAX));
        requireNonNegative(file, l + SUM_SQ, Arrays.stream(sumSq).min().orElse(0));
        for (float a : absMax) {
            requireNonNegative(file, l + ABSMAX, a);
        }
        return new LayerStats(in, tokens, finite(file, l + SUM, src.doubles(l + SUM)), sumSq, absMax, gram);
    }

    private static float[] finite(Path file, String name, float[] v) {
        int i = FiniteValues.firstNonFinite(v);
        if (i >= 0) {
            throw nonFinite(file, name, i, v[i]);
        }
        return v;
    }

    private static double[] finite(Path file, String name, double[] v) {
        int i = FiniteValues.firstNonFinite(v);
        if (i >= 0) {
            throw nonFinite(file, name, i, v[i]);
        }
        return v;
    }

    private static ModelException nonFinite(Path file, String name, int index, double value) {
        return new ModelException(file + ": " + name + " holds " + value + " at index " + index
                + ": expected finite statistics (the file is corrupt)");
    }

    private static void requireNonNegative(Path file, String name, double min) {
        if (min < 0) {
            throw new ModelException(
                    file + ": " + name + " holds " + min + ", expected values >= 0 (the file is" + " corrupt)");
        }
    }

    private static TensorInfo require(TensorSource src, Path file, String name, DType dtype, long... shape) {
        if (!src.contains(name)) {
            throw new ModelException(file + " lacks " + name + ": expected " + dtype + " statistics for that layer");
        }
        TensorInfo info = src.info(name);
        boolean shapeOk = shape.length == 0 ? info.shape().length == 1 : Arrays.equals(info.shape(), shape);
        if (info.dtype() != dtype || !shapeOk) {
            throw new ModelException(file + ": " + name + " is " + info.dtype() + " " + Arrays.toString(info.shape())
                    + ", expected " + dtype + (shape.length == 0 ? " [in]" : " " + Arrays.toString(shape)));
        }
        return info;
    }

    private static ByteBuffer doubles(double[] v) {
        ByteBuffer b = ByteBuffer.allocate(8 * v.length).order(ByteOrder.LITTLE_ENDIAN);
        b.asDoubleBuffer().put(v);
        return b;
    }
}
