package ai.fluxbatch.model.safetensors;

import ai.fluxbatch.model.Golden;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;

/** Locating golden files and building hand-made (possibly broken) safetensors files. */
final class TestFiles {
    private TestFiles() {}

    static Path golden() {
        return Golden.dir().toAbsolutePath().normalize();
    }

    static Path goldenTransformer() {
        return golden().resolve("flux-tiny-dev/flux1-dev.safetensors");
    }

    static Path goldenForward() {
        return golden().resolve("cases/flux-tiny-dev/forward-1.safetensors");
    }

    /** A file made of the 8-byte length of {@code header}, the header itself, then {@code data}. */
    static Path raw(Path file, String header, byte[] data) throws IOException {
        byte[] json = header.getBytes(StandardCharsets.UTF_8);
        ByteBuffer buf = ByteBuffer.allocate(8 + json.length + data.length).order(ByteOrder.LITTLE_ENDIAN);
        buf.putLong(json.length).put(json).put(data);
        Files.write(file, buf.array());
        return file;
    }

    static Path raw(Path file, String header, int dataBytes) throws IOException {
        return raw(file, header, new byte[dataBytes]);
    }

    /** Like {@link #raw} but with a sparse data area of {@code dataBytes} bytes that takes no disk. */
    static long sparse(Path file, String header, long dataBytes) throws IOException {
        byte[] json = header.getBytes(StandardCharsets.UTF_8);
        ByteBuffer buf = ByteBuffer.allocate(8 + json.length).order(ByteOrder.LITTLE_ENDIAN);
        buf.putLong(json.length).put(json).flip();
        try (FileChannel ch = FileChannel.open(file, StandardOpenOption.CREATE_NEW, StandardOpenOption.WRITE)) {
            while (buf.hasRemaining()) {
                ch.write(buf);
            }
        }
        try (var raf = new java.io.RandomAccessFile(file.toFile(), "rw")) {
            raf.setLength(8 + json.length + dataBytes);
        }
        return 8 + json.length;
    }

    /** Writes {@code bytes} at absolute file position {@code position}. */
    static void writeAt(Path file, long position, byte[] bytes) throws IOException {
        ByteBuffer buf = ByteBuffer.wrap(bytes);
        try (FileChannel ch = FileChannel.open(file, StandardOpenOption.WRITE)) {
            while (buf.hasRemaining()) {
                position += ch.write(buf, position);
            }
        }
    }

    /** {@code "name": {"dtype": ..., "shape": ..., "data_offsets": [b, e]}} as JSON text. */
    static String entry(String name, String dtype, String shape, long begin, long end) {
        return "\"" + name + "\": {\"dtype\": \"" + dtype + "\", \"shape\": " + shape + ", \"data_offsets\": [" + begin
                + ", " + end + "]}";
    }
}
