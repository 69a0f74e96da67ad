package ai.fluxbatch.model.pipeline;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
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
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/** The whole text-to-image path against the reference command line's tensors, stage by stage, on each backend. */
class FluxPipelineGoldenTest {
    static List<Arguments> cases() {
        List<Arguments> cases = new java.util.ArrayList<>(TestBackends.cases(
                List.of(TestBackends.CPU, TestBackends.EMULATED, TestBackends.GPU_FP32),
                List.of("flux-tiny-dev"),
                List.of("e2e-1", "e2e-2")));
        // the same weights in the diffusers layout (transformer shards and autoencoder under diffusers' names)
        cases.addAll(TestBackends.cases(
                List.of(TestBackends.CPU), List.of("flux-tiny-dev-diffusers"), List.of("e2e-1", "e2e-2")));
        return cases;
    }

    @ParameterizedTest(name = "{0} {1} {2}")
    @MethodSource("cases")
    void matchesTheReferenceCommandLine(String backendName, String model, String caseName) {
        try (Backend backend = TestBackends.open(backendName);
                TensorSource g = SafetensorsFile.open(Golden.casePath(model, caseName + ".safetensors"))) {
            FluxPipeline pipeline = FluxPipeline.load(Golden.path(model), backend);
            Map<String, String> meta = g.metadata();
            GenerationParams p = new GenerationParams(
                    Integer.parseInt(meta.get("height")),
                    Integer.parseInt(meta.get("width")),
                    Integer.parseInt(meta.get("steps")),
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

            FluxPipeline.Batch out = pipeline.generate(List.of(e), new long[] {seed}, p, s -> {});
            assertBelow(caseName + " latent", Golden.relL2(out.latents(), g.floats("latent")), 1e-4);
            assertBelow(caseName + " image", Golden.relL2(out.decoded(), g.floats("image")), 1e-4);
            Golden.assertPixelsClose(
                    caseName,
                    g.bytes("rgb_u8", 0, (int) g.info("rgb_u8").byteLength()),
                    out.images().get(0).rgb());
        }
    }

    /**
     * Both sides are bfloat16 roundings of encoder outputs that agree to float32 accuracy. An element may land one
     * bf16 step away at its own magnitude (the two values straddle a rounding boundary), plus the encoders' float32
     * error, which scales with the tensor, not with the element: near zero, where bf16 steps are tiny, that error
     * spans several steps. So each element may differ by one bf16 step of the expected value plus 1e-4 of the
     * tensor's RMS (the golden README's 1e-4 tolerance for the T5 and CLIP outputs, at the tensor's scale), and at
     * most 0.5% of the values may differ at all.
     */
    static void assertBf16Close(String what, float[] actual, float[] expected) {
        assertEquals(expected.length, actual.length, what);
        double squares = 0;
        for (float v : expected) {
            squares += (double) v * v;
        }
        double rms = Math.sqrt(squares / Math.max(1, expected.length));
        int flips = 0;
        double worstSteps = 0;
        for (int i = 0; i < actual.length; i++) {
            if (actual[i] != expected[i]) {
                double step = bf16Step(expected[i]);
                double allowed = step + 1e-4 * rms;
                double diff = Math.abs((double) actual[i] - expected[i]);
                assertTrue(
                        diff <= allowed,
                        what + "[" + i + "]: " + actual[i] + " vs " + expected[i] + " differ by " + diff
                                + ", more than one bf16 step (" + step + ") + 1e-4 x RMS " + rms);
                worstSteps = Math.max(worstSteps, diff / step);
                flips++;
            }
        }
        System.out.printf(
                "%s: %d of %d values differ (at most %.1f bf16 steps), relative L2 %.3g%n",
                what, flips, actual.length, worstSteps, Golden.relL2(actual, expected));
        assertTrue(flips <= 0.005 * actual.length, what + ": " + flips + " values differ");
    }

    /** The distance between {@code v} and the next bfloat16 away from zero: 2^16 float32 ulps (at least one). */
    static double bf16Step(float v) {
        return (double) Math.ulp(v) * (1 << 16);
    }

    @Test
    void bf16ComparisonAllowsFloat32ErrorNearZeroButNotAWrongValue() {
        float[] expected = new float[1000];
        for (int i = 0; i < expected.length; i++) {
            expected[i] = (i % 2 == 0 ? 0.5f : -0.5f) + i * 1e-4f; // on the bf16 grid after rounding below
            expected[i] = Float.intBitsToFloat(Float.floatToRawIntBits(expected[i]) & 0xffff0000);
        }
        expected[816] = -1.2683868E-4f;
        float[] actual = expected.clone();
        actual[816] = -1.2874603E-4f; // two bf16 steps at this magnitude, a float32 error of 2e-6 at RMS 0.5
        actual[3] = expected[3] + (float) bf16Step(expected[3]); // one step: a rounding boundary between them
        assertBf16Close("near zero", actual, expected);
        actual[816] = -1.3e-3f;
        assertThrows(AssertionError.class, () -> assertBf16Close("wrong", actual, expected));
    }

    private static void assertBelow(String what, double err, double tol) {
        System.out.printf("%s: %.3g%n", what, err);
        assertTrue(err < tol, what + " error " + err + " >= " + tol);
    }

    private static int[] ints(long[] v) {
        return Arrays.stream(v).mapToInt(Math::toIntExact).toArray();
    }
}
