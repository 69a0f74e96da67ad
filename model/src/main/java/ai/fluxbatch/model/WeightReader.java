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

/**
 * Reads named tensors of a checkpoint onto a backend, each checked against the shape the model expects.
 *
 * <p>Weights are float32 on the backend, except the matrices a reader {@link #keepingBf16() keeping BF16} reads (the
 * text encoders'): a BF16 tensor of the checkpoint stays bfloat16 there ({@link Backend#uploadBf16}, its bits as
 * stored, half the bytes), and the products widen it to float32 exactly, so the model computes what it computes on
 * the float32 values. A matrix stored in F32 (or F16) stays float32: rounding it to bfloat16 (nearest even) at load
 * moved the outputs of the golden miniature's T5 and CLIP, given F32 weights with full mantissas, by 6.0e-3 and
 * 3.4e-3 relative L2, 30 to 60 times the golden tolerance of 1e-4; the real FLUX.1 text encoders are stored in BF16
 * and lose nothing.
 */
public final class WeightReader {
    /** Bytes of a BF16 tensor read at a time. */
    private static final int CHUNK = 1 << 26;

    private final TensorSource source;
    private final Backend backend;
    private final String model;
    private final boolean keepBf16;

    /** {@code model} describes what is being loaded, for error messages ("FLUX.1-dev (hidden 3072, ...)"). */
    public WeightReader(TensorSource source, Backend backend, String model) {
        this(source, backend, model, false);
    }

    private WeightReader(TensorSource source, Backend backend, String model, boolean keepBf16) {
        this.source = source;
        this.backend = backend;
        this.model = model;
        this.keepBf16 = keepBf16;
    }

    /**
     * A reader of the same checkpoint whose {@link #linear} and {@link #linearNoBias} weights are {@link #matrix}
     * reads: kept in bfloat16 where the checkpoint stores BF16.
     */
    public WeightReader keepingBf16() {
        return new WeightReader(source, backend, model, true);
    }

    public Tensor tensor(String name, int... expected) {
        checked(name, expected);
        return backend.upload(finite(name), expected);
    }

    /**
     * A large weight (a linear layer's matrix, an embedding table): a BF16 tensor of the checkpoint is kept in bfloat16
     * on the backend, bit for bit ({@link Backend#uploadBf16}, {@code 2 numel} bytes); any other dtype is read as
     * {@link #tensor} reads it, into float32.
     */
    public Tensor matrix(String name, int... expected) {
        TensorInfo info = checked(name, expected);
        if (info.dtype() != DType.BF16) {
            return backend.upload(finite(name), expected);
        }
        return backend.uploadBf16(finiteBf16(info), expected);
    }

    /** A BF16 tensor's 16-bit patterns, refused like {@link #finite} if one is NaN or infinite (exponent all ones). */
    private short[] finiteBf16(TensorInfo info) {
        String name = info.name();
        long n = info.numel();
        if (n > Integer.MAX_VALUE - 8) {
            throw new ModelException("tensor '" + name + "' in " + source.file(name) + " has " + n
                    + " elements, more than one array holds, for " + model);
        }
        short[] bits = new short[(int) n];
        for (long off = 0; off < 2 * n; off += CHUNK) {
            int len = (int) Math.min(CHUNK, 2 * n - off);
            source.bytes(name, off, len).asShortBuffer().get(bits, (int) (off / 2), len / 2);
        }
        for (int i = 0; i < bits.length; i++) {
            if ((bits[i] & 0x7F80) == 0x7F80) {
                throw new ModelException("tensor '" + name + "' in " + source.file(name) + " holds "
                        + Float.intBitsToFloat(bits[i] << 16) + " at flat index " + i
                        + ": expected finite weights (the checkpoint is corrupt) for " + model);
            }
        }
        return bits;
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
        return new DenseLinear(weight(prefix + ".weight", out, in), bias);
    }

    private Tensor weight(String name, int out, int in) {
        return keepBf16 ? matrix(name, out, in) : tensor(name, out, in);
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
        return new DenseLinear(weight(prefix + ".weight", out, in), null);
    }

    private String describeFiles() {
        return source.names().isEmpty()
                ? "an empty checkpoint"
                : source.file(source.names().first()).toString();
    }
}
