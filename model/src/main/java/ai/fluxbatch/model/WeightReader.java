package ai.fluxbatch.model;

import ai.fluxbatch.kernel.Backend;
import ai.fluxbatch.kernel.Tensor;
import ai.fluxbatch.model.flux.DenseLinear;
import ai.fluxbatch.model.flux.Linear;
import ai.fluxbatch.model.flux.TernaryLinear;
import ai.fluxbatch.model.quant.TernaryFormat;
import ai.fluxbatch.model.safetensors.DType;
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
        checked(name, expected);
        return backend.upload(finite(name), expected);
    }

    /** The tensor's values, refused if any is NaN or infinite: such a weight can only make NaN images. */
    private float[] finite(String name) {
        float[] v = source.floats(name);
        int bad = FiniteValues.firstNonFinite(v);
        if (bad >= 0) {
            throw new ModelException("tensor '" + name + "' in " + source.file(name) + " holds " + v[bad]
                    + " at flat index " + bad + ": expected finite weights (the checkpoint is corrupt) for " + model);
        }
        return v;
    }

    private TensorInfo checked(String name, int... expected) {
        if (!source.contains(name)) {
            throw new ModelException("tensor '" + name + "' is missing from " + describeFiles() + ": expected shape "
                    + Arrays.toString(expected) + " for " + model);
        }
        TensorInfo info = source.info(name);
        long[] want = Arrays.stream(expected).asLongStream().toArray();
        if (!Arrays.equals(info.shape(), want)) {
            throw new ModelException("tensor '" + name + "' in " + source.file(name) + " has shape "
                    + Arrays.toString(info.shape()) + ", expected " + Arrays.toString(expected) + " for " + model);
        }
        return info;
    }

    /**
     * {@code prefix.weight [out, in]} and {@code prefix.bias [out]}; a 1.58-bit checkpoint's packed weight (with its
     * {@code prefix.weight_scale}) becomes a {@link TernaryLinear}.
     */
    public Linear linear(String prefix, int out, int in) {
        Tensor bias = tensor(prefix + ".bias", out);
        String scale = TernaryFormat.scaleName(prefix + ".weight");
        if (source.contains(scale)) {
            return new TernaryLinear(ternary(prefix + ".weight", scale, out, in), bias);
        }
        return new DenseLinear(tensor(prefix + ".weight", out, in), bias);
    }

    private Tensor ternary(String name, String scaleName, int out, int in) {
        TensorInfo packed = checked(name, TernaryFormat.packedRows(out), in);
        if (packed.dtype() != DType.U8) {
            throw new ModelException("tensor '" + name + "' in " + source.file(name) + " is " + packed.dtype()
                    + ", expected U8 packed ternary codes (it has a " + scaleName + ")");
        }
        checked(scaleName, out);
        byte[] codes = new byte[Math.toIntExact(packed.byteLength())];
        source.bytes(name, 0, codes.length).get(codes);
        try {
            return backend.uploadTernary(codes, out, in, finite(scaleName));
        } catch (IllegalArgumentException e) {
            throw new ModelException("tensor '" + name + "' in " + source.file(name) + ": " + e.getMessage(), e);
        }
    }

    /** {@code prefix.weight [out, in]} with no bias. */
    public Linear linearNoBias(String prefix, int out, int in) {
        return new DenseLinear(tensor(prefix + ".weight", out, in), null);
    }

    private String describeFiles() {
        return source.names().isEmpty()
                ? "an empty checkpoint"
                : source.file(source.names().first()).toString();
    }
}
