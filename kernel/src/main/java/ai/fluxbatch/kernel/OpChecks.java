package ai.fluxbatch.kernel;

/** The argument checks of the Backend operations that need more than one line, shared by every backend. */
public final class OpChecks {
    private OpChecks() {}

    /** Checks {@code x [B, L, C]} against per-sample vectors {@code a, b [B, C]}; returns x's shape. */
    public static int[] batchRows(String op, int[] x, int[] a, int[] b) {
        Shapes.requireRank(op, "x", x, 3);
        int[] expected = {x[0], x[2]};
        Shapes.requireSame(op, a, expected);
        Shapes.requireSame(op, b, expected);
        return x;
    }

    public static void columns(int[] x, int start, int count) {
        int c = Shapes.last(x);
        if (start < 0 || count < 0 || start + count > c) {
            throw new IllegalArgumentException("columns: [" + start + ", " + (start + count) + ") outside 0.." + c);
        }
    }

    public static void concatColumns(int[] a, int[] b) {
        Shapes.requireSame("concatColumns", Shapes.withLast(a, 0), Shapes.withLast(b, 0));
    }

    public static void concatRows(int[] a, int[] b) {
        Shapes.requireRank("concatRows", "a", a, 3);
        Shapes.requireRank("concatRows", "b", b, 3);
        Shapes.requireEqual("concatRows", "batch of b", b[0], a[0]);
        Shapes.requireEqual("concatRows", "features of b", b[2], a[2]);
    }

    public static void sliceRows(int[] x, int start, int count) {
        Shapes.requireRank("sliceRows", "x", x, 3);
        int l = x[1];
        if (start < 0 || count < 0 || start + count > l) {
            throw new IllegalArgumentException("sliceRows: [" + start + ", " + (start + count) + ") outside 0.." + l);
        }
    }

    public static void rope(int[] x, int[] pe) {
        rope("rope", x, pe);
    }

    /** The checks of {@link #rope(int[], int[])} under the name of the operation making them (e.g. its backward). */
    public static void rope(String op, int[] x, int[] pe) {
        Shapes.requireRank(op, "x", x, 4);
        Shapes.requireSame(op + " pe", pe, new int[] {x[0], x[1], x[3] / 2, 2, 2});
    }

    /** Checks q, k, v {@code [B, L, C]} of one shape, C split into heads, bias {@code [H, L, L]} or null. */
    public static void attention(int[] q, int[] k, int[] v, int heads, int[] bias) {
        Shapes.requireSame("attention", q, k);
        Shapes.requireSame("attention", q, v);
        Shapes.requireRank("attention", "q", q, 3);
        int l = q[1], c = q[2];
        if (heads < 1 || c % heads != 0) {
            throw new IllegalArgumentException("attention: " + c + " features do not split into " + heads + " heads");
        }
        if (bias != null) {
            Shapes.requireSame("attention bias", bias, new int[] {heads, l, l});
        }
    }

    /** The sizes of a conv2d: input {@code [b, c, h, w]}, weight {@code [o, c, kh, kw]}, output {@code [b, o, ho, wo]}. */
    public record Conv(int b, int c, int h, int w, int o, int kh, int kw, int ho, int wo) {}

    /** Checks a conv2d's arguments ({@code biasLength} -1 for none) and returns its sizes. */
    public static Conv conv2d(
            int[] x, int[] weight, int biasLength, int stride, int padTop, int padBottom, int padLeft, int padRight) {
        Shapes.requireRank("conv2d", "x", x, 4);
        Shapes.requireRank("conv2d", "weight", weight, 4);
        int c = x[1], h = x[2], w = x[3];
        int o = weight[0], kh = weight[2], kw = weight[3];
        Shapes.requireEqual("conv2d", "input channels of weight", weight[1], c);
        if (biasLength >= 0) {
            Shapes.requireEqual("conv2d", "bias length", biasLength, o);
        }
        if (stride < 1 || padTop < 0 || padBottom < 0 || padLeft < 0 || padRight < 0) {
            throw new IllegalArgumentException("conv2d: stride must be at least 1 and padding at least 0, got stride "
                    + stride + ", padding (top " + padTop + ", bottom " + padBottom + ", left " + padLeft + ", right "
                    + padRight + ")");
        }
        int ph = h + padTop + padBottom, pw = w + padLeft + padRight;
        if (kh < 1 || kw < 1 || ph < kh || pw < kw) {
            throw new IllegalArgumentException("conv2d: kernel " + kh + " x " + kw + " does not fit the padded input "
                    + ph + " x " + pw + " (x " + Tensor.describe(x) + ")");
        }
        return new Conv(x[0], c, h, w, o, kh, kw, (ph - kh) / stride + 1, (pw - kw) / stride + 1);
    }

    /** Checks a groupNorm's arguments; returns the positions per channel. */
    public static int groupNorm(int[] x, int groups, int weightLength, int biasLength) {
        if (x.length < 2) {
            throw new IllegalArgumentException("groupNorm: x must be [B, C, ...], got shape " + Tensor.describe(x));
        }
        int b = x[0], c = x[1];
        if (groups < 1 || c % groups != 0) {
            throw new IllegalArgumentException("groupNorm: " + c + " channels do not split into " + groups + " groups");
        }
        Shapes.requireEqual("groupNorm", "weight length", weightLength, c);
        Shapes.requireEqual("groupNorm", "bias length", biasLength, c);
        return b * c == 0 ? 0 : (int) (Shapes.numel(x) / ((long) b * c));
    }

    /** The shape of {@code x} with its last two axes swapped. */
    public static int[] transposedLast2(int[] x) {
        if (x.length < 2) {
            throw new IllegalArgumentException(
                    "transposeLast2: x must have rank 2 or more, got shape " + Tensor.describe(x));
        }
        int[] t = x.clone();
        t[x.length - 2] = x[x.length - 1];
        t[x.length - 1] = x[x.length - 2];
        return t;
    }

    public static void tokenIds(int[] ids, int vocab) {
        for (int i = 0; i < ids.length; i++) {
            if (ids[i] < 0 || ids[i] >= vocab) {
                throw new IllegalArgumentException("token id " + ids[i] + " at position " + i
                        + " is outside the vocabulary of " + vocab + " (expected 0.." + (vocab - 1) + ")");
            }
        }
    }
}
