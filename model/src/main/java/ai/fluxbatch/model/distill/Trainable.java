package ai.fluxbatch.model.distill;

import java.io.Serializable;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;

/**
 * Which of the student's parameters a distillation updates: the per-channel scales, the biases, or both; the others
 * stay exactly as loaded.
 */
public record Trainable(boolean scales, boolean biases) implements Serializable {
    public static final String SCALES = "scales";
    public static final String BIASES = "biases";
    public static final Trainable ALL = new Trainable(true, true);

    public Trainable {
        if (!scales && !biases) {
            throw new IllegalArgumentException("nothing to train: expected " + SCALES + ", " + BIASES + " or both");
        }
    }

    /** {@code scales}, {@code biases} or both, comma-separated, each at most once. */
    public static Trainable parse(String list) {
        boolean s = false, b = false;
        for (String part : list.split(",", -1)) {
            String v = part.strip().toLowerCase(Locale.ROOT);
            if (v.equals(SCALES) && !s) {
                s = true;
            } else if (v.equals(BIASES) && !b) {
                b = true;
            } else {
                throw new IllegalArgumentException("'" + list + "' is not a list of trainable parameters: expected "
                        + SCALES + ", " + BIASES + " or " + SCALES + "," + BIASES
                        + (v.isEmpty()
                                ? " (an empty entry)"
                                : v.equals(SCALES) || v.equals(BIASES)
                                        ? " ('" + v + "' twice)"
                                        : " ('" + v + "' is neither)"));
            }
        }
        return new Trainable(s, b);
    }

    /** As {@link #parse} reads it: {@code scales,biases}, {@code scales} or {@code biases}. */
    @Override
    public String toString() {
        List<String> parts = new ArrayList<>();
        if (scales) {
            parts.add(SCALES);
        }
        if (biases) {
            parts.add(BIASES);
        }
        return String.join(",", parts);
    }
}
