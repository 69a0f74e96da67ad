package ai.fluxbatch.model.pipeline;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.fluxbatch.kernel.cpu.CpuBackend;
import ai.fluxbatch.model.FiniteValues;
import ai.fluxbatch.model.Golden;
import ai.fluxbatch.model.ModelException;
import java.util.List;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * An image whose latent overflows to NaN is a ModelException naming its prompt and seed, never a flat picture; the
 * other images of its batch stay finite, so retrying the batch image by image loses only the bad one.
 */
class NonFiniteLatentTest {
    private static final GenerationParams P = new GenerationParams(16, 16, 2, 3.5f);
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

    /** The embedding of {@code prompt} with one value of its T5 sequence made infinite: the model overflows. */
    private static TextEmbedding overflowing(String prompt) {
        TextEmbedding e = pipeline.embed(prompt);
        float[] txt = e.txt().clone();
        txt[3] = Float.POSITIVE_INFINITY;
        return new TextEmbedding(prompt, e.t5Ids(), e.clipIds(), txt, e.y());
    }

    @Test
    void onlyTheOverflowingImageOfABatchFails() {
        TextEmbedding good = pipeline.embed("a red circle");
        TextEmbedding bad = overflowing("a blue square");
        ModelException e = assertThrows(
                ModelException.class, () -> pipeline.generate(List.of(good, bad), new long[] {11, 22}, P, s -> {}));
        assertTrue(
                e.getMessage()
                        .contains("the latent after denoising is not finite: prompt \"a blue square\" (seed 22)"
                                + " has NaN"),
                e.getMessage());
        assertFalse(e.getMessage().contains("a red circle"), e.getMessage());
        assertFalse(e.getMessage().contains("seed 11"), e.getMessage());

        // the batch's other image, on its own as a retry makes it, is finite and not flat
        FluxPipeline.Batch alone = pipeline.generate(List.of(good), new long[] {11}, P, s -> {});
        assertEquals(-1, FiniteValues.firstNonFinite(alone.latents()));
        byte[] rgb = alone.images().get(0).rgb();
        assertTrue(rgb.length == 16 * 16 * 3 && !allEqual(rgb), "a picture, not a flat image");
    }

    private static boolean allEqual(byte[] b) {
        for (byte x : b) {
            if (x != b[0]) {
                return false;
            }
        }
        return true;
    }
}
