package ai.fluxbatch.model.distill;

import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * A stand-in for the teacher and student in tests: each sample pulls every scale and bias toward a target of its own
 * (the initial scale times 1.05 to 1.15, the initial bias plus 0.04 to 0.06, drawn from the sample's prompt, seed and
 * time), loss = the mean squared distance over all values; exact gradients, summed in sample order.
 */
public class QuadraticStudent implements StudentGradients {
    private final TrainableParameters initial;
    private boolean closed;

    public QuadraticStudent(TrainableParameters initial) {
        this.initial = initial.copy();
    }

    @Override
    public GradientSums gradients(TrainableParameters current, List<DistillSample> samples) {
        if (closed) {
            throw new IllegalStateException("closed");
        }
        long n = initial.count(); // scales and biases: the values the loss averages over
        Map<String, double[]> gs = new LinkedHashMap<>(), gb = new LinkedHashMap<>();
        double loss = 0;
        for (DistillSample s : samples) {
            long sampleHash = DistillSchedule.mix(s.prompt().hashCode(), s.seed(), Float.floatToIntBits(s.time()), 7);
            int layerIndex = 0;
            for (Map.Entry<String, LayerParameters> e : initial.layers().entrySet()) {
                LayerParameters p0 = e.getValue(), p = current.layer(e.getKey());
                double[] a = gs.computeIfAbsent(e.getKey(), k -> new double[p0.channels()]);
                double[] b = gb.computeIfAbsent(e.getKey(), k -> new double[p0.channels()]);
                for (int c = 0; c < p0.channels(); c++) {
                    long h = DistillSchedule.mix(sampleHash, layerIndex, c, 11);
                    double u1 = ((h >>> 11) * 0x1.0p-53) * 2 - 1;
                    double u2 = (((h * 31) >>> 11) * 0x1.0p-53) * 2 - 1;
                    double ds = p.scale()[c] - p0.scale()[c] * (1.1 + 0.05 * u1);
                    double db = p.bias()[c] - (p0.bias()[c] + 0.05 + 0.01 * u2);
                    loss += (ds * ds + db * db) / n;
                    a[c] += 2 * ds / n;
                    b[c] += 2 * db / n;
                }
                layerIndex++;
            }
        }
        return new GradientSums(gs, gb, loss, samples.size());
    }

    @Override
    public TrainableParameters initial() {
        return initial.copy();
    }

    @Override
    public void close() {
        closed = true;
    }

    public boolean closed() {
        return closed;
    }
}
