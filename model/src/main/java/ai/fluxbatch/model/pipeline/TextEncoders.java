package ai.fluxbatch.model.pipeline;

import ai.fluxbatch.kernel.Backend;
import ai.fluxbatch.kernel.Tensor;
import ai.fluxbatch.kernel.TensorScope;
import ai.fluxbatch.model.safetensors.HalfFloats;
import ai.fluxbatch.model.snapshot.FluxSnapshot;
import ai.fluxbatch.model.text.ClipTextModel;
import ai.fluxbatch.model.text.T5Encoder;
import ai.fluxbatch.model.text.TextEncoderFiles;
import ai.fluxbatch.model.tokenizer.ClipTokenizer;
import ai.fluxbatch.model.tokenizer.T5Tokenizer;

/**
 * Both text encoders with their tokenizers: a prompt to its {@link TextEmbedding}, its T5 part {@code t5MaxLength}
 * tokens long unless a call asks for another length.
 */
public final class TextEncoders {
    /** The longest T5 sequence: what FLUX.1 was trained with, and the most diffusers' FluxPipeline accepts. */
    public static final int MAX_SEQUENCE_LENGTH = 512;

    private final Backend backend;
    private final ClipTokenizer clipTokenizer;
    private final T5Tokenizer t5Tokenizer;
    private final ClipTextModel clip;
    private final T5Encoder t5;
    private final int t5MaxLength;

    private TextEncoders(
            Backend backend,
            ClipTokenizer clipTokenizer,
            T5Tokenizer t5Tokenizer,
            ClipTextModel clip,
            T5Encoder t5,
            int t5MaxLength) {
        this.backend = backend;
        this.clipTokenizer = clipTokenizer;
        this.t5Tokenizer = t5Tokenizer;
        this.clip = clip;
        this.t5 = t5;
        this.t5MaxLength = t5MaxLength;
    }

    public static TextEncoders load(FluxSnapshot snapshot, Backend backend, int t5MaxLength) {
        return new TextEncoders(
                backend,
                ClipTokenizer.load(snapshot.clipTokenizer()),
                T5Tokenizer.load(snapshot.t5Tokenizer()),
                ClipTextModel.load(TextEncoderFiles.in(snapshot.clipTextEncoder()), backend),
                T5Encoder.load(TextEncoderFiles.in(snapshot.t5TextEncoder()), backend),
                t5MaxLength);
    }

    public int t5MaxLength() {
        return t5MaxLength;
    }

    public TextEmbedding embed(String prompt) {
        return embed(prompt, t5MaxLength);
    }

    /**
     * The embedding with {@code maxSequenceLength} T5 tokens (the prompt cut or padded to it), as diffusers'
     * {@code max_sequence_length}: 1 to {@value #MAX_SEQUENCE_LENGTH}.
     */
    public TextEmbedding embed(String prompt, int maxSequenceLength) {
        checkSequenceLength(maxSequenceLength);
        int[] t5Ids = t5Tokenizer.encode(prompt, maxSequenceLength);
        int[] clipIds = clipTokenizer.encode(prompt);
        try (TensorScope scope = backend.openScope()) {
            Tensor txt = t5.encode(t5Ids, 1);
            ClipTextModel.Output clipOut = clip.encode(clipIds, 1);
            return new TextEmbedding(
                    prompt,
                    t5Ids,
                    clipIds,
                    roundToBf16(backend.download(txt)),
                    roundToBf16(backend.download(clipOut.pooled())));
        }
    }

    /** Refuses a T5 length outside 1 to {@value #MAX_SEQUENCE_LENGTH}, naming it. */
    public static void checkSequenceLength(int maxSequenceLength) {
        if (maxSequenceLength < 1 || maxSequenceLength > MAX_SEQUENCE_LENGTH) {
            throw new IllegalArgumentException("max sequence length is " + maxSequenceLength + ", expected 1.."
                    + MAX_SEQUENCE_LENGTH + " T5 tokens (FLUX.1 was trained with " + MAX_SEQUENCE_LENGTH + " at most)");
        }
    }

    /** The reference runs its text encoders in bfloat16; rounding their outputs reproduces its conditioning. */
    static float[] roundToBf16(float[] x) {
        for (int i = 0; i < x.length; i++) {
            x[i] = HalfFloats.bf16ToFloat(HalfFloats.floatToBf16(x[i]));
        }
        return x;
    }
}
