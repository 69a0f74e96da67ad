package ai.fluxbatch.model.quant;

import ai.fluxbatch.model.calib.LayerStats;
import java.util.List;

/** The quantization methods {@code fluxbatch quantize --method} knows, by name. */
public final class QuantizeMethods {
    /** What {@code --calibration} without {@code --method} uses: the calibrated method that measured best. */
    public static final String BEST_CALIBRATED = TernaryGptqQuantizer.METHOD;

    private static final LayerQuantizer ABSMEAN = new LayerQuantizer() {
        @Override
        public String name() {
            return AbsmeanQuantizer.METHOD;
        }

        @Override
        public boolean needsStatistics() {
            return false;
        }

        @Override
        public boolean needsGram() {
            return false;
        }

        @Override
        public Result quantize(float[] w, int out, int in, LayerStats stats, boolean hasBias) {
            AbsmeanQuantizer.Result r = AbsmeanQuantizer.quantize(w, out, in);
            return new Result(r.codes(), r.scale(), null);
        }
    };

    private static final List<LayerQuantizer> ALL =
            List.of(ABSMEAN, new ScaleRefitQuantizer(), new TernaryGptqQuantizer());

    private QuantizeMethods() {}

    public static List<String> names() {
        return ALL.stream().map(LayerQuantizer::name).toList();
    }

    public static LayerQuantizer byName(String name) {
        return ALL.stream()
                .filter(m -> m.name().equals(name))
                .findFirst()
                .orElseThrow(() -> new IllegalArgumentException(
                        "unknown quantization method '" + name + "': expected one of " + names()));
    }
}
