package ai.fluxbatch.model.text;

/** Sizes of a CLIP text model, derived from its tensors. */
public record ClipTextConfig(
        int vocabSize, int hidden, int heads, int intermediate, int layers, int maxPositions, float eps) {
    public int headDim() {
        return hidden / heads;
    }

    @Override
    public String toString() {
        return "CLIP text model (hidden " + hidden + ", " + heads + " heads, mlp " + intermediate + ", " + layers
                + " layers, " + maxPositions + " positions, vocab " + vocabSize + ")";
    }
}
