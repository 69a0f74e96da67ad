package ai.fluxbatch.model.sampling;

import ai.fluxbatch.kernel.Backend;
import ai.fluxbatch.kernel.TensorScope;
import ai.fluxbatch.model.flux.FluxInputs;
import ai.fluxbatch.model.flux.FluxTransformer;
import ai.fluxbatch.model.flux.TapSink;
import java.util.Arrays;
import java.util.function.IntConsumer;

/**
 * The reference {@code denoise}: Euler steps of the flow {@code x += (t_next - t) * v(x, t)} over the schedule, with
 * the guidance value fed to the guidance embedding (dev models) rather than two passes.
 */
public final class EulerSampler {
    private final Backend backend;
    private final FluxTransformer transformer;

    public EulerSampler(Backend backend, FluxTransformer transformer) {
        this.backend = backend;
        this.transformer = transformer;
    }

    /** Hears each finished step: its index, the transformer's inputs and the velocity it predicted. */
    @FunctionalInterface
    public interface StepObserver {
        void step(int index, FluxInputs inputs, float[] velocity);
    }

    public float[] denoise(
            float[] img,
            float[] imgIds,
            float[] txt,
            float[] y,
            int batch,
            int imgLength,
            int txtLength,
            double[] timesteps,
            float guidance,
            IntConsumer afterStep) {
        return denoise(
                img,
                imgIds,
                txt,
                y,
                batch,
                imgLength,
                txtLength,
                timesteps,
                guidance,
                (index, inputs, velocity) -> afterStep.accept(index));
    }

    /**
     * Denoises packed tokens {@code img [B, L, 64]} (modified in place and returned) under text {@code txt [B, T, ctx]}
     * and pooled vectors {@code y [B, vec]}; {@code afterStep} hears each step before its update is applied.
     */
    public float[] denoise(
            float[] img,
            float[] imgIds,
            float[] txt,
            float[] y,
            int batch,
            int imgLength,
            int txtLength,
            double[] timesteps,
            float guidance,
            StepObserver afterStep) {
        float[] txtIds = new float[batch * txtLength * transformer.config().axesDim().length];
        float[] guidanceVec = new float[batch];
        Arrays.fill(guidanceVec, guidance);
        for (int s = 0; s + 1 < timesteps.length; s++) {
            float[] t = new float[batch];
            Arrays.fill(t, (float) timesteps[s]);
            FluxInputs in = new FluxInputs(batch, imgLength, txtLength, img, imgIds, txt, txtIds, t, y, guidanceVec);
            float[] v;
            try (TensorScope step = backend.openScope()) {
                v = backend.download(transformer.forward(in, TapSink.NONE));
            }
            afterStep.step(s, in, v);
            double dt = timesteps[s + 1] - timesteps[s];
            for (int i = 0; i < img.length; i++) {
                img[i] = (float) (img[i] + dt * v[i]);
            }
        }
        return img;
    }
}
