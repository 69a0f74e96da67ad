package ai.fluxbatch.kernel.cuda;

/** The device had no room for an allocation. */
public class DeviceOutOfMemoryException extends RuntimeException {
    private final long requestedBytes;

    public DeviceOutOfMemoryException(String message, long requestedBytes) {
        super(message);
        this.requestedBytes = requestedBytes;
    }

    public long requestedBytes() {
        return requestedBytes;
    }
}
