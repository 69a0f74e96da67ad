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

    /** {@code x [..., K] . weight[N, K]^T + bias[N]} as PyTorch's Linear does it; bias may be null. */
    Tensor linear(Tensor x, Tensor weight, Tensor bias);

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

    /** Rows {@code table[ids[i]]} of an embedding table {@code [V, C]}: returns {@code [ids.length, C]}. */
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

    @Override
    default void close() {
    }
}
