package ai.fluxbatch.kernel;

/**
 * The numerical operations a model is built from. Tensors stay wherever the backend keeps them; a model never
 * reads another layer's activations directly, so the same model code runs on every backend.
 *
 * <p>Conventions: the feature axis is the last one; sequence tensors are {@code [B, L, C]}; per-sample vectors
 * are {@code [B, C]}; attention heads are laid out as {@code [B, L, H, D]} (which is {@code [B, L, H*D]} in
 * memory). Every operation returns a new tensor and leaves its inputs unchanged.
 */
public interface Backend extends AutoCloseable {

    String name();

    Tensor upload(float[] data, int... shape);

    float[] download(Tensor t);

    /** The same data seen with another shape of equal element count; no copy. */
    Tensor reshape(Tensor t, int... shape);

    /**
     * {@code x [..., K] . weight[N, K]^T + bias[N]} as PyTorch's Linear does it; bias may be null. The weight is a float
     * tensor or a bfloat16 one from {@link #uploadBf16}, whose values are widened to float32 inside the product: the
     * result is that of the float32 weight holding the widened values.
     */
    Tensor linear(Tensor x, Tensor weight, Tensor bias);

    /**
     * A weight kept in bfloat16, two bytes a value, for the large dense weights of the text encoders (T5-XXL is 19 GB
     * in float32, 9.5 GB in bfloat16): {@code bits} are the raw 16-bit patterns, row-major, as a safetensors BF16
     * tensor stores them. A value is the float32 with bits {@code bits[i] << 16}, exactly (every bfloat16 is a float32).
     * Only {@link #linear} (as its weight), {@link #embedding} (as its table) and {@link #download} (the widened
     * values) accept it; every other operation refuses it. Its {@link Tensor#residentBytes()} is {@code 2 * numel}.
     *
     * @throws IllegalArgumentException if {@code bits} does not fill {@code shape}
     */
    Tensor uploadBf16(short[] bits, int... shape);

    /**
     * A 1.58-bit weight {@code W = codes * scale[:, None]} of shape {@code [out, in]}, codes in {-1, 0, +1}, from the
     * interchange format, the Hugging Face transformers BitNet packing: {@code packed} is row-major
     * {@code (ceil(out/4), in)} bytes, bits {@code 2i..2i+1} of {@code packed[r][k]} hold {@code code + 1} (0, 1, 2) of
     * row {@code i * ceil(out/4) + r}, i = 0..3; bits of rows past {@code out} are padding and ignored. The backend
     * repacks into its own layout. The tensor has shape {@code [out, in]}, can only be used by
     * {@link #ternaryLinear}, and its {@link Tensor#residentBytes()} is its packed size.
     *
     * @throws IllegalArgumentException if the lengths do not match, a code has the invalid bit pattern 3 (the message
     *                                  names the row and column), or a scale is not finite
     */
    Tensor uploadTernary(byte[] packed, int out, int in, float[] scale);

    /**
     * {@code x [..., in] . codes^T * scale + bias} for a weight made by {@link #uploadTernary}: returns
     * {@code [..., out]}; bias ({@code [out]}) may be null.
     */
    Tensor ternaryLinear(Tensor x, Tensor ternaryWeight, Tensor bias);

    /** Normalizes the last axis to zero mean and unit variance (biased), with no affine parameters. */
    Tensor layerNorm(Tensor x, float eps);

    /** LayerNorm over the last axis followed by {@code * weight + bias} (each of the last axis' length). */
    Tensor layerNorm(Tensor x, Tensor weight, Tensor bias, float eps);

    /** {@code x / sqrt(mean(x^2) + eps) * scale} over the last axis; {@code scale} has the last axis' length. */
    Tensor rmsNorm(Tensor x, Tensor scale, float eps);

    /** GELU with the tanh approximation. */
    Tensor gelu(Tensor x);

    Tensor silu(Tensor x);

    /** {@code x * sigmoid(1.702 x)}, CLIP's activation. */
    Tensor quickGelu(Tensor x);

    /** Element-wise product of two tensors of one shape. */
    Tensor mul(Tensor a, Tensor b);

    /**
     * Rows {@code table[ids[i]]} of an embedding table {@code [V, C]} (float, or bfloat16 from {@link #uploadBf16},
     * widened): returns {@code [ids.length, C]} in float32.
     */
    Tensor embedding(Tensor table, int[] ids);

    Tensor add(Tensor a, Tensor b);

    /** {@code (1 + scale[b]) * x[b, l] + shift[b]} for {@code x [B, L, C]}, {@code shift, scale [B, C]}. */
    Tensor modulate(Tensor x, Tensor shift, Tensor scale);

    /** {@code x[b, l] + gate[b] * y[b, l]} for {@code x, y [B, L, C]}, {@code gate [B, C]}. */
    Tensor gatedAdd(Tensor x, Tensor gate, Tensor y);

    /** Columns {@code [start, start + count)} of the last axis. */
    Tensor columns(Tensor x, int start, int count);

    /** Concatenation along the last axis; leading axes must agree. */
    Tensor concatColumns(Tensor a, Tensor b);

    /** {@code [B, La, C]} and {@code [B, Lb, C]} to {@code [B, La + Lb, C]}. */
    Tensor concatRows(Tensor a, Tensor b);

    /** Rows {@code [start, start + count)} of axis 1 of {@code [B, L, C]}. */
    Tensor sliceRows(Tensor x, int start, int count);

    /**
     * Rotary position embedding: for {@code x [B, L, H, D]} and the rotation matrices {@code pe [B, L, D/2, 2, 2]},
     * each pair {@code (x[2i], x[2i+1])} becomes {@code pe[i] . (x[2i], x[2i+1])}, the same for every head.
     */
    Tensor rope(Tensor x, Tensor pe);

    /**
     * Softmax attention with scale {@code 1/sqrt(D)} over {@code q, k, v [B, L, H*D]} split into {@code heads}
     * heads of {@code D} features; returns {@code [B, L, H*D]}.
     */
    default Tensor attention(Tensor q, Tensor k, Tensor v, int heads) {
        return attention(q, k, v, heads, (float) (1.0 / Math.sqrt(q.dim(-1) / heads)), null, false);
    }

    /**
     * Softmax attention, general form: scores {@code q.k * scale + bias[h, i, j]} ({@code bias [H, L, L]} shared by
     * the batch, or null), keys after the query masked out when {@code causal}.
     */
    Tensor attention(Tensor q, Tensor k, Tensor v, int heads, float scale, Tensor bias, boolean causal);

    /**
     * 2-D cross-correlation as PyTorch's Conv2d computes it, image layout {@code [B, C, H, W]}: {@code x [B, C, H, W]}
     * with {@code weight [O, C, kh, kw]} and {@code bias [O]} (or null), zero padding of {@code padTop} rows above,
     * {@code padBottom} below, {@code padLeft} columns left and {@code padRight} right, one stride for both axes.
     * Returns {@code [B, O, Ho, Wo]} with {@code Ho = (H + padTop + padBottom - kh) / stride + 1} (likewise Wo).
     */
    Tensor conv2d(
            Tensor x, Tensor weight, Tensor bias, int stride, int padTop, int padBottom, int padLeft, int padRight);

    /** {@link #conv2d(Tensor, Tensor, Tensor, int, int, int, int, int)} with {@code pad} on all four sides. */
    default Tensor conv2d(Tensor x, Tensor weight, Tensor bias, int stride, int pad) {
        return conv2d(x, weight, bias, stride, pad, pad, pad, pad);
    }

    /**
     * GroupNorm of {@code x [B, C, ...]}: the channels split into {@code groups} runs of {@code C / groups}, each
     * run (with all its positions) normalized to zero mean and unit variance (biased), then
     * {@code * weight[c] + bias[c]} per channel ({@code weight, bias [C]}).
     */
    Tensor groupNorm(Tensor x, int groups, Tensor weight, Tensor bias, float eps);

    /** Nearest-neighbour 2x upsampling: {@code [B, C, H, W]} to {@code [B, C, 2H, 2W]}, each value repeated 2 x 2. */
    Tensor upsampleNearest2x(Tensor x);

    /**
     * Swaps the last two axes: {@code [..., M, N]} to {@code [..., N, M]}, e.g. an image {@code [B, C, H*W]} to the
     * sequence {@code [B, H*W, C]} and back.
     */
    Tensor transposeLast2(Tensor x);

    // ---- Reverse mode. Each backward operation takes what its forward took (or what it returned) and dy, the gradient
    // of a scalar loss with respect to the forward's output (same shape as that output), and returns the gradients
    // with respect to the forward's inputs that can carry one. Weights of dense layers and norm scales are frozen:
    // gradients only pass through them. Sums run over every leading axis (batch and tokens) in one fixed order, so a
    // backend gives the same bits for the same inputs and thread count.

    /** An all-zero tensor of the given shape. */
    default Tensor zeros(int... shape) {
        return upload(new float[Math.toIntExact(Shapes.numel(shape))], shape);
    }

    /** Gradient of {@code x} for {@link #linear}: {@code dy [..., N] . weight [N, K]} gives {@code [..., K]}. */
    Tensor linearBackward(Tensor dy, Tensor weight);

    /**
     * Gradients of {@link #ternaryLinear} {@code y = (x . codes^T) * scale + bias}: {@code input = (dy * scale) . codes}
     * ({@code [..., in]}, null unless {@code inputGrad}), {@code scale[o] = sum over rows of dy[o] * (x . codes^T)[o]}
     * and {@code bias[o] = sum over rows of dy[o]} (each {@code [out]}).
     */
    TernaryLinearGrads ternaryLinearBackward(Tensor x, Tensor ternaryWeight, Tensor dy, boolean inputGrad);

    /** Gradients of a ternary linear layer: the input's (or null), and those of the per-channel scale and the bias. */
    record TernaryLinearGrads(Tensor input, Tensor scale, Tensor bias) {}

    /**
     * A ternary weight with the codes of {@code ternaryWeight} and another per-output-channel {@code scale} ({@code [out]},
     * finite): what a training step changes. Shares the codes where the backend can; {@code ternaryWeight} stays valid.
     */
    Tensor withTernaryScale(Tensor ternaryWeight, float[] scale);

    /** Gradient of {@code x} for {@link #layerNorm(Tensor, float)} (no affine parameters). */
    Tensor layerNormBackward(Tensor x, Tensor dy, float eps);

    /** Gradient of {@code x} for {@link #rmsNorm} ({@code scale} frozen). */
    Tensor rmsNormBackward(Tensor x, Tensor scale, Tensor dy, float eps);

    /** Gradient of {@code x} for {@link #gelu} (tanh approximation). */
    Tensor geluBackward(Tensor x, Tensor dy);

    /** Gradient of {@code x} for {@link #silu}. */
    Tensor siluBackward(Tensor x, Tensor dy);

    /**
     * Gradients of {@link #modulate} {@code (1 + scale[b]) * x[b, l] + shift[b]}: {@code input = dy * (1 + scale)},
     * {@code shift[b] = sum over l of dy[b, l]}, {@code scale[b] = sum over l of dy[b, l] * x[b, l]}.
     */
    ModulateGrads modulateBackward(Tensor x, Tensor scale, Tensor dy);

    /** Gradients of a modulation: input {@code [B, L, C]}, shift and scale {@code [B, C]}. */
    record ModulateGrads(Tensor input, Tensor shift, Tensor scale) {}

    /**
     * Gradients of {@link #gatedAdd} {@code x + gate[b] * y[b, l]} but that of {@code x}, which is {@code dy} itself:
     * {@code gate[b] = sum over l of dy[b, l] * y[b, l]} ({@code [B, C]}), {@code update = gate[b] * dy[b, l]}.
     */
    GatedAddGrads gatedAddBackward(Tensor gate, Tensor y, Tensor dy);

    /** Gradients of a gated residual add: the gate's {@code [B, C]} and the added update's {@code [B, L, C]}. */
    record GatedAddGrads(Tensor gate, Tensor update) {}

    /** Gradient of {@code x} for {@link #rope}: each pair rotated back by the transposed matrix. */
    Tensor ropeBackward(Tensor dy, Tensor pe);

    /**
     * Gradients of {@link #attention(Tensor, Tensor, Tensor, int, float, Tensor, boolean)} without bias or mask, the
     * softmax recomputed from {@code q} and {@code k}: with {@code P = softmax(q k^T scale)} per head,
     * {@code value = P^T dOut}, {@code dP = dOut v^T}, {@code dS = P (dP - rowsum(dP P))}, {@code query = dS k scale},
     * {@code key = dS^T q scale}; each {@code [B, L, H*D]}.
     */
    AttentionGrads attentionBackward(Tensor q, Tensor k, Tensor v, Tensor dOut, int heads, float scale);

    /** Gradients of attention with respect to its query, key and value. */
    record AttentionGrads(Tensor query, Tensor key, Tensor value) {}

    /**
     * Opens a scope: tensors this backend makes on this thread until it closes are freed then, except those kept.
     * Model code opens one around each block and each sampling step, so a backend with device memory reuses the same
     * buffers step after step; the default frees nothing and leaves memory to the garbage collector.
     */
    default TensorScope openScope() {
        return TensorScope.NONE;
    }

    /**
     * Takes {@code t} out of every open scope, for a tensor a model caches across calls: it then lives until closed
     * or unreachable, like a weight. Returns it.
     */
    default Tensor retain(Tensor t) {
        return t;
    }

    @Override
    default void close() {}
}
