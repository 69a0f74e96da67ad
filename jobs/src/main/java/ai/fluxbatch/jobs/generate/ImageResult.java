package ai.fluxbatch.jobs.generate;

import java.io.Serializable;

/** What happened to one task: {@code ok}, {@code skipped} (already on storage) or {@code error} with the message. */
public record ImageResult(String id, String prompt, int imageIndex, long seed, String path, String status,
                          String error, double seconds) implements Serializable {

    public static final String OK = "ok";
    public static final String SKIPPED = "skipped";
    public static final String ERROR = "error";
}
