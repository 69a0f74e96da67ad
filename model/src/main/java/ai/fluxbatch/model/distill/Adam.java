package ai.fluxbatch.model.distill;

import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * Adam (Kingma and Ba) with bias correction, beta1 {@value #BETA1}, beta2 {@value #BETA2}, epsilon {@value #EPSILON},
 * over the trainable parameters of a student: moments in double, one pair per trained tensor, updates computed in
 * double and rounded once to the float parameter. Deterministic: element-wise arithmetic only, and {@code StrictMath}
 * for the bias corrections, so a resumed run repeats an uninterrupted one bit for bit.
 */
public final class Adam {
    public static final double BETA1 = 0.9;
    public static final double BETA2 = 0.999;
    public static final double EPSILON = 1e-8;

    /**
     * The optimizer's state after {@code steps} updates: first and second moments keyed by the parameter's tensor name
     * ({@code double_blocks.0.img_attn.qkv.weight_scale}, {@code ....bias}), trained tensors only.
     */
    public record State(long steps, Map<String, double[]> first, Map<String, double[]> second) {
        public State {
            if (steps < 0) {
                throw new IllegalArgumentException("Adam step count " + steps + " is negative");
            }
            if (!first.keySet().equals(second.keySet())) {
                throw new IllegalArgumentException("Adam's first and second moments name different tensors");
            }
            first = Collections.unmodifiableMap(new LinkedHashMap<>(first));
            second = Collections.unmodifiableMap(new LinkedHashMap<>(second));
        }

        public static State initial() {
            return new State(0, Map.of(), Map.of());
        }
    }

    private final double learningRate;
    private final Trainable trainable;
    private long steps;
    private final Map<String, double[]> first = new LinkedHashMap<>();
    private final Map<String, double[]> second = new LinkedHashMap<>();

    public Adam(double learningRate, Trainable trainable) {
        this(learningRate, trainable, State.initial());
    }

    /** Continues from {@code state} (a checkpoint's). */
    public Adam(double learningRate, Trainable trainable, State state) {
        if (!(learningRate > 0) || !Double.isFinite(learningRate)) {
            throw new IllegalArgumentException("learning rate is " + learningRate + ", expected a finite number > 0");
        }
        this.learningRate = learningRate;
        this.trainable = trainable;
        this.steps = state.steps();
        state.first().forEach((k, v) -> first.put(k, v.clone()));
        state.second().forEach((k, v) -> second.put(k, v.clone()));
    }

    /** The scale tensor of a layer: {@code double_blocks.0.img_attn.qkv -> double_blocks.0.img_attn.qkv.weight_scale}. */
    public static String scaleTensor(String layer) {
        return layer + ".weight_scale";
    }

    public static String biasTensor(String layer) {
        return layer + ".bias";
    }

    /** A copy of the state, for a checkpoint. */
    public State state() {
        Map<String, double[]> m = new LinkedHashMap<>(), v = new LinkedHashMap<>();
        first.forEach((k, x) -> m.put(k, x.clone()));
        second.forEach((k, x) -> v.put(k, x.clone()));
        return new State(steps, m, v);
    }

    /**
     * One update from the gradient sums of a batch: the mean gradient is {@code sums / sums.samples()}; the parameters
     * {@link Trainable} leaves out are returned as they are (the same values). {@code current} is not changed.
     *
     * @throws IllegalArgumentException when the sums lack a layer of {@code current}, or a trained tensor's gradient
     *     has another length, or there are no samples
     */
    public TrainableParameters step(TrainableParameters current, GradientSums sums) {
        if (sums.samples() < 1) {
            throw new IllegalArgumentException("no samples in the gradient sums");
        }
        steps++;
        double correction1 = 1 - StrictMath.pow(BETA1, steps);
        double correction2 = 1 - StrictMath.pow(BETA2, steps);
        double n = sums.samples();
        Map<String, LayerParameters> next = new LinkedHashMap<>();
        for (Map.Entry<String, LayerParameters> e : current.layers().entrySet()) {
            String layer = e.getKey();
            LayerParameters p = e.getValue();
            float[] scale = trainable.scales()
                    ? update(scaleTensor(layer), p.scale(), sums.scale().get(layer), n, correction1, correction2)
                    : p.scale().clone();
            float[] bias = trainable.biases()
                    ? update(biasTensor(layer), p.bias(), sums.bias().get(layer), n, correction1, correction2)
                    : p.bias().clone();
            next.put(layer, new LayerParameters(scale, bias));
        }
        return new TrainableParameters(next);
    }

    private float[] update(String tensor, float[] p, double[] gradientSum, double n, double c1, double c2) {
        if (gradientSum == null) {
            throw new IllegalArgumentException("the gradient sums have nothing for " + tensor);
        }
        if (gradientSum.length != p.length) {
            throw new IllegalArgumentException(
                    "the gradient of " + tensor + " has " + gradientSum.length + " values, the parameter " + p.length);
        }
        double[] m = first.computeIfAbsent(tensor, k -> new double[p.length]);
        double[] v = second.computeIfAbsent(tensor, k -> new double[p.length]);
        float[] out = new float[p.length];
        for (int i = 0; i < p.length; i++) {
            double g = gradientSum[i] / n;
            m[i] = BETA1 * m[i] + (1 - BETA1) * g;
            v[i] = BETA2 * v[i] + (1 - BETA2) * g * g;
            double mHat = m[i] / c1, vHat = v[i] / c2;
            out[i] = (float) (p[i] - learningRate * mHat / (Math.sqrt(vHat) + EPSILON));
        }
        return out;
    }
}
