package ai.fluxbatch.model.distill;

import java.util.List;

/**
 * One executor's teacher (full precision) and student (1.58-bit), loaded once: for a share of a step's batch, the
 * summed per-sample losses and gradients of the student's trainable parameters, the student running with
 * {@code current}. Per sample: the prompt's text embedding, seeded noise at t = 1, the teacher's point x_t (one
 * teacher Euler step from the noise to t), target = the teacher's velocity at (x_t, t), loss = mean squared error of
 * the student's velocity there.
 */
public interface StudentGradients extends AutoCloseable {
    GradientSums gradients(TrainableParameters current, List<DistillSample> samples);

    /** The student's starting trainable parameters, as its snapshot holds them. */
    TrainableParameters initial();

    @Override
    void close();
}
