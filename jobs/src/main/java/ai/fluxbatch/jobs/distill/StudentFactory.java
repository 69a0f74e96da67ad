package ai.fluxbatch.jobs.distill;

import ai.fluxbatch.kernel.Backend;
import ai.fluxbatch.model.distill.DistillSettings;
import ai.fluxbatch.model.distill.StudentGradients;
import ai.fluxbatch.model.distill.TeacherStudent;
import ai.fluxbatch.model.snapshot.FluxSnapshot;

/**
 * Loads an executor's teacher and student. Named by class in {@link DistillJobSettings} (executors make one with its
 * no-argument constructor), so tests can put a stand-in behind the real Spark job; {@link Real} is {@link
 * TeacherStudent#load}.
 */
public interface StudentFactory {
    StudentGradients load(Backend backend, FluxSnapshot teacher, FluxSnapshot student, DistillSettings settings);

    /** The full-precision teacher and the 1.58-bit student, as {@link TeacherStudent} loads them. */
    final class Real implements StudentFactory {
        @Override
        public StudentGradients load(
                Backend backend, FluxSnapshot teacher, FluxSnapshot student, DistillSettings settings) {
            return TeacherStudent.load(backend, teacher, student, settings);
        }
    }

    /** The factory class {@code name} names, made with its no-argument constructor. */
    static StudentFactory byName(String name) {
        try {
            return Class.forName(name)
                    .asSubclass(StudentFactory.class)
                    .getDeclaredConstructor()
                    .newInstance();
        } catch (ReflectiveOperationException | ClassCastException e) {
            throw new IllegalStateException(
                    "cannot make the student factory " + name + " (a StudentFactory with a no-argument constructor): "
                            + e,
                    e);
        }
    }
}
