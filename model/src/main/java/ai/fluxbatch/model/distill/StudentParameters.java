package ai.fluxbatch.model.distill;

import ai.fluxbatch.model.FiniteValues;
import ai.fluxbatch.model.ModelException;
import ai.fluxbatch.model.quant.TernaryFormat;
import ai.fluxbatch.model.safetensors.TensorSource;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * The trainable parameters a 1.58-bit checkpoint holds, read from its tensors without loading the model: one entry per
 * ternary layer (a block weight with a {@code weight_scale}), in checkpoint order, with its scales and its bias (zeros
 * where the checkpoint has none). Full-precision layers of a partly quantized checkpoint are not trainable.
 */
public final class StudentParameters {
    private StudentParameters() {}

    public static TrainableParameters read(TensorSource student) {
        Map<String, LayerParameters> layers = new LinkedHashMap<>();
        for (String name : student.names()) {
            if (!isTernaryWeight(student, name)) {
                continue;
            }
            String layer = name.substring(0, name.length() - ".weight".length());
            float[] scale = finite(student, Adam.scaleTensor(layer));
            String biasName = Adam.biasTensor(layer);
            float[] bias = student.contains(biasName) ? finite(student, biasName) : new float[scale.length];
            if (bias.length != scale.length) {
                throw new ModelException("tensor '" + biasName + "' in " + student.file(biasName) + " has "
                        + bias.length + " values, but the layer's " + Adam.scaleTensor(layer) + " has " + scale.length);
            }
            layers.put(layer, new LayerParameters(scale, bias));
        }
        return new TrainableParameters(layers);
    }

    /** A block weight stored as packed ternary codes: its {@code weight_scale} is in the checkpoint too. */
    public static boolean isTernaryWeight(TensorSource source, String name) {
        return name.endsWith(".weight")
                && source.contains(TernaryFormat.scaleName(name))
                && TernaryFormat.isQuantized(name, source.info(name).shape());
    }

    private static float[] finite(TensorSource source, String name) {
        float[] v = source.floats(name);
        int bad = FiniteValues.firstNonFinite(v);
        if (bad >= 0) {
            throw new ModelException("tensor '" + name + "' in " + source.file(name) + " holds " + v[bad]
                    + " at flat index " + bad + ": expected finite values");
        }
        return v;
    }
}
