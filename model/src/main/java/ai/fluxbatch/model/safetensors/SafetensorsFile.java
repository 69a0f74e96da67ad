package ai.fluxbatch.model.safetensors;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.Collections;
import java.util.Map;
import java.util.SortedSet;
import java.util.TreeSet;

/** One memory-mapped safetensors file; the header is fully validated in {@link #open(Path)}. */
public final class SafetensorsFile implements TensorSource {
    private final Path path;
    private final FileChannel channel;
    private final HeaderParser.Header header;
    private final SortedSet<String> names;
    private final MappedWindows windows;
    private volatile boolean closed;

    private SafetensorsFile(Path path, FileChannel channel, HeaderParser.Header header, long fileSize) {
        this.path = path;
        this.channel = channel;
        this.header = header;
        this.names =
                Collections.unmodifiableSortedSet(new TreeSet<>(header.tensors().keySet()));
        this.windows = new MappedWindows(path, channel, fileSize);
    }

    public static SafetensorsFile open(Path path) {
        RegularFiles.require(path);
        FileChannel channel;
        try {
            channel = FileChannel.open(path, StandardOpenOption.READ);
        } catch (NoSuchFileException e) {
            throw new SafetensorsException("cannot open " + path + ": no such file", e);
        } catch (IOException e) {
            throw new SafetensorsException("cannot open " + path + ": " + e, e);
        }
        try {
            HeaderParser.Header header = HeaderParser.read(path, channel);
            return new SafetensorsFile(path, channel, header, channel.size());
        } catch (IOException | RuntimeException e) {
            try {
                channel.close();
            } catch (IOException suppressed) {
                e.addSuppressed(suppressed);
            }
            if (e instanceof SafetensorsException se) {
                throw se;
            }
            throw new SafetensorsException("cannot read the header of " + path + ": " + e, e);
        }
    }

    /** The path this file was opened from. */
    public Path path() {
        return path;
    }

    @Override
    public SortedSet<String> names() {
        return names;
    }

    @Override
    public boolean contains(String name) {
        return header.tensors().containsKey(name);
    }

    @Override
    public TensorInfo info(String name) {
        TensorInfo t = header.tensors().get(name);
        if (t == null) {
            throw new SafetensorsException(
                    "tensor '" + name + "' not found in " + path + " (it has " + names.size() + " tensors)");
        }
        return t;
    }

    @Override
    public float[] floats(String name) {
        TensorInfo t = open(name);
        return TensorDecoder.floats(t, path, (off, len) -> slice(t, off, len));
    }

    @Override
    public double[] doubles(String name) {
        TensorInfo t = open(name);
        return TensorDecoder.doubles(t, path, (off, len) -> slice(t, off, len));
    }

    @Override
    public long[] longs(String name) {
        TensorInfo t = open(name);
        return TensorDecoder.longs(t, path, (off, len) -> slice(t, off, len));
    }

    @Override
    public ByteBuffer bytes(String name, long byteOffset, int length) {
        TensorInfo t = open(name);
        if (byteOffset < 0 || length < 0 || byteOffset > t.byteLength() - length) {
            throw new SafetensorsException("tensor '" + name + "' in " + path + ": cannot read " + length
                    + " bytes at offset " + byteOffset + "; the tensor has " + t.byteLength() + " bytes");
        }
        return slice(t, byteOffset, length);
    }

    private ByteBuffer slice(TensorInfo t, long byteOffset, int length) {
        return windows.slice(header.dataStart() + t.begin() + byteOffset, length);
    }

    @Override
    public Map<String, String> metadata() {
        return header.metadata();
    }

    @Override
    public Path file(String name) {
        info(name);
        return path;
    }

    /** Closes the file. Buffers returned by {@link #bytes} stay mapped until they are garbage collected. */
    @Override
    public void close() {
        closed = true;
        try {
            channel.close();
        } catch (IOException e) {
            throw new SafetensorsException("cannot close " + path + ": " + e, e);
        }
    }

    private TensorInfo open(String name) {
        if (closed) {
            throw new SafetensorsException("cannot read tensor '" + name + "': " + path + " is closed");
        }
        return info(name);
    }

    @Override
    public String toString() {
        return "SafetensorsFile[" + path + ", " + names.size() + " tensors]";
    }
}
