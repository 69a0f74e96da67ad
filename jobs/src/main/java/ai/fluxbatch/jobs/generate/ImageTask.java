package ai.fluxbatch.jobs.generate;

import ai.fluxbatch.jobs.prompts.PromptRow;
import ai.fluxbatch.model.Sha256;
import java.io.Serializable;
import java.nio.charset.StandardCharsets;
import java.util.HexFormat;
import java.util.Map;

/**
 * One image to make. The id is derived from the source, the prompt text and the image index only, and the seed from
 * the row's seed column or {@code --seed}, plus the image index, so re-runs and other cluster sizes make the same
 * images. {@code error} is set when the row itself is invalid: the task becomes an error row without any work.
 */
public record ImageTask(String id, String source, long row, long promptIndex, String prompt, int imageIndex,
                        long seed, Map<String, String> fields, String error) implements Serializable {

    public static ImageTask of(PromptRow p, int imageIndex, long baseSeed) {
        long seed = (p.seed() != null ? p.seed() : baseSeed) + imageIndex;
        return new ImageTask(idOf(p.source(), p.prompt(), imageIndex), p.source(), p.row(), p.index(), p.prompt(),
                imageIndex, seed, p.fields(), p.error());
    }

    static String idOf(String source, String prompt, int imageIndex) {
        byte[] digest = Sha256.digest().digest((source + '\0' + prompt + '\0' + imageIndex)
                .getBytes(StandardCharsets.UTF_8));
        return HexFormat.of().formatHex(digest, 0, 10);
    }
}
