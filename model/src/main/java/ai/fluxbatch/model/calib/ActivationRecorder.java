package ai.fluxbatch.model.calib;

import ai.fluxbatch.kernel.Backend;
import ai.fluxbatch.kernel.Tensor;
import ai.fluxbatch.model.flux.Linear;
import ai.fluxbatch.model.flux.LinearWrapper;
import ai.fluxbatch.model.flux.TernaryLinear;
import ai.fluxbatch.model.quant.TernaryFormat;
import java.util.function.Predicate;

/**
 * Wraps every quantizable linear layer (a 2-D weight inside a transformer block) not yet ternary, so that, while recording is on, the
 * inputs it sees are added to the statistics. Not thread-safe: one forward pass at a time, as an engine runs.
 */
public final class ActivationRecorder implements LinearWrapper {
    private final boolean withGram;
    private final Predicate<String> layers;
    private CalibrationStats stats = new CalibrationStats();
    private boolean recording;

    /** {@code layers} selects which quantizable layers are recorded (by name), to bound the memory Gram matrices take. */
    public ActivationRecorder(boolean withGram, Predicate<String> layers) {
        this.withGram = withGram;
        this.layers = layers;
    }

    @Override
    public Linear wrap(String layer, int in, Linear linear) {
        if (!TernaryFormat.isQuantized(layer + ".weight", new long[] {linear.outFeatures(), in})
                || !layers.test(layer)
                || linear instanceof TernaryLinear) {
            return linear;
        }
        return new Recording(layer, in, linear);
    }

    public void recording(boolean on) {
        recording = on;
    }

    /** The statistics recorded since the last call, leaving the recorder empty. */
    public CalibrationStats take() {
        CalibrationStats out = stats;
        stats = new CalibrationStats();
        return out;
    }

    private final class Recording implements Linear {
        private final String layer;
        private final int in;
        private final Linear inner;

        Recording(String layer, int in, Linear inner) {
            this.layer = layer;
            this.in = in;
            this.inner = inner;
        }

        @Override
        public Tensor apply(Backend backend, Tensor x) {
            if (recording) {
                record(backend, x);
            }
            return inner.apply(backend, x);
        }

        private void record(Backend backend, Tensor x) {
            int rows = Math.toIntExact(x.numel() / in);
            LayerStats s = stats.layer(layer, in, withGram);
            s.addRows(backend.download(x), rows);
            if (withGram) {
                Tensor xt = backend.transposeLast2(backend.reshape(x, rows, in));
                Tensor g = backend.linear(xt, xt, null);
                s.addGram(backend.download(g));
                g.close();
                xt.close();
            }
        }

        @Override
        public int outFeatures() {
            return inner.outFeatures();
        }

        @Override
        public long residentBytes() {
            return inner.residentBytes();
        }
    }
}
