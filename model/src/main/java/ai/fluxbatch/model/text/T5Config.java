package ai.fluxbatch.model.text;

/**
 * Sizes of a T5 v1.1 encoder (gated-GELU feed-forward, RMSNorm, relative position buckets), derived from its tensors.
 */
public record T5Config(
        int vocabSize, int dModel, int heads, int dKv, int dFf, int layers, int buckets, int maxDistance, float eps) {

    public int innerDim() {
        return heads * dKv;
    }

    @Override
    public String toString() {
        return "T5 encoder (d_model " + dModel + ", " + heads + " heads of " + dKv + ", d_ff " + dFf + ", " + layers
                + " layers, vocab " + vocabSize + ", " + buckets + " buckets up to distance " + maxDistance + ")";
    }
}
