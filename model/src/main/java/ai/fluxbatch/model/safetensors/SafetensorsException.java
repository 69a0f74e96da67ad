package ai.fluxbatch.model.safetensors;

/** Any problem reading or writing safetensors; the message names the file and tensor involved. */
public final class SafetensorsException extends RuntimeException {
    private static final long serialVersionUID = 1L;

    public SafetensorsException(String message) {
        super(message);
    }

    public SafetensorsException(String message, Throwable cause) {
        super(message, cause);
    }
}
