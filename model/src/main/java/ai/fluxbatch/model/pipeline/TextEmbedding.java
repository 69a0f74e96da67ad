package ai.fluxbatch.model.pipeline;

/**
 * A prompt's conditioning as the reference computes it: T5 ids and sequence embedding {@code txt [T, context]},
 * CLIP ids and pooled vector {@code y [vec]}, both embeddings rounded to bfloat16.
 */
public record TextEmbedding(String prompt, int[] t5Ids, int[] clipIds, float[] txt, float[] y) {}
