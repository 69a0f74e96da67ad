package ai.fluxbatch.model.safetensors;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.channels.WritableByteChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.AtomicMoveNotSupportedException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.security.SecureRandom;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.SortedMap;
import java.util.TreeMap;

/**
 * Collects tensors and metadata and writes them as one safetensors file, atomically: the file is written
 * to a temporary file next to the target, forced to disk, then renamed onto the target. Tensors are laid
 * out in name order. Buffers given to {@link #add(String, DType, long[], ByteBuffer)} are not copied, so
 * they must not change before {@link #write(Path)}.
 */
public final class SafetensorsWriter {
    private static final SecureRandom RANDOM = new SecureRandom();

    /** Streams a tensor's bytes (little-endian, row-major); must write exactly dtype size x numel bytes. */
    @FunctionalInterface
    public interface TensorWriter {
        void writeTo(WritableByteChannel out) throws IOException;
    }

    private record Pending(DType dtype, long[] shape, long byteLength, ByteBuffer data, TensorWriter body) {}

    private final Map<String, String> metadata = new LinkedHashMap<>();
    private final SortedMap<String, Pending> tensors = new TreeMap<>();

    public SafetensorsWriter metadata(String key, String value) {
        if (key == null || value == null) {
            throw new SafetensorsException("metadata key and value must not be null (key " + key + ")");
        }
        metadata.put(key, value);
        return this;
    }

    /** Adds a tensor whose raw little-endian bytes are the remaining bytes of {@code data}. */
    public SafetensorsWriter add(String name, DType dtype, long[] shape, ByteBuffer data) {
        long bytes = checkNew(name, dtype, shape);
        if (data.remaining() != bytes) {
            throw new SafetensorsException("tensor '" + name + "': dtype " + dtype + " x shape "
                    + Arrays.toString(shape) + " = " + bytes + " bytes but the buffer has " + data.remaining());
        }
        tensors.put(name, new Pending(dtype, shape.clone(), bytes, data.slice(), null));
        return this;
    }

    /** Adds a tensor whose bytes are streamed at write time, for tensors too large to hold in memory. */
    public SafetensorsWriter add(String name, DType dtype, long[] shape, TensorWriter body) {
        long bytes = checkNew(name, dtype, shape);
        if (body == null) {
            throw new SafetensorsException("tensor '" + name + "': TensorWriter is null");
        }
        tensors.put(name, new Pending(dtype, shape.clone(), bytes, null, body));
        return this;
    }

    /**
     * Adds a tensor of zeros that is never written: its bytes are left as a hole in the file, which file systems with
     * sparse files (ext4, XFS, APFS, tmpfs) store in no space. For checkpoints of a full-size layout that are read but
     * never computed with.
     */
    public SafetensorsWriter addZeros(String name, DType dtype, long[] shape) {
        long bytes = checkNew(name, dtype, shape);
        tensors.put(name, new Pending(dtype, shape.clone(), bytes, null, null));
        return this;
    }

    public SafetensorsWriter addF32(String name, long[] shape, float[] data) {
        checkCount(name, DType.F32, shape, data.length, "floats");
        ByteBuffer buf = ByteBuffer.allocate(4 * data.length).order(ByteOrder.LITTLE_ENDIAN);
        buf.asFloatBuffer().put(data);
        return add(name, DType.F32, shape, buf);
    }

    public SafetensorsWriter addI64(String name, long[] shape, long[] data) {
        checkCount(name, DType.I64, shape, data.length, "longs");
        ByteBuffer buf = ByteBuffer.allocate(8 * data.length).order(ByteOrder.LITTLE_ENDIAN);
        buf.asLongBuffer().put(data);
        return add(name, DType.I64, shape, buf);
    }

    /** Writes the file; on failure nothing is left at (or changed at) {@code target}. */
    public void write(Path target) {
        Path absolute = target.toAbsolutePath();
        Path folder = absolute.getParent();
        Path tmp = folder.resolve("." + absolute.getFileName() + ".tmp-" + Long.toHexString(RANDOM.nextLong()));
        try {
            try (FileChannel out = FileChannel.open(tmp, StandardOpenOption.CREATE_NEW, StandardOpenOption.WRITE)) {
                writeFully(out, header());
                for (Map.Entry<String, Pending> e : tensors.entrySet()) {
                    writeTensor(out, target, e.getKey(), e.getValue());
                }
                long end = out.position();
                if (out.size() < end) { // the file ends in a hole of zeros: its last byte, written, gives its length
                    out.position(end - 1);
                    writeFully(out, ByteBuffer.allocate(1));
                }
                out.force(true);
            }
            try {
                Files.move(tmp, target, StandardCopyOption.ATOMIC_MOVE);
            } catch (AtomicMoveNotSupportedException e) {
                Files.move(tmp, target, StandardCopyOption.REPLACE_EXISTING);
            }
        } catch (IOException | RuntimeException e) {
            try {
                Files.deleteIfExists(tmp);
            } catch (IOException suppressed) {
                e.addSuppressed(suppressed);
            }
            if (e instanceof SafetensorsException se) {
                throw se;
            }
            throw new SafetensorsException("cannot write " + target + ": " + e, e);
        }
    }

    private void writeTensor(FileChannel out, Path target, String name, Pending t) throws IOException {
        if (t.data() == null && t.body() == null) {
            out.position(out.position() + t.byteLength());
            return;
        }
        if (t.data() != null) {
            writeFully(out, t.data().duplicate());
            return;
        }
        CountingChannel counted = new CountingChannel(out);
        try {
            t.body().writeTo(counted);
        } catch (IOException | RuntimeException e) {
            throw new SafetensorsException(
                    "cannot write " + target + ": the TensorWriter of tensor '" + name + "' failed: " + e, e);
        }
        if (counted.count != t.byteLength()) {
            throw new SafetensorsException("cannot write " + target + ": the TensorWriter of tensor '" + name
                    + "' wrote " + counted.count + " bytes but dtype " + t.dtype() + " x shape "
                    + Arrays.toString(t.shape()) + " needs " + t.byteLength());
        }
    }

    /** The length prefix and JSON header, padded with spaces so the data area starts on an 8-byte boundary. */
    private ByteBuffer header() {
        ObjectNode root = HeaderParser.JSON.createObjectNode();
        if (!metadata.isEmpty()) {
            ObjectNode meta = root.putObject(HeaderParser.METADATA_KEY);
            metadata.forEach(meta::put);
        }
        long offset = 0;
        for (Map.Entry<String, Pending> e : tensors.entrySet()) {
            Pending t = e.getValue();
            ObjectNode entry = root.putObject(e.getKey());
            entry.put("dtype", t.dtype().name());
            ArrayNode shape = entry.putArray("shape");
            for (long d : t.shape()) {
                shape.add(d);
            }
            entry.putArray("data_offsets").add(offset).add(offset + t.byteLength());
            offset += t.byteLength();
        }
        byte[] json;
        try {
            json = HeaderParser.JSON.writeValueAsString(root).getBytes(StandardCharsets.UTF_8);
        } catch (JsonProcessingException e) {
            throw new SafetensorsException("cannot encode the safetensors header: " + e, e);
        }
        int padded = (json.length + 7) & ~7;
        ByteBuffer buf = ByteBuffer.allocate(8 + padded).order(ByteOrder.LITTLE_ENDIAN);
        buf.putLong(padded).put(json);
        while (buf.hasRemaining()) {
            buf.put((byte) ' ');
        }
        return buf.flip();
    }

    private long checkNew(String name, DType dtype, long[] shape) {
        if (name == null || dtype == null || shape == null) {
            throw new SafetensorsException("tensor '" + name + "': name, dtype and shape must not be null");
        }
        if (name.equals(HeaderParser.METADATA_KEY)) {
            throw new SafetensorsException("tensor name '" + name + "' is reserved for the metadata");
        }
        if (tensors.containsKey(name)) {
            throw new SafetensorsException("tensor '" + name + "' was already added; tensor names must be unique");
        }
        try {
            long n = 1;
            for (long d : shape) {
                if (d < 0) {
                    throw new SafetensorsException(
                            "tensor '" + name + "': shape " + Arrays.toString(shape) + " has a negative dimension");
                }
                n = Math.multiplyExact(n, d);
            }
            return Math.multiplyExact(n, (long) dtype.size());
        } catch (ArithmeticException e) {
            throw new SafetensorsException("tensor '" + name + "': dtype " + dtype + " x shape "
                    + Arrays.toString(shape) + " is more than 2^63 bytes");
        }
    }

    private long checkCount(String name, DType dtype, long[] shape, int given, String what) {
        long n = checkNew(name, dtype, shape) / dtype.size();
        if (n != given) {
            throw new SafetensorsException("tensor '" + name + "': shape " + Arrays.toString(shape) + " has " + n
                    + " elements but " + given + " " + what + " were given");
        }
        return n;
    }

    private static void writeFully(WritableByteChannel out, ByteBuffer buf) throws IOException {
        while (buf.hasRemaining()) {
            out.write(buf);
        }
    }

    /** Counts what a TensorWriter writes; closing it does not close the file. */
    private static final class CountingChannel implements WritableByteChannel {
        private final WritableByteChannel out;
        private long count;

        CountingChannel(WritableByteChannel out) {
            this.out = out;
        }

        @Override
        public int write(ByteBuffer src) throws IOException {
            int n = out.write(src);
            count += n;
            return n;
        }

        @Override
        public boolean isOpen() {
            return out.isOpen();
        }

        @Override
        public void close() {}
    }
}
