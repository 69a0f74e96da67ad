package ai.fluxbatch.jobs.distill;

import ai.fluxbatch.kernel.Backend;
import ai.fluxbatch.model.distill.DistillSample;
import ai.fluxbatch.model.distill.DistillSettings;
import ai.fluxbatch.model.distill.GradientSums;
import ai.fluxbatch.model.distill.QuadraticStudent;
import ai.fluxbatch.model.distill.StudentGradients;
import ai.fluxbatch.model.distill.StudentParameters;
import ai.fluxbatch.model.distill.TrainableParameters;
import ai.fluxbatch.model.safetensors.TensorSource;
import ai.fluxbatch.model.snapshot.FluxSnapshot;
import java.util.List;

/**
 * A stand-in teacher and student for the Spark job's tests: {@link QuadraticStudent} on the student snapshot's own
 * scales and biases. A batch holding the noise seed {@value #FAIL_AT_SEED} names fails (as a lost executor would),
 * one holding {@value #NAN_AT_SEED}'s gets a NaN loss.
 */
public final class FakeStudentFactory implements StudentFactory {
    public static final String FAIL_AT_SEED = "fluxbatch.test.fakeStudent.failAtSeed";
    public static final String NAN_AT_SEED = "fluxbatch.test.fakeStudent.nanAtSeed";

    @Override
    public StudentGradients load(
            Backend backend, FluxSnapshot teacher, FluxSnapshot student, DistillSettings settings) {
        TrainableParameters initial;
        try (TensorSource s = student.openTransformer()) {
            initial = StudentParameters.read(s);
        }
        return new QuadraticStudent(initial) {
            @Override
            public GradientSums gradients(TrainableParameters current, List<DistillSample> samples) {
                if (holds(samples, FAIL_AT_SEED)) {
                    throw new IllegalStateException("the fake student fails on purpose");
                }
                GradientSums g = super.gradients(current, samples);
                return holds(samples, NAN_AT_SEED) ? new GradientSums(g.scale(), g.bias(), Double.NaN, g.samples()) : g;
            }
        };
    }

    private static boolean holds(List<DistillSample> samples, String property) {
        String seed = System.getProperty(property);
        return seed != null && samples.stream().anyMatch(s -> s.seed() == Long.parseLong(seed));
    }
}
