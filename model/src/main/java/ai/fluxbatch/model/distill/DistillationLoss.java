package ai.fluxbatch.model.distill;

import ai.fluxbatch.kernel.Backend;
import ai.fluxbatch.kernel.Tensor;
import ai.fluxbatch.kernel.TensorScope;
import ai.fluxbatch.model.flux.FluxInputs;
import ai.fluxbatch.model.flux.FluxTransformer;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * The self-distillation objective of one transformer call: {@code loss = mean((student(inputs) - target)^2)} over
 * every output value, and its gradients with respect to every ternary layer's per-channel scale and bias, by one
 * checkpointed forward and one backward through the student.
 */
public final class DistillationLoss {
    private DistillationLoss() {}

    /** The loss and, per ternary layer in backward order, the gradients of its scale and bias ({@code [out]}). */
    public record Result(double loss, Map<String, float[]> scale, Map<String, float[]> bias) {}

    /** {@code target} is the teacher's output for the same inputs, {@code [B, L, out]} flattened. */
    public static Result compute(Backend backend, FluxTransformer student, FluxInputs inputs, float[] target) {
        try (TensorScope scope = backend.openScope()) {
            FluxTransformer.Checkpoints f = student.forwardForBackward(inputs);
            float[] out = backend.download(f.out());
            if (out.length != target.length) {
                throw new IllegalArgumentException(
                        "target has " + target.length + " values, the student's output " + out.length);
            }
            double sum = 0;
            float[] dOut = new float[out.length];
            for (int i = 0; i < out.length; i++) {
                double d = (double) out[i] - target[i];
                sum += d * d;
                dOut[i] = (float) (2 * d / out.length);
            }
            Map<String, float[]> scale = new LinkedHashMap<>(), bias = new LinkedHashMap<>();
            student.backward(
                    f,
                    backend.upload(dOut, f.out().shape()),
                    (layer, dScale, dBias) -> {
                        scale.put(layer, backend.download(dScale));
                        bias.put(layer, backend.download(dBias));
                    },
                    false);
            return new Result(sum / out.length, scale, bias);
        }
    }

    /** Runs {@code model} on {@code inputs} and returns its output on the host: a teacher's target. */
    public static float[] target(Backend backend, FluxTransformer model, FluxInputs inputs) {
        try (TensorScope scope = backend.openScope()) {
            Tensor out = model.forward(inputs, (name, t) -> {});
            return backend.download(out);
        }
    }
}
