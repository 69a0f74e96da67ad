package ai.fluxbatch.jobs.prompts;

import java.io.Serializable;
import java.util.Map;

/**
 * One prompt of a dataset: where it came from ({@code source} file name, 0-based {@code row}), its text, the other
 * fields of its row as strings (kept as metadata columns), and an optional per-row seed. {@code index} is its
 * position in the whole dataset, in source order. {@code error} says what is wrong with this row (an empty prompt,
 * a seed that is not an integer, a prompt longer than {@link #MAX_PROMPT_CHARS}): such a row becomes an error row of
 * the job, not a failed job.
 */
public record PromptRow(
        long index, String source, long row, String prompt, Map<String, String> fields, Long seed, String error)
        implements Serializable {
    /**
     * The most characters (code points) a prompt may have. T5 reads 512 tokens at most and truncates the rest, so a
     * longer prompt is a mistake; one over the limit keeps only its first this many characters, as an error row.
     */
    public static final int MAX_PROMPT_CHARS = 10_000;

    /** A row checked as every prompt source checks it: empty, too long, a bad seed column (errors joined by '; '). */
    public static PromptRow of(long index, String source, long row, String prompt, Map<String, String> fields) {
        String error = prompt == null || prompt.isBlank() ? "empty prompt" : null;
        int chars = prompt == null ? 0 : prompt.codePointCount(0, prompt.length());
        if (chars > MAX_PROMPT_CHARS) {
            error = String.format("prompt has %,d characters, more than the limit of %,d", chars, MAX_PROMPT_CHARS);
            prompt = prompt.substring(0, prompt.offsetByCodePoints(0, MAX_PROMPT_CHARS));
        }
        Long seed = null;
        String s = fields.get("seed");
        if (s != null && !s.isBlank()) {
            try {
                seed = Long.parseLong(s.strip());
                if (seed < 0) {
                    error = join(error, "seed " + seed + " is negative");
                }
            } catch (NumberFormatException e) {
                error = join(error, "seed '" + s + "' is not an integer");
            }
        }
        return new PromptRow(index, source, row, prompt == null ? "" : prompt, fields, seed, error);
    }

    private static String join(String first, String second) {
        return first == null ? second : first + "; " + second;
    }
}
