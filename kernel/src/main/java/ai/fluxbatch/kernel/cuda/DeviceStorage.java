package ai.fluxbatch.kernel.cuda;

import java.lang.ref.Cleaner;
import java.util.concurrent.atomic.AtomicBoolean;

/**
 * One block of device memory behind a tensor and its reshaped views. It goes back to the pool when released
 * explicitly (its scope closed, or a tensor on it closed) or, failing that, when it becomes unreachable.
 */
final class DeviceStorage {
    private static final Cleaner CLEANER = Cleaner.create();

    /** The release itself, kept apart from the storage so the cleaner does not hold the storage reachable. */
    private static final class Block implements Runnable {
        final DeviceMemoryPool pool;
        final long pointer;
        final long bytes;
        final AtomicBoolean released = new AtomicBoolean();

        Block(DeviceMemoryPool pool, long pointer, long bytes) {
            this.pool = pool;
            this.pointer = pointer;
            this.bytes = bytes;
        }

        @Override
        public void run() {
            if (released.compareAndSet(false, true)) {
                pool.release(pointer, bytes);
            }
        }
    }

    private final Block block;
    private final Cleaner.Cleanable cleanable;

    DeviceStorage(DeviceMemoryPool pool, long bytes) {
        this.block = new Block(pool, pool.acquire(bytes), bytes);
        this.cleanable = CLEANER.register(this, block);
    }

    DeviceMemoryPool pool() {
        return block.pool;
    }

    long bytes() {
        return block.bytes;
    }

    boolean isReleased() {
        return block.released.get();
    }

    /** The device pointer; {@code what} names the tensor in the error when the storage was already released. */
    long pointer(Object what) {
        if (block.released.get()) {
            throw new IllegalStateException("tensor " + what + " was used after it was freed (its scope closed or it"
                    + " was closed); keep it with TensorScope.keep to use it outside its scope");
        }
        return block.pointer;
    }

    void release() {
        cleanable.clean();
    }
}
