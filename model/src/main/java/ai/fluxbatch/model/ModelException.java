package ai.fluxbatch.model;

/** A model folder, file or tensor that is not what a FLUX.1 model needs; the message names it and what was expected. */
public final class ModelException extends RuntimeException {
    public ModelException(String message) {
        super(message);
    }

    public ModelException(String message, Throwable cause) {
        super(message, cause);
    }
}
