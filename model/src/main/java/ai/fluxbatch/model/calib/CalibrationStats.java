package ai.fluxbatch.model.calib;

import java.io.Serializable;
import java.util.Collections;
import java.util.SortedMap;
import java.util.TreeMap;

/**
 * The input statistics of every recorded linear layer, by layer name ({@code double_blocks.0.img_attn.qkv}): the value
 * partitions compute and {@code treeAggregate} merges. Merging adds layer by layer; a layer only one side has is kept.
 */
public final class CalibrationStats implements Serializable {
    private static final long serialVersionUID = 1L;

    private final TreeMap<String, LayerStats> layers = new TreeMap<>();

    /** The statistics of {@code layer}, created empty on first use. */
    public LayerStats layer(String layer, int in, boolean withGram) {
        return layers.computeIfAbsent(layer, k -> new LayerStats(in, withGram));
    }

    public void put(String layer, LayerStats stats) {
        layers.put(layer, stats);
    }

    /** Adds {@code other} into this and returns this; {@code other}'s arrays are copied, never shared. */
    public CalibrationStats merge(CalibrationStats other) {
        for (var e : other.layers.entrySet()) {
            LayerStats mine = layers.get(e.getKey());
            if (mine == null) {
                layers.put(e.getKey(), e.getValue().copy());
            } else {
                try {
                    mine.merge(e.getValue());
                } catch (IllegalArgumentException ex) {
                    throw new IllegalArgumentException("layer " + e.getKey() + ": " + ex.getMessage(), ex);
                }
            }
        }
        return this;
    }

    public SortedMap<String, LayerStats> layers() {
        return Collections.unmodifiableSortedMap(layers);
    }

    public LayerStats get(String layer) {
        return layers.get(layer);
    }

    public boolean isEmpty() {
        return layers.isEmpty();
    }

    /** Tokens the recorded layers saw in total. */
    public long tokens() {
        return layers.values().stream().mapToLong(LayerStats::tokens).sum();
    }
}
