package ai.fluxbatch.model.safetensors;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.MappedByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Path;

/**
 * Read-only memory mapping of a file of any size. One MappedByteBuffer holds at most 2 GiB, so the
 * file is mapped lazily in windows: window k starts at k GiB and is up to 2 GiB - 1 long, which means
 * every range shorter than 1 GiB lies inside the window of its first byte. Longer ranges get their own
 * mapping.
 */
final class MappedWindows {
    private static final long STRIDE = 1L << 30;

    private final Path file;
    private final FileChannel channel;
    private final long size;
    private final MappedByteBuffer[] windows;

    MappedWindows(Path file, FileChannel channel, long size) {
        this.file = file;
        this.channel = channel;
        this.size = size;
        this.windows = new MappedByteBuffer[(int) ((size + STRIDE - 1) / STRIDE)];
    }

    /** A read-only little-endian buffer over [position, position + length); the caller checks bounds. */
    ByteBuffer slice(long position, int length) {
        if (length == 0) {
            return ByteBuffer.allocate(0).asReadOnlyBuffer().order(ByteOrder.LITTLE_ENDIAN);
        }
        int k = (int) (position / STRIDE);
        long start = k * STRIDE;
        ByteBuffer region;
        if (position + length - start <= Integer.MAX_VALUE) {
            region = window(k).slice((int) (position - start), length);
        } else {
            region = map(position, length);
        }
        return region.asReadOnlyBuffer().order(ByteOrder.LITTLE_ENDIAN);
    }

    private synchronized MappedByteBuffer window(int k) {
        if (windows[k] == null) {
            long start = k * STRIDE;
            windows[k] = map(start, Math.min(size - start, Integer.MAX_VALUE));
        }
        return windows[k];
    }

    private MappedByteBuffer map(long position, long length) {
        try {
            return channel.map(FileChannel.MapMode.READ_ONLY, position, length);
        } catch (IOException e) {
            throw new SafetensorsException(
                    "cannot memory-map bytes " + position + ".." + (position + length) + " of " + file + ": " + e, e);
        }
    }
}
