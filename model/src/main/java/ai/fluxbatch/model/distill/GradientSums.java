package ai.fluxbatch.model.distill;

import java.io.Serializable;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * Sums over samples of the per-sample loss and of its gradients with respect to every layer's scale and bias, in
 * double: what an executor returns for its share of a step's batch, merged across executors by {@link #plus} (a
 * Spark treeAggregate combiner). Per-sample loss is the mean squared error over that sample's output values.
 */
public record GradientSums(Map<String, double[]> scale, Map<String, double[]> bias, double loss, long samples)
        implements Serializable {
    public GradientSums {
        scale = Collections.unmodifiableMap(new LinkedHashMap<>(scale));
        bias = Collections.unmodifiableMap(new LinkedHashMap<>(bias));
    }

    /** No samples: the neutral element of {@link #plus}. */
    public static GradientSums empty() {
        return new GradientSums(Map.of(), Map.of(), 0, 0);
    }

    public GradientSums plus(GradientSums o) {
        if (o.samples == 0 && o.scale.isEmpty()) {
            return this;
        }
        if (samples == 0 && scale.isEmpty()) {
            return o;
        }
        return new GradientSums(add(scale, o.scale), add(bias, o.bias), loss + o.loss, samples + o.samples);
    }

    private static Map<String, double[]> add(Map<String, double[]> a, Map<String, double[]> b) {
        Map<String, double[]> out = new LinkedHashMap<>();
        for (Map.Entry<String, double[]> e : a.entrySet()) {
            double[] x = e.getValue(), y = b.get(e.getKey());
            if (y == null || y.length != x.length) {
                throw new IllegalArgumentException("gradient sums of different layers: " + e.getKey());
            }
            double[] s = new double[x.length];
            for (int i = 0; i < s.length; i++) {
                s[i] = x[i] + y[i];
            }
            out.put(e.getKey(), s);
        }
        if (out.size() != b.size()) {
            throw new IllegalArgumentException("gradient sums of different layer sets");
        }
        return out;
    }
}
