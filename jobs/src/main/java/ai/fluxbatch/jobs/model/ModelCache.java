package ai.fluxbatch.jobs.model;

import ai.fluxbatch.model.Sha256;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.FileNotFoundException;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.io.UncheckedIOException;
import java.net.URI;
import java.net.URISyntaxException;
import java.nio.channels.Channels;
import java.nio.channels.FileChannel;
import java.nio.channels.FileLock;
import java.nio.charset.StandardCharsets;
import java.nio.file.DirectoryStream;
import java.nio.file.FileAlreadyExistsException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.security.MessageDigest;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.HashMap;
import java.util.HexFormat;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Objects;
import java.util.UUID;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.locks.ReentrantLock;
import java.util.function.Supplier;
import java.util.stream.Stream;
import java.util.zip.CRC32;
import java.util.zip.CRC32C;
import java.util.zip.Checksum;
import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.fs.FileChecksum;
import org.apache.hadoop.fs.FileStatus;
import org.apache.hadoop.fs.FileSystem;
import org.apache.hadoop.fs.LocatedFileStatus;
import org.apache.hadoop.fs.RemoteIterator;
import org.apache.hadoop.fs.UnsupportedFileSystemException;
import org.apache.spark.SparkConf;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * A node's copies of model snapshots that live behind a URI ({@code s3a://}, {@code hdfs://}, {@code file://}, any
 * scheme with a Hadoop file system on the class path). The first {@link #resolve} of a snapshot on a node copies its
 * folder, recursively, through the Hadoop FileSystem API into an entry of the cache folder; later ones find the entry
 * and copy nothing.
 *
 * <p>An entry is keyed by the snapshot's URI and its source listing (every file's path, size and modification time),
 * so a changed source gets an entry of its own: {@code ROOT/NAME-KEY/NAME/} holds the copy (under the source folder's
 * own name) and {@code ROOT/NAME-KEY/manifest.json} beside it the listing with each file's SHA-256. Each file is
 * copied with its SHA-256 (and, when the source file system reports a composite CRC, as HDFS does with {@code
 * dfs.checksum.combine.mode=COMPOSITE_CRC}, that CRC) computed on the way, then checked: its size against the
 * listing, the file read back against the SHA-256 written, the CRC against the source's. The entry is assembled under
 * a temporary name and renamed into place in one step, so a copy that fails or dies leaves no entry, only a
 * temporary folder that the next download removes. An entry found later is checked against its manifest (each file's
 * size and modification time): one changed or cut short since is downloaded again.
 *
 * <p>Several JVMs of one node (executors starting together) may resolve the same snapshot at once: the download runs
 * under an OS file lock ({@link FileChannel#lock}) on {@code ROOT/NAME-KEY.lock}, and under a lock of this JVM for
 * the threads in it, so one downloads and the others wait, then find its entry. Entries are never removed here (one
 * may be in use by another JVM): an old entry of a changed source stays until someone deletes it.
 */
public final class ModelCache {
    /** The system property that sets the cache folder (first choice). */
    public static final String PROPERTY = "fluxbatch.model.cache";
    /** The Spark setting that sets it (second choice): spark-submit --conf, spark-defaults.conf. */
    public static final String SPARK_CONF = "spark.fluxbatch.model.cache";
    /** The environment variable that sets it (third choice), e.g. in a node's or a container image's environment. */
    public static final String ENV = "FLUXBATCH_MODEL_CACHE";

    static final String MANIFEST = "manifest.json";
    static final int FORMAT = 1;
    /** Files at least this large get a line of their own in the log while they are copied. */
    private static final long LOGGED_FILE_BYTES = 64L << 20;

    private static final Logger LOG = LoggerFactory.getLogger(ModelCache.class);
    private static final ObjectMapper JSON = new ObjectMapper();
    /**
     * One lock per entry for the threads of this JVM: the OS file lock belongs to the whole JVM, so it cannot keep two
     * threads of one JVM apart (a second {@code lock()} in the same JVM throws). A table of locks, not of models.
     */
    private static final Map<Path, ReentrantLock> JVM_LOCKS = new ConcurrentHashMap<>();

    private final Path root;

    /** A cache in {@code root}, created when first needed. */
    public ModelCache(Path root) {
        this.root = Objects.requireNonNull(root, "root").toAbsolutePath().normalize();
    }

    public Path root() {
        return root;
    }

    /**
     * Where a resolved snapshot is on this node: {@code folder} (the copy, named as the source folder is), the
     * qualified {@code uri} it came from, whether this call downloaded it and, if so, how many files and bytes it
     * copied in how many seconds.
     */
    public record Resolved(String uri, Path folder, boolean downloaded, int files, long bytes, double seconds) {
        /** One line for the log: where from, where to, and downloaded or found. */
        public String describe() {
            return uri + " -> " + folder
                    + (downloaded
                            ? String.format(
                                    Locale.ROOT, " (downloaded %d files, %d bytes, in %.1f s)", files, bytes, seconds)
                            : " (found in the cache, downloaded nothing)");
        }
    }

    /**
     * A file of the source listing: its path under the snapshot folder ('/'-separated), size and modification time
     * (what the entry is keyed by), and where it is in its file system.
     */
    record SourceFile(String path, long size, long modified, org.apache.hadoop.fs.Path location) {}

    /**
     * The local copy of the snapshot folder at {@code uri}, downloaded into this cache first if it is not here yet,
     * through a file system made from {@code hadoop} (the job's Hadoop configuration: S3A endpoint, credentials, ...).
     *
     * @throws IllegalArgumentException when {@code uri} is malformed or its scheme has no file system in this build
     * @throws UncheckedIOException when the snapshot cannot be listed or copied (unreachable store, missing bucket or
     *     folder, a file and not a folder, an empty folder, a copy that does not check out, a full or unwritable cache)
     */
    public Resolved resolve(String uri, Configuration hadoop) {
        URI parsed = parse(uri);
        Configuration conf = new Configuration(hadoop);
        // HDFS then reports a CRC of each whole file, independent of block size, that the copy can be checked against
        conf.set("dfs.checksum.combine.mode", "COMPOSITE_CRC");
        try (FileSystem fs = open(uri, parsed, conf)) {
            org.apache.hadoop.fs.Path source = qualified(fs, uri, parsed);
            String qualified = source.toString();
            List<SourceFile> listing = list(fs, uri, source);
            String key = key(qualified, listing);
            String name = entryName(source.getName());
            Path entry = root.resolve(name + "-" + key.substring(0, 16));
            Path folder = entry.resolve(name);
            if (problem(entry, key, listing) == null) {
                return new Resolved(qualified, folder, false, 0, 0, 0);
            }
            createRoot();
            return underLock(root.resolve(entry.getFileName() + ".lock"), () -> {
                String problem = problem(entry, key, listing);
                if (problem == null) { // another JVM or thread downloaded it while this one waited
                    return new Resolved(qualified, folder, false, 0, 0, 0);
                }
                if (Files.exists(entry)) {
                    LOG.warn(
                            "model cache: {} is not a good copy of {} ({}): downloading it again", entry, uri, problem);
                }
                try {
                    return download(fs, uri, qualified, key, listing, entry, name);
                } catch (IOException e) {
                    throw new UncheckedIOException(e.getMessage(), e);
                }
            });
        } catch (IOException e) { // closing the file system
            throw new UncheckedIOException(uri + ": " + e.getMessage(), e);
        }
    }

    /**
     * The cache folder this JVM uses: the system property {@value #PROPERTY}, else {@value #SPARK_CONF} in
     * {@code spark} (may be null), else the environment variable {@value #ENV}, else {@code
     * $XDG_CACHE_HOME/fluxbatch/models}, else {@code ~/.cache/fluxbatch/models}.
     */
    public static Path configuredRoot(SparkConf spark) {
        return configuredRoot(
                System.getProperty(PROPERTY),
                spark == null ? null : spark.get(SPARK_CONF, null),
                System.getenv(ENV),
                System.getenv("XDG_CACHE_HOME"),
                System.getProperty("user.home"));
    }

    static Path configuredRoot(String property, String sparkConf, String env, String xdgCacheHome, String home) {
        for (String set : new String[] {property, sparkConf, env}) {
            if (set != null && !set.isBlank()) {
                return Path.of(set.strip()).toAbsolutePath();
            }
        }
        Path base = xdgCacheHome != null && !xdgCacheHome.isBlank() ? Path.of(xdgCacheHome) : Path.of(home, ".cache");
        return base.resolve("fluxbatch").resolve("models").toAbsolutePath();
    }

    private static URI parse(String uri) {
        URI parsed;
        try {
            parsed = new URI(uri);
        } catch (URISyntaxException e) {
            throw new IllegalArgumentException(uri + " is not a valid URI (" + e.getMessage()
                    + "): expected a local folder, or a URI such as s3a://bucket/folder, hdfs://namenode/folder or"
                    + " file:///folder");
        }
        if (parsed.getScheme() == null || parsed.getPath() == null) {
            throw new IllegalArgumentException(uri + " is not a URI with a scheme and a path: expected a local folder,"
                    + " or a URI such as s3a://bucket/folder, hdfs://namenode/folder or file:///folder");
        }
        return parsed;
    }

    private static FileSystem open(String uri, URI parsed, Configuration conf) {
        try {
            return FileSystem.newInstance(parsed, conf);
        } catch (UnsupportedFileSystemException e) {
            throw new IllegalArgumentException(uri + ": this build has no file system for the scheme '"
                    + parsed.getScheme() + "' (" + e.getMessage() + "): expected a local folder, or a URI with"
                    + " s3a://, hdfs:// or file://");
        } catch (IOException | RuntimeException e) {
            throw new UncheckedIOException(
                    "cannot reach the model at " + uri + ": " + e.getMessage(),
                    e instanceof IOException io ? io : new IOException(e));
        }
    }

    private static org.apache.hadoop.fs.Path qualified(FileSystem fs, String uri, URI parsed) {
        try {
            return fs.makeQualified(new org.apache.hadoop.fs.Path(parsed));
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException(uri + " is not a path of its file system: " + e.getMessage());
        }
    }

    /** Every file under {@code source}, sorted by path; a clear error when it cannot be listed or is no folder. */
    static List<SourceFile> list(FileSystem fs, String uri, org.apache.hadoop.fs.Path source) {
        String base = source.toUri().getPath().replaceAll("/+$", "") + "/";
        List<SourceFile> files = new ArrayList<>();
        FileStatus status;
        try {
            status = fs.getFileStatus(source);
        } catch (FileNotFoundException e) {
            throw new UncheckedIOException(
                    "the model " + uri + " does not exist (" + e.getMessage() + "): expected a model snapshot folder"
                            + " there",
                    e);
        } catch (IOException | RuntimeException e) {
            throw unlisted(uri, e);
        }
        if (!status.isDirectory()) {
            throw failure(uri + " is a file: expected the model snapshot folder"
                    + " (the folder with model_index.json, transformer/, vae/, ...)");
        }
        try {
            RemoteIterator<LocatedFileStatus> it = fs.listFiles(source, true);
            while (it.hasNext()) {
                LocatedFileStatus f = it.next();
                String path = f.getPath().toUri().getPath();
                if (!path.startsWith(base)) {
                    throw new IOException("the listing names " + f.getPath() + ", which is not under it");
                }
                files.add(new SourceFile(
                        relative(path.substring(base.length())), f.getLen(), f.getModificationTime(), f.getPath()));
            }
        } catch (IOException | RuntimeException e) {
            throw unlisted(uri, e);
        }
        if (files.isEmpty()) {
            throw failure(uri
                    + " is an empty folder: expected a model snapshot folder (model_index.json, transformer/, ...)");
        }
        files.sort(Comparator.comparing(SourceFile::path));
        return files;
    }

    /** An unchecked I/O failure whose message is {@code message} (not its cause's class and message). */
    private static UncheckedIOException failure(String message) {
        return new UncheckedIOException(message, new IOException(message));
    }

    private static UncheckedIOException unlisted(String uri, Exception e) {
        return new UncheckedIOException(
                "cannot list the model " + uri + " (is the store reachable, are the bucket and folder there, and do"
                        + " the credentials allow reading them?): " + e.getMessage(),
                e instanceof IOException io ? io : new IOException(e));
    }

    /** {@code path} checked to be plain relative segments, so that its copy lands inside the entry. */
    private static String relative(String path) throws IOException {
        for (String segment : path.split("/", -1)) {
            if (segment.isEmpty() || segment.equals(".") || segment.equals("..")) {
                throw new IOException("the listing names a file '" + path + "', expected a plain relative path");
            }
        }
        return path;
    }

    /** The SHA-256 of the URI and the listing: a changed file (size or time), an added or removed one, changes it. */
    static String key(String qualifiedUri, List<SourceFile> listing) {
        StringBuilder sb =
                new StringBuilder("fluxbatch model cache ").append(FORMAT).append('\n');
        sb.append(qualifiedUri).append('\n');
        for (SourceFile f : listing) {
            sb.append(f.path())
                    .append('\t')
                    .append(f.size())
                    .append('\t')
                    .append(f.modified())
                    .append('\n');
        }
        return Sha256.hex(sb.toString().getBytes(StandardCharsets.UTF_8));
    }

    /** The source folder's name as a file name here: letters, digits, '.', '_', '-'; "model" when it has none. */
    static String entryName(String name) {
        String safe = name.replaceAll("[^A-Za-z0-9._-]", "_").replaceAll("^\\.+", "");
        safe = safe.length() > 64 ? safe.substring(0, 64) : safe;
        return safe.isEmpty() ? "model" : safe;
    }

    /** Why {@code entry} is not a good copy of {@code listing} (absent, another key, a file changed), or null. */
    static String problem(Path entry, String key, List<SourceFile> listing) {
        Path manifest = entry.resolve(MANIFEST);
        if (!Files.isRegularFile(manifest)) {
            return Files.exists(entry) ? "it has no " + MANIFEST : "it is not there";
        }
        JsonNode m;
        try {
            m = JSON.readTree(manifest.toFile());
        } catch (IOException e) {
            return MANIFEST + " is unreadable: " + e.getMessage();
        }
        if (m == null
                || m.path("format").asInt() != FORMAT
                || !key.equals(m.path("key").asText())) {
            return MANIFEST + " is of another format or source listing";
        }
        JsonNode files = m.path("files");
        if (files.size() != listing.size()) {
            return MANIFEST + " lists " + files.size() + " files, the source " + listing.size();
        }
        Path folder = entry.resolve(m.path("folder").asText());
        for (int i = 0; i < listing.size(); i++) {
            JsonNode f = files.get(i);
            SourceFile s = listing.get(i);
            if (!s.path().equals(f.path("path").asText())
                    || s.size() != f.path("size").asLong()) {
                return MANIFEST + " does not list " + s.path() + " as the source has it";
            }
            Path local = folder.resolve(s.path());
            try {
                if (Files.size(local) != s.size()) {
                    return local + " has " + Files.size(local) + " bytes, expected " + s.size();
                }
                if (Files.getLastModifiedTime(local).toMillis()
                        != f.path("local_modified").asLong()) {
                    return local + " was modified after it was copied";
                }
            } catch (IOException e) {
                return local + " is unreadable: " + e.getMessage();
            }
        }
        return null;
    }

    private void createRoot() {
        try {
            Files.createDirectories(root);
        } catch (IOException e) {
            throw new UncheckedIOException(
                    "cannot create the model cache folder " + root + " (" + e + "): set -D" + PROPERTY + ", "
                            + SPARK_CONF + " or " + ENV + " to a writable local folder",
                    e);
        }
    }

    /** {@code body} while holding this JVM's lock and the OS lock of {@code lockFile}; says when it has to wait. */
    private static <T> T underLock(Path lockFile, Supplier<T> body) {
        ReentrantLock jvm = JVM_LOCKS.computeIfAbsent(lockFile, k -> new ReentrantLock());
        jvm.lock();
        try (FileChannel channel = FileChannel.open(lockFile, StandardOpenOption.CREATE, StandardOpenOption.WRITE)) {
            FileLock lock;
            try {
                lock = channel.tryLock();
                if (lock == null) {
                    LOG.info("model cache: another process on this node is downloading; waiting for {}", lockFile);
                    lock = channel.lock();
                }
            } catch (IOException e) {
                throw new UncheckedIOException(
                        "model cache: cannot lock " + lockFile + " (is the cache folder on a local, writable disk?): "
                                + e,
                        e);
            }
            try {
                return body.get();
            } finally {
                lock.release();
            }
        } catch (IOException e) { // opening or closing the lock file
            throw new UncheckedIOException(
                    "model cache: cannot open " + lockFile + " (is the cache folder on a local, writable disk?): " + e,
                    e);
        } finally {
            jvm.unlock();
        }
    }

    private Resolved download(
            FileSystem fs, String uri, String qualified, String key, List<SourceFile> listing, Path entry, String name)
            throws IOException {
        long start = System.nanoTime();
        removeLeftovers(entry);
        long total = listing.stream().mapToLong(SourceFile::size).sum();
        long free = Files.getFileStore(root).getUsableSpace();
        if (free < total) {
            throw failure(String.format(
                    Locale.ROOT,
                    "the model cache %s has %d bytes free, %s needs %d: free some space there, or set -D%s, %s or %s"
                            + " to a local folder with room",
                    root,
                    free,
                    uri,
                    total,
                    PROPERTY,
                    SPARK_CONF,
                    ENV));
        }
        LOG.info("model cache: downloading {} ({} files, {} bytes) into {}", uri, listing.size(), total, entry);
        Path tmp = root.resolve(entry.getFileName() + ".tmp-" + UUID.randomUUID());
        try {
            Path folder = Files.createDirectories(tmp.resolve(name));
            ArrayNode files = JSON.createArrayNode();
            for (SourceFile f : listing) {
                files.add(copy(fs, uri, f, folder));
            }
            ObjectNode manifest = JSON.createObjectNode();
            manifest.put("format", FORMAT);
            manifest.put("uri", qualified);
            manifest.put("key", key);
            manifest.put("folder", name);
            manifest.put("copied", Instant.now().toString());
            manifest.put("bytes", total);
            manifest.set("files", files);
            writeSynced(
                    tmp.resolve(MANIFEST), JSON.writerWithDefaultPrettyPrinter().writeValueAsBytes(manifest));
            Files.move(tmp, entry, StandardCopyOption.ATOMIC_MOVE);
        } catch (FileAlreadyExistsException e) {
            throw new IOException("model cache: " + entry + " appeared while " + uri + " was being downloaded", e);
        } finally {
            deleteTree(tmp);
        }
        return new Resolved(
                qualified, entry.resolve(name), true, listing.size(), total, (System.nanoTime() - start) / 1e9);
    }

    /** Temporary folders of downloads that died, and a bad entry, of this entry's name; only under its lock. */
    private void removeLeftovers(Path entry) throws IOException {
        String prefix = entry.getFileName().toString();
        if (Files.exists(entry)) {
            Path aside = root.resolve(prefix + ".tmp-stale-" + UUID.randomUUID());
            Files.move(entry, aside, StandardCopyOption.ATOMIC_MOVE);
        }
        try (DirectoryStream<Path> s = Files.newDirectoryStream(root, prefix + ".tmp-*")) {
            for (Path p : s) {
                deleteTree(p);
            }
        }
    }

    /** One file copied and checked; its manifest line. */
    private static ObjectNode copy(FileSystem fs, String uri, SourceFile f, Path folder) throws IOException {
        org.apache.hadoop.fs.Path from = f.location();
        Path to = folder.resolve(f.path()).normalize();
        if (!to.startsWith(folder)) {
            throw new IOException(uri + " lists " + f.path() + ", which would land outside the cache entry");
        }
        Files.createDirectories(to.getParent());
        String where = uri.replaceAll("/+$", "") + "/" + f.path();
        if (f.size() >= LOGGED_FILE_BYTES) {
            LOG.info("model cache: copying {} ({} bytes)", where, f.size());
        }
        FileChecksum expected = sourceChecksum(fs, from, where);
        Checksum crc = expected == null
                ? null
                : expected.getAlgorithmName().equals("COMPOSITE-CRC32C") ? new CRC32C() : new CRC32();
        MessageDigest sha = Sha256.digest();
        long copied = 0;
        try (InputStream in = fs.open(from);
                FileChannel channel = FileChannel.open(to, StandardOpenOption.CREATE_NEW, StandardOpenOption.WRITE)) {
            OutputStream out = Channels.newOutputStream(channel);
            byte[] buf = new byte[1 << 20];
            for (int n; (n = in.read(buf)) >= 0; ) {
                out.write(buf, 0, n);
                sha.update(buf, 0, n);
                if (crc != null) {
                    crc.update(buf, 0, n);
                }
                copied += n;
            }
            channel.force(true);
        } catch (IOException e) {
            throw new IOException("cannot copy " + where + " to " + to + ": " + e.getMessage(), e);
        }
        if (copied != f.size()) {
            throw new IOException("the copy of " + where + " has " + copied + " bytes, the source listing says "
                    + f.size() + ": the download was cut short (or the file changed while it was copied)");
        }
        String written = Sha256.hex(sha);
        String readBack = Sha256.ofFile(to);
        if (!readBack.equals(written)) {
            throw new IOException("the copy of " + where + " at " + to + " reads back with SHA-256 " + readBack
                    + ", but " + written + " was written: the local disk did not keep it");
        }
        if (crc != null) {
            byte[] got = crcBytes(crc.getValue());
            if (!Arrays.equals(got, expected.getBytes())) {
                throw new IOException("the copy of " + where + " has " + expected.getAlgorithmName() + " "
                        + HexFormat.of().formatHex(got) + ", the source reports "
                        + HexFormat.of().formatHex(expected.getBytes())
                        + ": the bytes were damaged on the way");
            }
        }
        ObjectNode line = JSON.createObjectNode();
        line.put("path", f.path());
        line.put("size", f.size());
        line.put("source_modified", f.modified());
        line.put("sha256", written);
        line.put("source_checksum", expected == null ? "none offered" : expected.getAlgorithmName() + " verified");
        line.put("local_modified", Files.getLastModifiedTime(to).toMillis());
        return line;
    }

    /**
     * The source file system's checksum of {@code from} when it is one a copy can be checked against here: a composite
     * CRC (CRC32C or CRC32 of the whole file, as HDFS computes with {@code COMPOSITE_CRC}); null otherwise. HDFS's
     * default MD5-of-MD5-of-CRC depends on its block and chunk sizes, and an S3 ETag is the MD5 of the bytes only for
     * unencrypted single-part uploads (see S3aDefaults), so neither is checked: the size and read-back SHA-256 still are.
     */
    private static FileChecksum sourceChecksum(FileSystem fs, org.apache.hadoop.fs.Path from, String where)
            throws IOException {
        FileChecksum sum;
        try {
            sum = fs.getFileChecksum(from);
        } catch (UnsupportedOperationException e) {
            return null;
        } catch (IOException e) {
            throw new IOException("cannot read the checksum of " + where + ": " + e.getMessage(), e);
        }
        if (sum == null || sum.getBytes() == null || sum.getBytes().length != 4) {
            return null;
        }
        String algorithm = sum.getAlgorithmName();
        return algorithm.equals("COMPOSITE-CRC32C") || algorithm.equals("COMPOSITE-CRC32") ? sum : null;
    }

    private static byte[] crcBytes(long value) {
        return new byte[] {(byte) (value >>> 24), (byte) (value >>> 16), (byte) (value >>> 8), (byte) value};
    }

    private static void writeSynced(Path file, byte[] bytes) throws IOException {
        try (FileChannel channel = FileChannel.open(file, StandardOpenOption.CREATE_NEW, StandardOpenOption.WRITE)) {
            Channels.newOutputStream(channel).write(bytes);
            channel.force(true);
        }
    }

    private static void deleteTree(Path dir) {
        if (!Files.exists(dir)) {
            return;
        }
        try (Stream<Path> s = Files.walk(dir)) {
            for (Path p : s.sorted(Comparator.reverseOrder()).toList()) {
                try {
                    Files.deleteIfExists(p);
                } catch (NoSuchFileException gone) {
                    // removed meanwhile
                }
            }
        } catch (IOException | UncheckedIOException e) {
            LOG.warn("model cache: cannot remove {}: {}", dir, e.toString());
        }
    }

    /** The SHA-256 of each file as the manifest of {@code entry} lists it (path to hex), for tests and tools. */
    static Map<String, String> manifestSha256(Path entry) throws IOException {
        Map<String, String> out = new HashMap<>();
        for (JsonNode f : JSON.readTree(entry.resolve(MANIFEST).toFile()).path("files")) {
            out.put(f.path("path").asText(), f.path("sha256").asText());
        }
        return out;
    }
}
