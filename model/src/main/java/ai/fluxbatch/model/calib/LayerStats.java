package ai.fluxbatch.model.calib;

import java.io.Serializable;
import java.util.Arrays;

/**
 * Statistics of the inputs one linear layer saw: token count, per-input-channel sum, sum of squares and absolute
 * maximum, and optionally the Gram matrix {@code sum(x x^T)} (float32, {@code in x in}). A mergeable value: merging is
 * element-wise addition (max for absmax), so it is associative and commutative up to float rounding.
 */
public final class LayerStats implements Serializable {
    private static final long serialVersionUID = 1L;

    private final int in;
    private long tokens;
    private final double[] sum;
    private final double[] sumSq;
    private final float[] absMax;
    private final float[] gram;

    public LayerStats(int in, boolean withGram) {
        this(in, 0, new double[in], new double[in], new float[in], withGram ? new float[in * in] : null);
    }

    /** Statistics as read back from a file; arrays are taken, not copied. */
    public LayerStats(int in, long tokens, double[] sum, double[] sumSq, float[] absMax, float[] gram) {
        if (sum.length != in || sumSq.length != in || absMax.length != in || (gram != null && gram.length != in * in)) {
            throw new IllegalArgumentException("statistics arrays do not match " + in + " input channels");
        }
        this.in = in;
        this.tokens = tokens;
        this.sum = sum;
        this.sumSq = sumSq;
        this.absMax = absMax;
        this.gram = gram;
    }

    /** Bytes these statistics take in memory (what an executor holds per recorded layer). */
    public static long bytes(int in, boolean withGram) {
        return 20L * in + (withGram ? 4L * in * in : 0);
    }

    /** Adds {@code rows} input vectors {@code x [rows, in]} (sums and maxima; the Gram matrix comes separately). */
    public void addRows(float[] x, int rows) {
        if ((long) rows * in != x.length) {
            throw new IllegalArgumentException(x.length + " values are not " + rows + " rows of " + in);
        }
        for (int r = 0; r < rows; r++) {
            int base = r * in;
            for (int i = 0; i < in; i++) {
                float v = x[base + i];
                sum[i] += v;
                sumSq[i] += (double) v * v;
                absMax[i] = Math.max(absMax[i], Math.abs(v));
            }
        }
        tokens += rows;
    }

    /** Adds a batch's {@code x^T x} to the Gram matrix. */
    public void addGram(float[] batchGram) {
        if (gram == null || batchGram.length != gram.length) {
            throw new IllegalArgumentException("no Gram matrix of " + in + " x " + in + " to add to");
        }
        for (int i = 0; i < gram.length; i++) {
            gram[i] += batchGram[i];
        }
    }

    /** Adds {@code other} into this and returns this. */
    public LayerStats merge(LayerStats other) {
        if (other.in != in || (other.gram == null) != (gram == null)) {
            throw new IllegalArgumentException(
                    "cannot merge statistics of " + other.in + " inputs" + (other.gram == null ? "" : " with Gram")
                            + " into " + in + " inputs" + (gram == null ? "" : " with Gram"));
        }
        tokens += other.tokens;
        for (int i = 0; i < in; i++) {
            sum[i] += other.sum[i];
            sumSq[i] += other.sumSq[i];
            absMax[i] = Math.max(absMax[i], other.absMax[i]);
        }
        if (gram != null) {
            addGram(other.gram);
        }
        return this;
    }

    public LayerStats copy() {
        return new LayerStats(
                in, tokens, sum.clone(), sumSq.clone(), absMax.clone(), gram == null ? null : gram.clone());
    }

    public int inFeatures() {
        return in;
    }

    public long tokens() {
        return tokens;
    }

    public double[] sum() {
        return sum;
    }

    public double[] sumSq() {
        return sumSq;
    }

    public float[] absMax() {
        return absMax;
    }

    public boolean hasGram() {
        return gram != null;
    }

    /** The Gram matrix {@code sum(x x^T)}, row-major; null when it was not recorded. */
    public float[] gram() {
        return gram;
    }

    /** {@code E[x]}. */
    public double[] mean() {
        double n = Math.max(1, tokens);
        return Arrays.stream(sum).map(v -> v / n).toArray();
    }
}
