package ai.fluxbatch.model;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.stream.Stream;

/** Writable copies of the golden tiny snapshots, and byte patches of their tensors. */
public final class TinySnapshots {
    private TinySnapshots() {}

    /** A copy of the golden snapshot {@code name} (e.g. "flux-tiny-dev") under {@code dir}, with writable files. */
    public static Path copy(String name, Path dir) throws IOException {
        Path from = Golden.path(name);
        Path to = dir.resolve(name);
        try (Stream<Path> all = Files.walk(from)) {
            for (Path p : (Iterable<Path>) all::iterator) {
                Path q = to.resolve(from.relativize(p).toString());
                if (Files.isDirectory(p)) {
                    Files.createDirectories(q);
                } else {
                    Files.copy(p, q);
                    q.toFile().setWritable(true);
                }
            }
        }
        return to;
    }

    /** Overwrites the bytes of element {@code index} of {@code tensor} in the safetensors {@code file}. */
    public static void patch(Path file, String tensor, long index, byte[] element) throws IOException {
        try (FileChannel ch = FileChannel.open(file, StandardOpenOption.READ, StandardOpenOption.WRITE)) {
            ByteBuffer len = ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN);
            ch.read(len, 0);
            long n = len.getLong(0);
            ByteBuffer json = ByteBuffer.allocate((int) n);
            ch.read(json, 8);
            var entry = new com.fasterxml.jackson.databind.ObjectMapper()
                    .readTree(json.array())
                    .get(tensor);
            if (entry == null) {
                throw new IllegalArgumentException("no tensor " + tensor + " in " + file);
            }
            long begin = entry.get("data_offsets").get(0).longValue();
            ch.write(ByteBuffer.wrap(element), 8 + n + begin + index * element.length);
        }
    }

    /** A NaN as the two bytes of a BF16 (and F16) element, little-endian. */
    public static final byte[] BF16_NAN = {(byte) 0xC0, 0x7F};
}
