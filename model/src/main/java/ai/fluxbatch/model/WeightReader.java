package ai.fluxbatch.model;

import ai.fluxbatch.kernel.Backend;
import ai.fluxbatch.kernel.Tensor;
import ai.fluxbatch.model.flux.DenseLinear;
import ai.fluxbatch.model.flux.Linear;
import ai.fluxbatch.model.safetensors.TensorInfo;
import ai.fluxbatch.model.safetensors.TensorSource;
import java.util.Arrays;

/** Reads named tensors of a checkpoint onto a backend, each checked against the shape the model expects. */
public final class WeightReader {
    private final TensorSource source;
    private final Backend backend;
    private final String model;

    /** {@code model} describes what is being loaded, for error messages ("FLUX.1-dev (hidden 3072, ...)"). */
    public WeightReader(TensorSource source, Backend backend, String model) {
        this.source = source;
        this.backend = backend;
        this.model = model;
    }

    public Tensor tensor(String name, int... expected) {
        if (!source.contains(name)) {
            throw new ModelException("tensor '" + name + "' is missing from " + describeFiles()
                    + ": expected shape " + Arrays.toString(expected) + " for " + model);
        }
        TensorInfo info = source.info(name);
        long[] want = Arrays.stream(expected).asLongStream().toArray();
        if (!Arrays.equals(info.shape(), want)) {
            throw new ModelException("tensor '" + name + "' in " + source.file(name) + " has shape "
                    + Arrays.toString(info.shape()) + ", expected " + Arrays.toString(expected) + " for " + model);
        }
        return backend.upload(source.floats(name), expected);
    }

    /** {@code prefix.weight [out, in]} and {@code prefix.bias [out]}. */
    public Linear linear(String prefix, int out, int in) {
        return new DenseLinear(tensor(prefix + ".weight", out, in), tensor(prefix + ".bias", out));
    }

    /** {@code prefix.weight [out, in]} with no bias. */
    public Linear linearNoBias(String prefix, int out, int in) {
        return new DenseLinear(tensor(prefix + ".weight", out, in), null);
    }

    private String describeFiles() {
        return source.names().isEmpty() ? "an empty checkpoint" : source.file(source.names().first()).toString();
    }
}
