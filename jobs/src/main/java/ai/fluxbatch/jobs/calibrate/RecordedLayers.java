package ai.fluxbatch.jobs.calibrate;

import ai.fluxbatch.model.calib.LayerStats;
import ai.fluxbatch.model.quant.TernaryFormat;
import ai.fluxbatch.model.safetensors.TensorInfo;
import ai.fluxbatch.model.safetensors.TensorSource;
import ai.fluxbatch.model.snapshot.FluxSnapshot;
import java.util.Collections;
import java.util.Map;
import java.util.SortedMap;
import java.util.TreeMap;

/**
 * The layers a calibrate run records, read from the transformer's safetensors header alone (no weights): every
 * quantizable layer whose name the settings select, with its input width, so the driver knows what the statistics
 * will weigh before any executor starts.
 */
public final class RecordedLayers {
    private final SortedMap<String, Integer> inputs;
    private final int quantizable;

    private RecordedLayers(SortedMap<String, Integer> inputs, int quantizable) {
        this.inputs = inputs;
        this.quantizable = quantizable;
    }

    /**
     * Reads the layers of the snapshot's transformer that are still full precision; refuses a fully quantized
     * checkpoint and a layer selection that matches nothing. A partly quantized one (quantize --layers) is fine: its
     * ternary layers run as they are and only the others are recorded, which is how sequential calibration sees
     * the inputs the quantized model really gives the next layers.
     */
    public static RecordedLayers of(FluxSnapshot snapshot, CalibrateSettings settings) {
        TreeMap<String, Integer> selected = new TreeMap<>();
        String example = null;
        int quantizable = 0;
        Map<String, String> meta;
        try (TensorSource weights = snapshot.openTransformer()) {
            meta = weights.metadata();
            for (String name : weights.names()) {
                TensorInfo info = weights.info(name);
                if (!TernaryFormat.isQuantized(name, info.shape()) || weights.contains(TernaryFormat.scaleName(name))) {
                    continue;
                }
                quantizable++;
                String layer = name.substring(0, name.length() - ".weight".length());
                example = example == null ? layer : example;
                if (settings.records(layer)) {
                    selected.put(layer, Math.toIntExact(info.shape()[1]));
                }
            }
        }
        if (quantizable == 0 && meta.containsKey(TernaryFormat.KEY_FORMAT)) {
            throw new IllegalArgumentException("calibrate needs full-precision layers to record: every block layer of "
                    + snapshot.transformerFile() + " is already quantized (method " + meta.get(TernaryFormat.KEY_METHOD)
                    + "); pass --model the BF16 snapshot it was made from");
        }
        if (quantizable == 0) {
            throw new IllegalArgumentException(snapshot.transformerFile() + " has no quantizable layers (2-D *.weight"
                    + " inside double_blocks.N / single_blocks.N): expected a FLUX.1 transformer checkpoint");
        }
        if (selected.isEmpty()) {
            throw new IllegalArgumentException("--layers " + settings.layers() + " matches none of the " + quantizable
                    + " quantizable layers of " + snapshot.transformerFile() + " (names such as " + example + ")");
        }
        return new RecordedLayers(Collections.unmodifiableSortedMap(selected), quantizable);
    }

    /** Layer name to input width. */
    public SortedMap<String, Integer> inputs() {
        return inputs;
    }

    public int count() {
        return inputs.size();
    }

    /** How many quantizable layers the transformer has, recorded or not. */
    public int quantizable() {
        return quantizable;
    }

    /** Bytes one partial result holds: the statistics of every recorded layer. */
    public long statsBytes(boolean gram) {
        return inputs.values().stream()
                .mapToLong(in -> LayerStats.bytes(in, gram))
                .sum();
    }
}
