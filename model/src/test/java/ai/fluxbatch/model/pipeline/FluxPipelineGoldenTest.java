package ai.fluxbatch.model.pipeline;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.fluxbatch.kernel.Backend;
import ai.fluxbatch.model.Golden;
import ai.fluxbatch.model.TestBackends;
import ai.fluxbatch.model.safetensors.SafetensorsFile;
import ai.fluxbatch.model.safetensors.TensorSource;
import ai.fluxbatch.model.sampling.LatentNoise;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/** The whole text-to-image path against the reference command line's tensors, stage by stage, on each backend. */
class FluxPipelineGoldenTest {
    static List<Arguments> cases() {
        return TestBackends.cases(List.of(TestBackends.CPU, TestBackends.EMULATED, TestBackends.GPU_FP32),
                List.of("e2e-1", "e2e-2"));
    }

    @ParameterizedTest(name = "{0} {1}")
    @MethodSource("cases")
    void matchesTheReferenceCommandLine(String backendName, String caseName) {
        try (Backend backend = TestBackends.open(backendName);
             TensorSource g = SafetensorsFile.open(Golden.path("cases", "flux-tiny-dev", caseName + ".safetensors"))) {
            FluxPipeline pipeline = FluxPipeline.load(Golden.path("flux-tiny-dev"), backend);
            Map<String, String> meta = g.metadata();
            GenerationParams p = new GenerationParams(Integer.parseInt(meta.get("height")),
                    Integer.parseInt(meta.get("width")), Integer.parseInt(meta.get("steps")),
                    Float.parseFloat(meta.get("guidance")));
            long seed = Long.parseLong(meta.get("seed"));

            TextEmbedding e = pipeline.embed(meta.get("prompt"));
            assertArrayEquals(ints(g.longs("t5_input_ids")), e.t5Ids(), "T5 ids");
            assertArrayEquals(ints(g.longs("clip_input_ids")), e.clipIds(), "CLIP ids");
            if (backendName.equals(TestBackends.CPU)) {
                assertBf16Close(caseName + " t5_embedding", e.txt(), g.floats("t5_embedding"));
                assertBf16Close(caseName + " clip_pooled", e.y(), g.floats("clip_pooled"));
            } else {
                // another summation order: near-zero outputs of T5 land a few bf16 steps away; the whole agrees
                assertBelow(caseName + " t5_embedding", Golden.relL2(e.txt(), g.floats("t5_embedding")), 1e-3);
                assertBelow(caseName + " clip_pooled", Golden.relL2(e.y(), g.floats("clip_pooled")), 1e-3);
            }
            assertArrayEquals(g.floats("noise"), LatentNoise.bf16(seed, p.height(), p.width()), "noise");
            double[] t = pipeline.timesteps(p);
            double[] gt = g.doubles("timesteps");
            assertEquals(gt.length, t.length);
            for (int i = 0; i < t.length; i++) {
                assertBelow(caseName + " timestep " + i, Math.abs(t[i] - gt[i]), 1e-6);
            }

            FluxPipeline.Batch out = pipeline.generate(List.of(e), new long[] {seed}, p, s -> { });
            assertBelow(caseName + " latent", Golden.relL2(out.latents(), g.floats("latent")), 1e-4);
            assertBelow(caseName + " image", Golden.relL2(out.decoded(), g.floats("image")), 1e-4);
            Golden.assertPixelsClose(caseName, g.bytes("rgb_u8", 0, (int) g.info("rgb_u8").byteLength()),
                    out.images().get(0).rgb());
        }
    }

    /**
     * Both sides are rounded to bfloat16 from encoder outputs that agree to ~5e-7 (float32 here, float64 in the
     * reference), so a value within that distance of a rounding boundary may land one bf16 step away: allow exactly
     * that, for at most 0.5% of the values, and nothing else.
     */
    static void assertBf16Close(String what, float[] actual, float[] expected) {
        assertEquals(expected.length, actual.length, what);
        int flips = 0;
        for (int i = 0; i < actual.length; i++) {
            if (actual[i] != expected[i]) {
                float step = Math.ulp(expected[i]) * (1 << 16); // one bf16 step at this magnitude
                assertTrue(Math.abs(actual[i] - expected[i]) <= step, what + "[" + i + "]: " + actual[i] + " vs "
                        + expected[i] + " is more than one bf16 step apart");
                flips++;
            }
        }
        System.out.printf("%s: %d of %d values one bf16 step apart, relative L2 %.3g%n", what, flips, actual.length,
                Golden.relL2(actual, expected));
        assertTrue(flips <= 0.005 * actual.length, what + ": " + flips + " values differ");
    }

    private static void assertBelow(String what, double err, double tol) {
        System.out.printf("%s: %.3g%n", what, err);
        assertTrue(err < tol, what + " error " + err + " >= " + tol);
    }

    private static int[] ints(long[] v) {
        return Arrays.stream(v).mapToInt(Math::toIntExact).toArray();
    }
}
