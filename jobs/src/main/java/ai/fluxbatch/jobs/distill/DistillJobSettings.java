package ai.fluxbatch.jobs.distill;

import ai.fluxbatch.kernel.DeviceKind;
import ai.fluxbatch.kernel.cuda.GemmPrecision;
import ai.fluxbatch.model.distill.DistillSettings;
import java.io.Serializable;
import java.util.Objects;

/**
 * What every task of one distill run shares; shipped to executors, so plain serializable values only: the teacher's
 * location (a snapshot folder at the same path on every node, or a URI that each node resolves through its model
 * cache) and the student's snapshot folder, the sample settings, the requested device (resolved by each task on its
 * executor) and the {@link StudentFactory} class.
 */
public record DistillJobSettings(
        String teacher,
        String student,
        DistillSettings settings,
        DeviceKind device,
        GemmPrecision gemmPrecision,
        String factory)
        implements Serializable {
    public DistillJobSettings {
        Objects.requireNonNull(teacher, "teacher");
        Objects.requireNonNull(student, "student");
        Objects.requireNonNull(settings, "settings");
        Objects.requireNonNull(device, "device");
        Objects.requireNonNull(gemmPrecision, "gemmPrecision");
        Objects.requireNonNull(factory, "factory");
    }

    /** What a loaded teacher-student pair depends on, apart from the backend. */
    String engineKey() {
        return teacher + '\0' + student + '\0' + settings + '\0' + factory;
    }
}
