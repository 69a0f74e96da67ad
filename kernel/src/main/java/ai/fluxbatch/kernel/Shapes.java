package ai.fluxbatch.kernel;

import java.util.Arrays;

/** Shape arithmetic and the checks every backend makes before touching data. */
public final class Shapes {
    private Shapes() {}

    public static long numel(int[] shape) {
        long n = 1;
        for (int d : shape) {
            if (d < 0) {
                throw new IllegalArgumentException("negative dimension in shape " + Arrays.toString(shape));
            }
            n = Math.multiplyExact(n, d);
        }
        return n;
    }

    /** Product of all dimensions but the last: the number of rows when the last axis is the feature axis. */
    public static int rows(int[] shape) {
        return Math.toIntExact(numel(shape) / Math.max(1, shape[shape.length - 1]));
    }

    public static int last(int[] shape) {
        return shape[shape.length - 1];
    }

    public static int[] withLast(int[] shape, int last) {
        int[] s = shape.clone();
        s[s.length - 1] = last;
        return s;
    }

    public static void requireRank(String op, String what, int[] shape, int rank) {
        if (shape.length != rank) {
            throw new IllegalArgumentException(
                    op + ": " + what + " must have rank " + rank + ", got shape " + Arrays.toString(shape));
        }
    }

    public static void requireSame(String op, int[] a, int[] b) {
        if (!Arrays.equals(a, b)) {
            throw new IllegalArgumentException(
                    op + ": shapes differ, " + Arrays.toString(a) + " vs " + Arrays.toString(b));
        }
    }

    public static void requireEqual(String op, String what, int actual, int expected) {
        if (actual != expected) {
            throw new IllegalArgumentException(op + ": " + what + " is " + actual + ", expected " + expected);
        }
    }
}
