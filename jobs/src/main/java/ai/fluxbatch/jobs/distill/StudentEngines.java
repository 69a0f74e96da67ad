package ai.fluxbatch.jobs.distill;

import ai.fluxbatch.jobs.ExecutorEngines;
import ai.fluxbatch.model.distill.StudentGradients;
import java.util.function.Function;
import java.util.function.Supplier;

/**
 * The teacher-student pairs loaded in this executor JVM: an {@link ExecutorEngines} cache of their own, of at most
 * {@code capacity} pairs (a full-precision FLUX.1 teacher and its 1.58-bit student take about 27 GB, so one per JVM),
 * loaded the first time a task needs one and reused by every later step; the least recently used is closed when
 * another must load. Tasks that share a pair take turns with it; a pair is closed only once the task using it is done.
 */
public final class StudentEngines {
    /** One pair per executor JVM. */
    public static final int JVM_CAPACITY = 1;
    /** The kind of distill's engines in {@link ExecutorEngines.Key}. */
    public static final String KIND = "distill";

    private static final StudentEngines JVM = new StudentEngines(JVM_CAPACITY);

    private final ExecutorEngines engines;

    /** A cache of its own, for tests; tasks use {@link #jvm()}. */
    public StudentEngines(int capacity) {
        this.engines = new ExecutorEngines(capacity);
    }

    /** This JVM's cache. */
    public static StudentEngines jvm() {
        return JVM;
    }

    /**
     * Runs {@code work} with the pair of {@code key}, loading it with {@code loader} first if it is not here (closing
     * the least recently used pairs to make room); holds the pair for the duration, so no other task uses or closes it
     * meanwhile.
     */
    public <T> T with(String key, Supplier<StudentGradients> loader, Function<StudentGradients, T> work) {
        try (ExecutorEngines.Lease<StudentGradients> lease =
                engines.acquire(new ExecutorEngines.Key(key.replace('\0', ' '), "", KIND, ""), loader)) {
            StudentGradients pair = lease.engine();
            synchronized (pair) {
                return work.apply(pair);
            }
        }
    }

    /** How many pairs this cache has loaded. */
    public int loads() {
        return engines.loads();
    }

    /** Closes every pair no task holds, for tests and for shutting down. */
    public void closeAll() {
        engines.closeAll();
    }
}
