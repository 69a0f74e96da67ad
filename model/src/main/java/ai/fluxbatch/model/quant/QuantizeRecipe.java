package ai.fluxbatch.model.quant;

import ai.fluxbatch.model.ModelException;
import ai.fluxbatch.model.calib.CalibrationFile.LayerSummary;
import ai.fluxbatch.model.calib.CalibrationStats;
import ai.fluxbatch.model.calib.LayerStats;
import ai.fluxbatch.model.safetensors.TensorInfo;
import ai.fluxbatch.model.safetensors.TensorSource;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.function.Function;
import java.util.function.Predicate;
import java.util.regex.Pattern;

/**
 * A method and, for calibrated methods, the activation statistics it reads, with the metadata that records both in
 * the quantized checkpoint ({@code calibration}: the statistics file's SHA-256, or "none").
 */
public record QuantizeRecipe(
        LayerQuantizer method,
        CalibrationStats stats,
        String statsFile,
        String statsSha256,
        Map<String, String> statsMetadata,
        String layers) {
    public static final QuantizeRecipe ABSMEAN =
            new QuantizeRecipe(QuantizeMethods.byName(AbsmeanQuantizer.METHOD), null, null, null, Map.of());

    /** Every block layer. */
    public QuantizeRecipe(
            LayerQuantizer method,
            CalibrationStats stats,
            String statsFile,
            String statsSha256,
            Map<String, String> statsMetadata) {
        this(method, stats, statsFile, statsSha256, statsMetadata, null);
    }

    /** The same method and statistics for the block layers whose name matches {@code regex} (null: all) only. */
    public QuantizeRecipe forLayers(String regex) {
        return new QuantizeRecipe(method, stats, statsFile, statsSha256, statsMetadata, regex);
    }

    boolean selects(String layer) {
        return layers == null || Pattern.matches(layers, layer);
    }

    public QuantizeRecipe {
        if (method.needsStatistics() && stats == null) {
            throw new ModelException("method " + method.name() + " needs activation statistics: run fluxbatch calibrate"
                    + (method.needsGram() ? " --gram" : "") + " and pass --calibration STATS");
        }
    }

    /** Checks, before anything is written, that the statistics fit every layer this checkpoint quantizes. */
    void check(TensorSource source, Predicate<String> quantizedNow) {
        check(source, quantizedNow, layer -> {
            LayerStats s = stats.get(layer);
            return s == null ? null : LayerSummary.of(s);
        });
    }

    /** {@link #check(TensorSource, Predicate)} against summaries of the statistics (null: none for that layer). */
    void check(TensorSource source, Predicate<String> quantizedNow, Function<String, LayerSummary> summaries) {
        if (!method.needsStatistics()) {
            return;
        }
        for (String name : source.names()) {
            TensorInfo info = source.info(name);
            if (!quantizedNow.test(name)) {
                continue;
            }
            String layer = name.substring(0, name.length() - ".weight".length());
            LayerSummary s = summaries.apply(layer);
            if (s == null) {
                throw new ModelException("calibration statistics " + statsFile + " have nothing for layer " + layer
                        + " (" + Arrays.toString(info.shape()) + ") of " + source.file(name) + ": they were recorded"
                        + " for another model (" + statsMetadata.getOrDefault("model", "unknown") + ")");
            }
            if (s.inFeatures() != info.shape()[1]) {
                throw new ModelException("calibration statistics " + statsFile + ": layer " + layer + " has "
                        + s.inFeatures() + " input channels there, but its weight in " + source.file(name) + " is "
                        + Arrays.toString(info.shape()) + ": statistics from another model");
            }
            if (s.tokens() == 0) {
                throw new ModelException("calibration statistics " + statsFile + ": layer " + layer + " saw no tokens");
            }
            if (method.needsGram() && !s.hasGram()) {
                throw new ModelException("method " + method.name() + " needs the Gram matrix of every layer's inputs,"
                        + " but " + statsFile + " has none for layer " + layer + ": recalibrate with --gram");
            }
        }
    }

    LayerQuantizer.Result quantize(String layer, float[] w, int out, int in, boolean hasBias) {
        return method.quantize(w, out, in, stats == null ? null : stats.get(layer), hasBias);
    }

    /** The checkpoint metadata naming the calibration (the statistics' own metadata under {@code calibration_*}). */
    Map<String, String> metadata() {
        Map<String, String> m = new LinkedHashMap<>();
        if (!method.needsStatistics()) {
            m.put(TernaryFormat.KEY_CALIBRATION, "none");
            return m;
        }
        m.put(TernaryFormat.KEY_CALIBRATION, "sha256:" + statsSha256);
        m.put(TernaryFormat.KEY_CALIBRATION + "_file", statsFile);
        statsMetadata.forEach((k, v) -> m.put(TernaryFormat.KEY_CALIBRATION + "_" + k, v));
        return m;
    }
}
