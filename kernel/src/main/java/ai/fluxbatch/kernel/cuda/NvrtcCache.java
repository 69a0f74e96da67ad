package ai.fluxbatch.kernel.cuda;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.AtomicMoveNotSupportedException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.Arrays;
import java.util.HexFormat;
import java.util.List;
import java.util.Objects;
import java.util.Optional;
import java.util.regex.Pattern;

/**
 * The on-disk cache of the CUBINs that NVRTC compiles when a module's fatbin has no code for the GPU (see
 * {@link CudaDriverDevice}). One file per (module, source, options, architecture, NVRTC version):
 * {@code NAME-sm_XY-nvrtcMAJOR.MINOR-SHA256.cubin}, the hash over the source bytes and the compile options, so an
 * edited kernel, another GPU architecture or another NVRTC never reuses a stale binary.
 *
 * <p>A file is a 48-byte header (the magic {@code FBCUBIN1}, the payload's length as a big-endian long, the
 * payload's SHA-256) and the CUBIN. It is written to a temporary file in the same folder and renamed over the target,
 * so a reader sees a whole file or none; a file that is short, has another magic, another length or another hash
 * (truncated, corrupt, half-written by a killed process without atomic rename) is ignored, deleted and compiled
 * again. A cache that cannot be read or written (a read-only home) costs a compile each time and a warning, never a
 * failure.
 *
 * <p>The folder: the constructor's, else the system property {@value #DIR_PROPERTY}, else
 * {@code ${user.home}/.cache/fluxbatch/cuda}.
 */
public final class NvrtcCache {
    /** System property naming the cache folder. */
    public static final String DIR_PROPERTY = "fluxbatch.cuda.cache";

    static final byte[] MAGIC = "FBCUBIN1".getBytes(StandardCharsets.US_ASCII);
    static final int HEADER_BYTES = MAGIC.length + 8 + 32;
    private static final Pattern NAME_PART = Pattern.compile("[A-Za-z0-9_.]+");
    private static final System.Logger LOG = System.getLogger(NvrtcCache.class.getName());

    /** Compiles a module's source when the cache has no valid CUBIN for it. */
    @FunctionalInterface
    public interface Compiler {
        byte[] compile();
    }

    private final Path dir;

    public NvrtcCache(Path dir) {
        this.dir = Objects.requireNonNull(dir, "dir");
    }

    /** The cache in {@link #defaultDir()}. */
    public static NvrtcCache atDefaultDir() {
        return new NvrtcCache(defaultDir());
    }

    /** The system property {@value #DIR_PROPERTY} when set, else {@code ${user.home}/.cache/fluxbatch/cuda}. */
    public static Path defaultDir() {
        String dir = System.getProperty(DIR_PROPERTY);
        if (dir != null && !dir.isBlank()) {
            return Path.of(dir);
        }
        return Path.of(System.getProperty("user.home"), ".cache", "fluxbatch", "cuda");
    }

    public Path dir() {
        return dir;
    }

    /**
     * The cache file name of a CUBIN: {@code MODULE-ARCH-nvrtcVERSION-SHA256(source, 0, options joined by 0)}.cubin.
     *
     * @param module       the module name, e.g. ternary_matmul
     * @param source       the bytes NVRTC compiles
     * @param options      the NVRTC options, in order
     * @param arch         the real architecture compiled for, e.g. sm_90
     * @param nvrtcVersion NVRTC's version, e.g. 13.1
     */
    public static String key(String module, byte[] source, List<String> options, String arch, String nvrtcVersion) {
        checkPart("module", module);
        checkPart("architecture", arch);
        checkPart("NVRTC version", nvrtcVersion);
        MessageDigest sha = sha256();
        sha.update(source);
        for (String option : options) {
            sha.update((byte) 0);
            sha.update(option.getBytes(StandardCharsets.UTF_8));
        }
        return module + "-" + arch + "-nvrtc" + nvrtcVersion + "-"
                + HexFormat.of().formatHex(sha.digest()) + ".cubin";
    }

    private static void checkPart(String what, String value) {
        if (value == null || !NAME_PART.matcher(value).matches()) {
            throw new IllegalArgumentException(
                    "NVRTC cache key: " + what + " '" + value + "' must be letters, digits, '_' and '.'");
        }
    }

    public Path file(String key) {
        return dir.resolve(key);
    }

    /**
     * The cached CUBIN of {@code key}, or empty when there is none or the file is not a whole, valid entry (which is
     * then deleted, best effort).
     */
    public Optional<byte[]> read(String key) {
        Path file = file(key);
        byte[] bytes;
        try {
            bytes = Files.readAllBytes(file);
        } catch (NoSuchFileException e) {
            return Optional.empty();
        } catch (IOException e) {
            LOG.log(System.Logger.Level.WARNING, "cannot read the NVRTC cache entry " + file + ": " + e);
            return Optional.empty();
        }
        byte[] payload = decode(bytes);
        if (payload == null) {
            LOG.log(
                    System.Logger.Level.WARNING,
                    "ignoring the invalid NVRTC cache entry " + file + " (" + bytes.length
                            + " bytes: truncated or corrupt); compiling again");
            invalidate(key);
            return Optional.empty();
        }
        return Optional.of(payload);
    }

    /**
     * Stores {@code cubin} as {@code key}: a temporary file in the cache folder, forced to disk, renamed over the
     * entry. Returns false (after a warning) when the folder cannot be written.
     */
    public boolean write(String key, byte[] cubin) {
        Path file = file(key);
        Path tmp = null;
        try {
            Files.createDirectories(dir);
            tmp = Files.createTempFile(dir, key + ".", ".tmp");
            try (FileChannel ch =
                    FileChannel.open(tmp, StandardOpenOption.WRITE, StandardOpenOption.TRUNCATE_EXISTING)) {
                ByteBuffer buf = ByteBuffer.wrap(encode(cubin));
                while (buf.hasRemaining()) {
                    ch.write(buf);
                }
                ch.force(true);
            }
            try {
                Files.move(tmp, file, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
            } catch (AtomicMoveNotSupportedException e) {
                Files.move(tmp, file, StandardCopyOption.REPLACE_EXISTING);
            }
            tmp = null;
            return true;
        } catch (IOException | UnsupportedOperationException e) {
            LOG.log(
                    System.Logger.Level.WARNING,
                    "cannot write the NVRTC cache entry " + file + " (the kernel is" + " compiled again next time): "
                            + e);
            return false;
        } finally {
            if (tmp != null) {
                try {
                    Files.deleteIfExists(tmp);
                } catch (IOException e) {
                    // nothing more to do
                }
            }
        }
    }

    /** Deletes the entry of {@code key}, if any (best effort: a later write replaces it anyway). */
    public void invalidate(String key) {
        try {
            Files.deleteIfExists(file(key));
        } catch (IOException e) {
            LOG.log(System.Logger.Level.WARNING, "cannot delete the NVRTC cache entry " + file(key) + ": " + e);
        }
    }

    /** The cached CUBIN of {@code key}, else {@code compiler}'s, stored for next time. */
    public byte[] getOrCompile(String key, Compiler compiler) {
        Optional<byte[]> cached = read(key);
        if (cached.isPresent()) {
            return cached.get();
        }
        byte[] cubin = compiler.compile();
        if (cubin == null || cubin.length == 0) {
            throw new IllegalStateException("NVRTC produced no CUBIN for " + key);
        }
        write(key, cubin);
        return cubin;
    }

    /** The file bytes of an entry: magic, payload length (big-endian), payload SHA-256, payload. */
    static byte[] encode(byte[] payload) {
        ByteBuffer buf = ByteBuffer.allocate(HEADER_BYTES + payload.length);
        buf.put(MAGIC).putLong(payload.length).put(sha256().digest(payload)).put(payload);
        return buf.array();
    }

    /** The payload of an entry's file bytes, or null when they are not a whole, valid entry. */
    static byte[] decode(byte[] bytes) {
        if (bytes.length < HEADER_BYTES || !Arrays.equals(bytes, 0, MAGIC.length, MAGIC, 0, MAGIC.length)) {
            return null;
        }
        ByteBuffer buf = ByteBuffer.wrap(bytes);
        buf.position(MAGIC.length);
        long length = buf.getLong();
        if (length != bytes.length - HEADER_BYTES || length == 0) {
            return null;
        }
        byte[] hash = new byte[32];
        buf.get(hash);
        byte[] payload = Arrays.copyOfRange(bytes, HEADER_BYTES, bytes.length);
        return MessageDigest.isEqual(hash, sha256().digest(payload)) ? payload : null;
    }

    private static MessageDigest sha256() {
        try {
            return MessageDigest.getInstance("SHA-256");
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException("this JVM has no SHA-256", e);
        }
    }
}
