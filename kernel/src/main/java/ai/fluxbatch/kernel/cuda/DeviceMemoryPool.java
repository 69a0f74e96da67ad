package ai.fluxbatch.kernel.cuda;

import java.util.ArrayDeque;
import java.util.HashMap;
import java.util.HashSet;
import java.util.Map;
import java.util.Set;

/**
 * A caching allocator over a {@link Device}: a released block goes to a free list of its (rounded) size and the next
 * request of that size takes it back, so a model that runs the same shapes step after step allocates device memory
 * during its first step only. Blocks are reused in stream order: the device runs everything on one stream, so work
 * queued after a release cannot overtake work queued before it. When the device is full, the cached blocks are freed
 * and the request retried. Releases may come from any thread (the cleaner); the rest runs on the backend's thread.
 */
public final class DeviceMemoryPool implements AutoCloseable {
    /** Every block is a multiple of this many bytes. */
    public static final long GRANULE = 512;

    /** What the pool holds. */
    public record Stats(
            long deviceAllocations, long inUseBytes, long cachedBytes, long peakInUseBytes, long peakDeviceBytes) {
        public long deviceBytes() {
            return inUseBytes + cachedBytes;
        }
    }

    private final Device device;
    private final Map<Long, ArrayDeque<Long>> free = new HashMap<>();
    private final Set<Long> owned = new HashSet<>();
    private long deviceAllocations;
    private long inUse;
    private long cached;
    private long peakInUse;
    private long peakDevice;
    private boolean closed;

    public DeviceMemoryPool(Device device) {
        this.device = device;
    }

    public static long rounded(long bytes) {
        if (bytes < 0) {
            throw new IllegalArgumentException("negative allocation of " + bytes + " bytes");
        }
        return Math.max(GRANULE, (bytes + GRANULE - 1) / GRANULE * GRANULE);
    }

    /** A block of at least {@code bytes}; give it back with {@link #release(long, long)} and the same size. */
    public synchronized long acquire(long bytes) {
        if (closed) {
            throw new IllegalStateException("the device memory pool is closed");
        }
        long size = rounded(bytes);
        ArrayDeque<Long> list = free.get(size);
        long pointer;
        if (list != null && !list.isEmpty()) {
            pointer = list.pop();
            cached -= size;
        } else {
            pointer = allocate(size);
        }
        inUse += size;
        peakInUse = Math.max(peakInUse, inUse);
        return pointer;
    }

    private long allocate(long size) {
        long pointer;
        try {
            pointer = device.allocate(size);
        } catch (DeviceOutOfMemoryException full) {
            trim();
            try {
                pointer = device.allocate(size);
            } catch (DeviceOutOfMemoryException stillFull) {
                throw new DeviceOutOfMemoryException(
                        stillFull.getMessage() + "; the pool holds " + inUse + " bytes in live tensors (peak "
                                + peakInUse + ")",
                        size);
            }
        }
        deviceAllocations++;
        owned.add(pointer);
        peakDevice = Math.max(peakDevice, inUse + cached + size);
        return pointer;
    }

    /** Returns a block from {@link #acquire}; after {@link #close} this does nothing (the memory is already freed). */
    public synchronized void release(long pointer, long bytes) {
        if (closed) {
            return;
        }
        if (!owned.contains(pointer)) {
            throw new IllegalStateException(
                    "released 0x" + Long.toHexString(pointer) + ", which this pool did not" + " allocate");
        }
        long size = rounded(bytes);
        free.computeIfAbsent(size, s -> new ArrayDeque<>()).push(pointer);
        inUse -= size;
        cached += size;
    }

    /** Frees the cached blocks on the device. */
    public synchronized void trim() {
        for (ArrayDeque<Long> list : free.values()) {
            for (long pointer : list) {
                device.free(pointer);
                owned.remove(pointer);
            }
        }
        free.clear();
        cached = 0;
    }

    public synchronized Stats stats() {
        return new Stats(deviceAllocations, inUse, cached, peakInUse, peakDevice);
    }

    /**
     * Frees every block, cached or in use; tensors still alive become invalid. Every block is tried even when one
     * fails (after a GPU fault they all do); the first failure is thrown, the others suppressed in it.
     */
    @Override
    public synchronized void close() {
        if (closed) {
            return;
        }
        closed = true;
        RuntimeException failure = null;
        for (long pointer : owned) {
            try {
                device.free(pointer);
            } catch (RuntimeException e) {
                if (failure == null) {
                    failure = e;
                } else {
                    failure.addSuppressed(e);
                }
            }
        }
        owned.clear();
        free.clear();
        inUse = 0;
        cached = 0;
        if (failure != null) {
            throw failure;
        }
    }
}
