package ai.fluxbatch.jobs.calibrate;

import java.io.Serializable;
import java.util.BitSet;
import java.util.function.IntPredicate;
import java.util.stream.Collectors;

/**
 * Which denoising steps are recorded: 0-based step indices out of {@code steps}, written as a list of indices and
 * ranges ({@code 0,5,10}, {@code 0-9}, {@code 0-3,20,40-49}), or all of them.
 */
public final class StepSelection implements IntPredicate, Serializable {
    private static final long serialVersionUID = 1L;

    private final int steps;
    private final BitSet recorded;

    private StepSelection(int steps, BitSet recorded) {
        this.steps = steps;
        this.recorded = recorded;
    }

    public static StepSelection all(int steps) {
        BitSet b = new BitSet(steps);
        b.set(0, steps);
        return new StepSelection(steps, b);
    }

    /** Parses {@code spec} against {@code steps}; an error message names the option and what was expected. */
    public static StepSelection parse(String spec, int steps) {
        String expected = "expected step indices 0 to " + (steps - 1) + " (--steps " + steps + "), as a list such as"
                + " 0,5,10 or ranges such as 0-9";
        if (spec == null || spec.isBlank()) {
            throw new IllegalArgumentException("--timesteps is empty: " + expected);
        }
        BitSet b = new BitSet(steps);
        for (String part : spec.split(",", -1)) {
            String p = part.strip();
            int dash = p.indexOf('-', 1);
            int from, to;
            try {
                from = Integer.parseInt(dash < 0 ? p : p.substring(0, dash).strip());
                to = dash < 0 ? from : Integer.parseInt(p.substring(dash + 1).strip());
            } catch (NumberFormatException e) {
                throw new IllegalArgumentException(
                        "--timesteps " + spec + ": '" + p + "' is not a step index or a" + " range; " + expected);
            }
            if (from > to) {
                throw new IllegalArgumentException(
                        "--timesteps " + spec + ": range " + p + " runs backwards; " + expected);
            }
            if (from < 0 || to >= steps) {
                throw new IllegalArgumentException(
                        "--timesteps " + spec + ": step " + (from < 0 ? from : to) + " is out of range; " + expected);
            }
            b.set(from, to + 1);
        }
        return new StepSelection(steps, b);
    }

    @Override
    public boolean test(int step) {
        return recorded.get(step);
    }

    public int count() {
        return recorded.cardinality();
    }

    public int steps() {
        return steps;
    }

    public boolean isAll() {
        return count() == steps;
    }

    /** The recorded indices, comma-separated and ascending ({@code 0,1,2,5}): the file's metadata. */
    @Override
    public String toString() {
        return recorded.stream().mapToObj(Integer::toString).collect(Collectors.joining(","));
    }
}
