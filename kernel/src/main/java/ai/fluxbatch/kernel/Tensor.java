package ai.fluxbatch.kernel;

import java.util.Arrays;

/**
 * A float tensor owned by a {@link Backend}: row-major, its data wherever that backend keeps it
 * (the Java heap for the CPU backend, device memory for a GPU backend). Only its backend reads the data.
 */
public interface Tensor extends AutoCloseable {

    int[] shape();

    default int rank() {
        return shape().length;
    }

    default int dim(int axis) {
        int[] s = shape();
        return s[axis < 0 ? s.length + axis : axis];
    }

    default long numel() {
        return Shapes.numel(shape());
    }

    /**
     * Bytes the tensor's data occupies where it lives (heap or device memory): {@code 4 * numel()} for float32;
     * a packed tensor (e.g. a ternary weight) reports its packed size.
     */
    default long residentBytes() {
        return 4 * numel();
    }

    /** Frees what the tensor holds where that matters (device memory); a no-op on the heap. */
    @Override
    default void close() {}

    static String describe(int[] shape) {
        return Arrays.toString(shape);
    }
}
