package ai.fluxbatch.model.calib;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.fluxbatch.kernel.cpu.CpuBackend;
import ai.fluxbatch.model.Golden;
import ai.fluxbatch.model.pipeline.FluxPipeline;
import ai.fluxbatch.model.pipeline.GenerationParams;
import ai.fluxbatch.model.pipeline.TextEmbedding;
import ai.fluxbatch.model.quant.TernaryFormat;
import ai.fluxbatch.model.safetensors.TensorSource;
import ai.fluxbatch.model.safetensors.TensorSources;
import java.util.List;
import java.util.Set;
import java.util.TreeSet;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/** Recording the golden miniature's layer inputs along a sampling trajectory. */
class ActivationRecorderTest {
    private static final GenerationParams PARAMS = new GenerationParams(32, 32, 3, 3.5f);
    private static ActivationRecorder recorder;
    private static CalibrationRun run;
    private static List<TextEmbedding> prompts;

    @BeforeAll
    static void load() {
        recorder = new ActivationRecorder(true, layer -> true);
        FluxPipeline pipeline = FluxPipeline.load(Golden.path("flux-tiny-dev"), new CpuBackend(), recorder);
        run = new CalibrationRun(pipeline, recorder);
        prompts = List.of(pipeline.embed("a red circle"), pipeline.embed("two dogs on a beach"));
    }

    @Test
    void everyQuantizableLayerIsRecordedWithItsTokenCount() {
        CalibrationStats s = run.record(prompts, new long[] {1, 2}, PARAMS, step -> true);
        Set<String> expected = new TreeSet<>();
        try (TensorSource t = TensorSources.open(Golden.path("flux-tiny-dev", "flux1-dev.safetensors"))) {
            for (String n : t.names()) {
                if (TernaryFormat.isQuantized(n, t.info(n).shape())) {
                    expected.add(n.substring(0, n.length() - ".weight".length()));
                }
            }
        }
        assertEquals(expected, s.layers().keySet());
        int images = 2, steps = 3, imageTokens = PARAMS.imageTokens(), txtTokens = 512;
        assertEquals((long) images * steps, s.get("double_blocks.0.img_mod.lin").tokens());
        assertEquals(
                (long) images * steps * imageTokens,
                s.get("double_blocks.0.img_attn.qkv").tokens());
        assertEquals(
                (long) images * steps * txtTokens,
                s.get("double_blocks.0.txt_mlp.2").tokens());
        assertEquals(
                (long) images * steps * (txtTokens + imageTokens),
                s.get("single_blocks.0.linear1").tokens());
        LayerStats qkv = s.get("double_blocks.0.img_attn.qkv");
        for (int i = 0; i < qkv.inFeatures(); i++) {
            assertEquals(
                    qkv.sumSq()[i],
                    qkv.gram()[i * qkv.inFeatures() + i],
                    1e-4 * qkv.sumSq()[i] + 1e-6,
                    "Gram diagonal " + i + " is the sum of squares");
        }
    }

    @Test
    void onlyTheChosenStepsAreRecordedAndTheyAddUp() {
        CalibrationStats all = run.record(prompts, new long[] {5, 6}, PARAMS, step -> true);
        CalibrationStats first = run.record(prompts, new long[] {5, 6}, PARAMS, step -> step == 0);
        CalibrationStats rest = run.record(prompts, new long[] {5, 6}, PARAMS, step -> step > 0);
        assertEquals(2, first.get("double_blocks.0.img_mod.lin").tokens());
        assertEquals(4, rest.get("double_blocks.0.img_mod.lin").tokens());
        LayerStats merged = first.merge(rest).get("single_blocks.0.linear2");
        LayerStats direct = all.get("single_blocks.0.linear2");
        assertEquals(direct.tokens(), merged.tokens());
        for (int i = 0; i < direct.inFeatures(); i++) {
            assertEquals(direct.sumSq()[i], merged.sumSq()[i], 1e-9 * direct.sumSq()[i]);
        }
        assertFalse(run.record(prompts, new long[] {5, 6}, PARAMS, step -> false)
                        .layers()
                        .size()
                > 0);
        assertTrue(recorder.take().isEmpty(), "nothing is recorded outside a run");
    }
}
