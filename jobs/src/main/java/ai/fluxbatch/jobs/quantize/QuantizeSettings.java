package ai.fluxbatch.jobs.quantize;

import ai.fluxbatch.jobs.model.ModelLocation;
import ai.fluxbatch.model.calib.CalibrationStats;
import ai.fluxbatch.model.quant.LayerQuantizer;
import ai.fluxbatch.model.quant.QuantizeMethods;
import ai.fluxbatch.model.quant.QuantizeRecipe;
import java.io.Serializable;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import org.apache.hadoop.conf.Configuration;

/**
 * What every task of one quantize run shares; shipped to executors, so plain serializable values only: the source
 * transformer checkpoint (a path every node sees the same way; or, when {@code --model} is a URI, {@code model}, that
 * URI, and {@code transformer} the checkpoint's path inside the snapshot, which each node resolves through its model
 * cache), the statistics files (paths every node sees the same way), the source's SHA-256 as the
 * driver computed it, the method by name, what the checkpoint records about the statistics, and the {@code --layers}
 * regular expression (null: every block layer). Each task builds its own quantizer from these.
 */
public record QuantizeSettings(
        String model,
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

    /**
     * The settings of a driver's recipe for {@code transformer} (of the URI {@code model}, or null for a local
     * folder), whose statistics files are {@code calibration}.
     */
    public static QuantizeSettings of(
            String model, String transformer, String sourceSha256, QuantizeRecipe recipe, List<String> calibration) {
        return new QuantizeSettings(
                model,
                transformer,
                sourceSha256,
                recipe.method().name(),
                calibration,
                recipe.statsFile(),
                recipe.statsSha256(),
                recipe.statsMetadata(),
                recipe.layers());
    }

    /**
     * The transformer checkpoint on this node: {@code transformer} itself, or, for a {@code model} URI, its copy in
     * this node's model cache (downloaded first if it is not there), reached through {@code hadoop}.
     */
    public Path transformerFile(Configuration hadoop) {
        return model == null
                ? Path.of(transformer)
                : ModelLocation.folder(model, hadoop).resolve(transformer);
    }

    /** The recipe with {@code stats} (null for a method that reads none): what the driver's recipe was, with them. */
    public QuantizeRecipe recipe(CalibrationStats stats) {
        LayerQuantizer quantizer = QuantizeMethods.byName(method);
        return new QuantizeRecipe(
                quantizer, quantizer.needsStatistics() ? stats : null, statsFile, statsSha256, statsMetadata, layers);
    }
}
