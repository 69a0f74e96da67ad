package ai.fluxbatch.model.quant;

import ai.fluxbatch.model.calib.LayerStats;

/** One way to turn a weight matrix into ternary codes with per-output-channel scales. */
public interface LayerQuantizer {
    /** Codes {@code [out, in]} in {-1, 0, 1}, scales {@code [out]}, and what to add to the bias (null: nothing). */
    record Result(byte[] codes, float[] scale, float[] biasShift) {}

    String name();

    /** Whether the method reads activation statistics at all. */
    boolean needsStatistics();

    /** Whether the method needs the Gram matrix ({@code calibrate --gram}), not just per-channel statistics. */
    boolean needsGram();

    /** {@code stats} is null only for methods that need none; {@code hasBias} says whether a bias shift can be stored. */
    Result quantize(float[] w, int out, int in, LayerStats stats, boolean hasBias);
}
