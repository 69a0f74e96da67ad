package ai.fluxbatch.model.quant;

import ai.fluxbatch.model.ModelException;
import ai.fluxbatch.model.calib.CalibrationStats;
import ai.fluxbatch.model.calib.LayerStats;
import ai.fluxbatch.model.safetensors.TensorInfo;
import ai.fluxbatch.model.safetensors.TensorSource;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * A method and, for calibrated methods, the activation statistics it reads, with the metadata that records both in
 * the quantized checkpoint ({@code calibration}: the statistics file's SHA-256, or "none").
 */
public record QuantizeRecipe(LayerQuantizer method, CalibrationStats stats, String statsFile, String statsSha256,
                             Map<String, String> statsMetadata) {
    public static final QuantizeRecipe ABSMEAN = new QuantizeRecipe(QuantizeMethods.byName(AbsmeanQuantizer.METHOD),
            null, null, null, Map.of());

    public QuantizeRecipe {
        if (method.needsStatistics() && stats == null) {
            throw new ModelException("method " + method.name() + " needs activation statistics: run fluxbatch calibrate"
                    + (method.needsGram() ? " --gram" : "") + " and pass --calibration STATS");
        }
    }

    /** Checks, before anything is written, that the statistics fit every layer this checkpoint quantizes. */
    void check(TensorSource source) {
        if (!method.needsStatistics()) {
            return;
        }
        for (String name : source.names()) {
            TensorInfo info = source.info(name);
            if (!TernaryFormat.isQuantized(name, info.shape())) {
                continue;
            }
            String layer = name.substring(0, name.length() - ".weight".length());
            LayerStats s = stats.get(layer);
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
