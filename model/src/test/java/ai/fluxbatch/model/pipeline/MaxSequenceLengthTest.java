package ai.fluxbatch.model.pipeline;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.fluxbatch.kernel.cpu.CpuBackend;
import ai.fluxbatch.model.Golden;
import java.util.Arrays;
import java.util.List;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * diffusers' {@code max_sequence_length}: the T5 part of a prompt's embedding is as many tokens as asked (1 to 512), the
 * model's own length (512 for dev) otherwise, and the transformer runs on whatever length its batch was embedded with.
 */
class MaxSequenceLengthTest {
    private static final GenerationParams P = new GenerationParams(16, 16, 1, 3.5f);
    private static final String PROMPT = "a red circle on the left";
    private static CpuBackend cpu;
    private static FluxPipeline pipeline;

    @BeforeAll
    static void load() {
        cpu = new CpuBackend(2);
        pipeline = FluxPipeline.load(Golden.path("flux-tiny-dev"), cpu);
    }

    @AfterAll
    static void close() {
        cpu.close();
    }

    @Test
    void theEmbeddingHasTheLengthAskedForAndTheSameLeadingTokens() {
        assertEquals(512, pipeline.maxSequenceLength(), "a dev model's own length");
        TextEmbedding full = pipeline.embed(PROMPT);
        TextEmbedding shorter = pipeline.embed(PROMPT, 128);
        assertEquals(512, full.t5Ids().length);
        assertEquals(128, shorter.t5Ids().length);
        int context = full.txt().length / 512;
        assertEquals(128 * context, shorter.txt().length);
        assertArrayEquals(Arrays.copyOf(full.t5Ids(), 128), shorter.t5Ids(), "the prompt's tokens, then padding");
        assertArrayEquals(full.clipIds(), shorter.clipIds(), "CLIP is not affected");
        assertArrayEquals(full.y(), shorter.y());
        assertArrayEquals(full.t5Ids(), pipeline.embed(PROMPT, 512).t5Ids(), "512 asked is the default");
    }

    @Test
    void aShorterSequenceGivesAnotherImage() {
        FluxPipeline.Batch full = pipeline.generate(List.of(pipeline.embed(PROMPT)), new long[] {7}, P, s -> {});
        FluxPipeline.Batch shorter =
                pipeline.generate(List.of(pipeline.embed(PROMPT, 128)), new long[] {7}, P, s -> {});
        assertEquals(full.latents().length, shorter.latents().length);
        for (float v : shorter.latents()) {
            assertTrue(Float.isFinite(v));
        }
        assertFalse(
                Arrays.equals(full.latents(), shorter.latents()),
                "the transformer attends to every T5 token, padding included: fewer tokens, another image");
    }

    @ParameterizedTest
    @ValueSource(ints = {0, -1, 513})
    void aLengthOutside1To512IsRefusedNamingTheRange(int length) {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> pipeline.embed(PROMPT, length));
        assertTrue(
                e.getMessage().contains("max sequence length is " + length + ", expected 1..512 T5 tokens"),
                e.getMessage());
    }

    @Test
    void aBatchOfTwoLengthsIsRefused() {
        List<TextEmbedding> mixed = List.of(pipeline.embed(PROMPT, 64), pipeline.embed("sky", 32));
        IllegalArgumentException e = assertThrows(
                IllegalArgumentException.class, () -> pipeline.generate(mixed, new long[] {1, 2}, P, s -> {}));
        assertTrue(e.getMessage().contains("must have one T5 length"), e.getMessage());
    }
}
