package ai.fluxbatch.jobs.quantize;

import ai.fluxbatch.model.calib.CalibrationStats;
import ai.fluxbatch.model.quant.LayerQuantizer;
import ai.fluxbatch.model.quant.QuantizeMethods;
import ai.fluxbatch.model.quant.QuantizeRecipe;
import java.io.Serializable;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;

/**
 * What every task of one quantize run shares; shipped to executors, so plain serializable values only: the source
 * transformer checkpoint and the statistics files (paths every node sees the same way), the source's SHA-256 as the
 * driver computed it, the method by name, what the checkpoint records about the statistics, and the {@code --layers}
 * regular expression (null: every block layer). Each task builds its own quantizer from these.
 */
public record QuantizeSettings(
        String transformer,
        String sourceSha256,
        String method,
        List<String> calibration,
        String statsFile,
        String statsSha256,
        Map<String, String> statsMetadata,
        String layers)
        implements Serializable {
    public QuantizeSettings {
        Objects.requireNonNull(transformer, "transformer");
        Objects.requireNonNull(sourceSha256, "sourceSha256");
        Objects.requireNonNull(method, "method");
        calibration = List.copyOf(calibration);
        statsMetadata = new LinkedHashMap<>(statsMetadata); // ordered: the checkpoint header lists them in this order
    }

    /** The settings of a driver's recipe for {@code transformer}, whose statistics files are {@code calibration}. */
    public static QuantizeSettings of(
            String transformer, String sourceSha256, QuantizeRecipe recipe, List<String> calibration) {
        return new QuantizeSettings(
                transformer,
                sourceSha256,
                recipe.method().name(),
                calibration,
                recipe.statsFile(),
                recipe.statsSha256(),
                recipe.statsMetadata(),
                recipe.layers());
    }

    /** The recipe with {@code stats} (null for a method that reads none): what the driver's recipe was, with them. */
    public QuantizeRecipe recipe(CalibrationStats stats) {
        LayerQuantizer quantizer = QuantizeMethods.byName(method);
        return new QuantizeRecipe(
                quantizer, quantizer.needsStatistics() ? stats : null, statsFile, statsSha256, statsMetadata, layers);
    }
}
