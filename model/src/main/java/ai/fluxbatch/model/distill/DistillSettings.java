package ai.fluxbatch.model.distill;

import java.io.Serializable;

/**
 * What every training sample shares: the image size (as {@code generate --height/--width}), the guidance the teacher
 * and the student are run with (guidance-distilled models only), and the T5 sequence length of the text embeddings.
 */
public record DistillSettings(int height, int width, float guidance, int maxSequenceLength) implements Serializable {}
