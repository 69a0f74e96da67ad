package ai.fluxbatch.model.distill;

import ai.fluxbatch.kernel.Backend;
import ai.fluxbatch.model.snapshot.FluxSnapshot;

/** The {@link StudentGradients} of a full-precision teacher snapshot and a 1.58-bit student snapshot of it. */
public final class TeacherStudent {
    private TeacherStudent() {}

    /** Loads both transformers and the text encoders onto {@code backend} (which the caller keeps and closes). */
    public static StudentGradients load(
            Backend backend, FluxSnapshot teacher, FluxSnapshot student, DistillSettings settings) {
        throw new UnsupportedOperationException("the transformer backward lands in the next commits");
    }
}
