package ai.fluxbatch.jobs.prompts;

/** A prompt file that cannot be read as its format says; the message names the file, line and field. */
public final class PromptFormatException extends IllegalArgumentException {
    public PromptFormatException(String message) {
        super(message);
    }

    public PromptFormatException(String message, Throwable cause) {
        super(message, cause);
    }
}
