package ai.fluxbatch.kernel.cuda;

import ai.fluxbatch.kernel.Backend;
import ai.fluxbatch.kernel.Tensor;
import ai.fluxbatch.kernel.TestData;
import java.util.Arrays;
import java.util.function.BiFunction;

/**
 * One operation run on a reference backend (the CPU) and on another with the same uploaded inputs, and how far apart
 * the downloads are. A shape that differs, or a NaN where the reference has a number (an output never written, or
 * read from memory nobody wrote), is an AssertionError at once.
 */
record BackendComparison(double relativeL2, float[] want, float[] got) {

    /** {@code what} names the operation in the failures. */
    static BackendComparison run(
            String what,
            Backend reference,
            Backend other,
            float[][] inputs,
            int[][] shapes,
            BiFunction<Backend, Tensor[], Tensor> op) {
        Tensor[] a = new Tensor[inputs.length];
        Tensor[] b = new Tensor[inputs.length];
        for (int i = 0; i < inputs.length; i++) {
            a[i] = reference.upload(inputs[i], shapes[i]);
            b[i] = other.upload(inputs[i], shapes[i]);
        }
        Tensor expected = op.apply(reference, a);
        Tensor actual = op.apply(other, b);
        if (!Arrays.equals(expected.shape(), actual.shape())) {
            throw new AssertionError(what + ": shape " + Arrays.toString(actual.shape()) + ", the reference's "
                    + Arrays.toString(expected.shape()));
        }
        float[] w = reference.download(expected), g = other.download(actual);
        BackendComparison c = new BackendComparison(TestData.relativeL2(w, g), w, g);
        for (int i = 0; i < g.length; i++) {
            if (Float.isNaN(g[i]) && !Float.isNaN(w[i])) {
                throw new AssertionError(what + ": element " + i + " is NaN (the reference has " + w[i]
                        + "): unwritten or read from memory no one wrote; " + c.firstValues());
            }
        }
        return c;
    }

    /** The first values of both, for a failure message. */
    String firstValues() {
        return "first values reference " + Arrays.toString(Arrays.copyOf(want, 6)) + ", other "
                + Arrays.toString(Arrays.copyOf(got, 6));
    }
}
