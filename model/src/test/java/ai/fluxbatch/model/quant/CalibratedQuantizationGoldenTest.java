package ai.fluxbatch.model.quant;

import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.fluxbatch.kernel.Backend;
import ai.fluxbatch.kernel.cpu.CpuBackend;
import ai.fluxbatch.model.Golden;
import ai.fluxbatch.model.calib.ActivationRecorder;
import ai.fluxbatch.model.calib.CalibrationStats;
import ai.fluxbatch.model.flux.FluxConfig;
import ai.fluxbatch.model.flux.FluxTransformer;
import ai.fluxbatch.model.flux.FluxTransformers;
import ai.fluxbatch.model.sampling.EulerSampler;
import ai.fluxbatch.model.sampling.LatentPacking;
import ai.fluxbatch.model.snapshot.FluxSnapshot;
import java.nio.file.Path;
import java.util.Map;
import java.util.Random;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * The floor on the random golden miniatures: calibrated on some sampling trajectories, the best calibrated method's
 * final latent on other trajectories (other noise, other conditioning) is closer to full precision than absmean's.
 * The schnell miniature has no text encoders, so conditioning is random here for both.
 */
class CalibratedQuantizationGoldenTest {
    private static final int SIDE = 4;
    private static final int TXT = 16;
    private static final double[] TIMESTEPS = {1.0, 0.75, 0.5, 0.25, 0.0};

    @TempDir
    Path tmp;

    @ParameterizedTest
    @ValueSource(strings = {"flux-tiny-dev", "flux-tiny-schnell"})
    void bestCalibratedMethodEndsCloserToFullPrecisionThanAbsmean(String model) {
        Backend backend = new CpuBackend();
        FluxSnapshot snapshot = FluxSnapshot.open(Golden.path(model));
        ActivationRecorder recorder = new ActivationRecorder(true, layer -> true);
        FluxTransformer recording = FluxTransformers.load(snapshot, backend, recorder);
        recorder.recording(true);
        for (int seed = 0; seed < 6; seed++) {
            trajectory(backend, recording, seed);
        }
        recorder.recording(false);
        CalibrationStats stats = recorder.take();

        FluxTransformer reference = FluxTransformers.load(snapshot, backend);
        Map<String, Double> error = new java.util.TreeMap<>();
        for (String method : QuantizeMethods.names()) {
            LayerQuantizer q = QuantizeMethods.byName(method);
            QuantizeRecipe recipe = q.needsStatistics()
                    ? new QuantizeRecipe(q, stats, "in-memory", "0", Map.of())
                    : QuantizeRecipe.ABSMEAN;
            Path out = tmp.resolve(method);
            QuantizedSnapshotWriter.write(snapshot, out, false, (g, d, t, s) -> {}, recipe);
            FluxTransformer quantized = FluxTransformers.load(FluxSnapshot.open(out), backend);
            double num = 0, den = 0;
            for (int seed = 100; seed < 104; seed++) {
                float[] want = trajectory(backend, reference, seed), got = trajectory(backend, quantized, seed);
                for (int i = 0; i < want.length; i++) {
                    num += (got[i] - want[i]) * (double) (got[i] - want[i]);
                    den += (double) want[i] * want[i];
                }
            }
            error.put(method, Math.sqrt(num / den));
        }
        System.out.println(model + " final-latent relative L2 on held-out trajectories: " + error);
        double best = error.get(QuantizeMethods.BEST_CALIBRATED);
        assertTrue(best < error.get(AbsmeanQuantizer.METHOD), model + ": " + error);
    }

    /** Euler sampling from seeded noise under seeded random conditioning; returns the final packed latent. */
    private static float[] trajectory(Backend backend, FluxTransformer t, long seed) {
        FluxConfig c = t.config();
        Random r = new Random(seed);
        int tokens = SIDE * SIDE;
        float[] img = gaussian(r, tokens * c.inChannels(), 1);
        float[] txt = gaussian(r, TXT * c.contextDim(), 1);
        float[] y = gaussian(r, c.vecDim(), 1);
        return new EulerSampler(backend, t)
                .denoise(
                        img,
                        LatentPacking.imageIds(2 * SIDE, 2 * SIDE),
                        txt,
                        y,
                        1,
                        tokens,
                        TXT,
                        TIMESTEPS,
                        3.5f,
                        step -> {});
    }

    private static float[] gaussian(Random r, int n, double sd) {
        float[] v = new float[n];
        for (int i = 0; i < n; i++) {
            v[i] = (float) (r.nextGaussian() * sd);
        }
        return v;
    }
}
