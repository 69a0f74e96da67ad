package ai.fluxbatch.jobs.generate;

import ai.fluxbatch.jobs.prompts.PromptRow;
import ai.fluxbatch.model.Sha256;
import java.io.Serializable;
import java.nio.charset.StandardCharsets;
import java.util.HexFormat;
import java.util.Map;

/**
 * One image to make. The id is derived from the source, the prompt text, the row's seed column where it has one, and
 * the image index (rows without a seed column keep the ids they always had, so their outputs still resume), and the
 * seed from the row's seed column or {@code --seed}, plus the image index, so re-runs and other cluster sizes make the
 * same images. Rows that differ only in their seed column get distinct ids; identical rows share one, and
 * {@link GenerateJob} makes such an image once. {@code error} is set when the row itself is invalid: the task becomes
 * an error row without any work.
 */
public record ImageTask(
        String id,
        String source,
        long row,
        long promptIndex,
        String prompt,
        int imageIndex,
        long seed,
        Map<String, String> fields,
        String error)
        implements Serializable {

    public static ImageTask of(PromptRow p, int imageIndex, long baseSeed) {
        long base = p.seed() != null ? p.seed() : baseSeed;
        String error = p.error();
        long seed;
        try {
            seed = Math.addExact(base, imageIndex);
        } catch (ArithmeticException e) { // a row's seed column near Long.MAX_VALUE: an error row, not a wrapped seed
            seed = base;
            error = error != null
                    ? error
                    : "seed " + base + " + image index " + imageIndex + " is more than the" + " largest seed, "
                            + Long.MAX_VALUE;
        }
        return new ImageTask(
                idOf(p.source(), p.prompt(), p.seed(), imageIndex),
                p.source(),
                p.row(),
                p.index(),
                p.prompt(),
                imageIndex,
                seed,
                p.fields(),
                error);
    }

    /** This task under another id (one the caller gives its images, as the DataFrame API's id column does). */
    public ImageTask withId(String newId) {
        return new ImageTask(newId, source, row, promptIndex, prompt, imageIndex, seed, fields, error);
    }

    /** This task as an error row: {@code why} it is not made. */
    ImageTask withError(String why) {
        return new ImageTask(id, source, row, promptIndex, prompt, imageIndex, seed, fields, why);
    }

    /** {@code rowSeed}: the row's seed column, or null where it has none (the id then ignores --seed, as it did). */
    static String idOf(String source, String prompt, Long rowSeed, int imageIndex) {
        String key = source + '\0' + prompt + '\0' + imageIndex + (rowSeed == null ? "" : "\0seed=" + rowSeed);
        byte[] digest = Sha256.digest().digest(key.getBytes(StandardCharsets.UTF_8));
        return HexFormat.of().formatHex(digest, 0, 10);
    }
}
