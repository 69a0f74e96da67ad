package ai.fluxbatch.jobs.generate;

import java.io.Serializable;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.HexFormat;

/**
 * One image to make: a prompt, which of its images this is, and its seed. The id is derived from the source, the
 * prompt text and the image index only, so re-runs and other cluster sizes name (and skip) the same images.
 */
public record ImageTask(String id, String source, String prompt, int imageIndex, long seed) implements Serializable {

    public static ImageTask of(String source, String prompt, int imageIndex, long seed) {
        return new ImageTask(idOf(source, prompt, imageIndex), source, prompt, imageIndex, seed);
    }

    static String idOf(String source, String prompt, int imageIndex) {
        try {
            MessageDigest sha = MessageDigest.getInstance("SHA-256");
            byte[] digest = sha.digest((source + '\0' + prompt + '\0' + imageIndex).getBytes(StandardCharsets.UTF_8));
            return HexFormat.of().formatHex(digest, 0, 10);
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException("SHA-256 is part of every Java runtime", e);
        }
    }
}
