package ai.fluxbatch.jobs.calibrate;

import ai.fluxbatch.model.calib.CalibrationStats;
import java.io.Serializable;
import java.util.ArrayList;
import java.util.List;

/**
 * What a partition returns and {@code treeAggregate} merges: the statistics and how many prompts went into them.
 * The counts travel with the statistics rather than in accumulators, so a retried task cannot count twice.
 */
public final class CalibrationPartial implements Serializable {
    private static final long serialVersionUID = 1L;
    /** Failed prompts kept for the report; the count covers all of them. */
    static final int MAX_ERRORS = 20;

    private CalibrationStats stats;
    private long prompts;
    private long failed;
    private final List<String> errors = new ArrayList<>();

    public CalibrationPartial() {
        this.stats = new CalibrationStats();
    }

    void add(CalibrationStats batch, int batchPrompts) {
        stats = stats.isEmpty() ? batch : stats.merge(batch);
        prompts += batchPrompts;
    }

    void fail(CalibratePrompt p, String error) {
        failed++;
        if (errors.size() < MAX_ERRORS) {
            errors.add("prompt " + p.index() + " '" + p.prompt() + "': " + error);
        }
    }

    /**
     * Adds {@code other} into this and returns this; when this is still empty, {@code other} is returned as it is, so
     * that a partition's statistics are not copied once more (a Gram matrix can weigh a gigabyte).
     */
    public static CalibrationPartial merge(CalibrationPartial into, CalibrationPartial other) {
        if (into.stats.isEmpty() && into.prompts == 0 && into.failed == 0) {
            return other;
        }
        into.stats = into.stats.merge(other.stats);
        into.prompts += other.prompts;
        into.failed += other.failed;
        for (String e : other.errors) {
            if (into.errors.size() < MAX_ERRORS) {
                into.errors.add(e);
            }
        }
        return into;
    }

    public CalibrationStats stats() {
        return stats;
    }

    /** Prompts whose statistics are in {@link #stats()}. */
    public long prompts() {
        return prompts;
    }

    /** Prompts that failed on an executor: none of their statistics are in. */
    public long failed() {
        return failed;
    }

    /** The first {@value #MAX_ERRORS} failures, each naming its prompt. */
    public List<String> errors() {
        return errors;
    }
}
