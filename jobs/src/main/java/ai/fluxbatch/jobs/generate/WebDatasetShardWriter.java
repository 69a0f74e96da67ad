package ai.fluxbatch.jobs.generate;

import java.io.Closeable;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.util.Date;
import java.util.UUID;
import org.apache.commons.compress.archivers.tar.TarArchiveEntry;
import org.apache.commons.compress.archivers.tar.TarArchiveOutputStream;
import org.apache.hadoop.fs.FSDataOutputStream;
import org.apache.hadoop.fs.FSError;
import org.apache.hadoop.fs.FileAlreadyExistsException;
import org.apache.hadoop.fs.FileSystem;
import org.apache.hadoop.fs.Path;
import org.apache.hadoop.fs.StreamCapabilities;

/**
 * One WebDataset shard: a tar (commons-compress, POSIX long names) of samples {@code <id>.<png|jpg>},
 * {@code <id>.json} and {@code <id>.txt}, written through the Hadoop FileSystem API and visible only once complete.
 * Where rename is atomic (local, HDFS) the tar is written under the temporary folder and renamed into place by
 * {@link #commit()}; on object stores (s3a://, where rename is a copy) it is created at its key with overwrite off,
 * which the store makes visible only when the stream closes, and a shard that is not committed is aborted (the upload
 * discarded), never closed. So a task that fails or is killed mid-shard leaves no partial shard.
 */
public final class WebDatasetShardWriter implements Closeable {
    private final FileSystem fs;
    private final Path target;
    private final Path part; // null on object stores
    private final boolean overwrite;
    private final FSDataOutputStream out;
    private final TarArchiveOutputStream tar;
    private final Date modified = new Date();
    private int samples;
    private boolean done;

    private WebDatasetShardWriter(FileSystem fs, Path target, Path part, boolean overwrite, FSDataOutputStream out) {
        this.fs = fs;
        this.target = target;
        this.part = part;
        this.overwrite = overwrite;
        this.out = out;
        this.tar = new TarArchiveOutputStream(out, StandardCharsets.UTF_8.name());
        tar.setLongFileMode(TarArchiveOutputStream.LONGFILE_POSIX);
        tar.setBigNumberMode(TarArchiveOutputStream.BIGNUMBER_POSIX);
    }

    /**
     * Starts the shard {@code target}; {@code tmp} is the folder for the temporary tar where rename is atomic.
     * {@code overwrite}: replace a shard already at {@code target}.
     */
    public static WebDatasetShardWriter open(FileSystem fs, Path target, Path tmp, boolean overwrite)
            throws IOException {
        try {
            if (!atomicRename(fs)) {
                return new WebDatasetShardWriter(fs, target, null, overwrite, fs.create(target, overwrite));
            }
            Path part = new Path(tmp, UUID.randomUUID() + "-" + target.getName());
            return new WebDatasetShardWriter(fs, target, part, overwrite, fs.create(part, false));
        } catch (IOException | FSError e) {
            throw new IOException("cannot write the shard " + target + ": " + ImageStore.cause(e), e);
        }
    }

    /** Whether {@code fs} renames atomically: not on object stores, where rename is a copy. */
    static boolean atomicRename(FileSystem fs) {
        String scheme = fs.getUri().getScheme();
        return !("s3a".equals(scheme) || "s3".equals(scheme) || "gs".equals(scheme));
    }

    public Path target() {
        return target;
    }

    public int samples() {
        return samples;
    }

    /** Appends one sample: the image ({@code <id>.<extension>}), its metadata row as JSON and its prompt. */
    public void add(String id, String extension, byte[] image, String json, String prompt) throws IOException {
        if (done) {
            throw new IllegalStateException("the shard " + target + " is already committed or aborted");
        }
        try {
            member(id + "." + extension, image);
            member(id + ".json", json.getBytes(StandardCharsets.UTF_8));
            member(id + ".txt", prompt.getBytes(StandardCharsets.UTF_8));
            samples++;
        } catch (IOException | FSError e) {
            throw new IOException("cannot write the shard " + target + ": " + ImageStore.cause(e), e);
        }
    }

    private void member(String name, byte[] data) throws IOException {
        TarArchiveEntry entry = new TarArchiveEntry(name);
        entry.setSize(data.length);
        entry.setModTime(modified);
        tar.putArchiveEntry(entry);
        tar.write(data);
        tar.closeArchiveEntry();
    }

    /** Finishes the tar and puts it in place. On failure the shard is aborted and nothing is left. */
    public void commit() throws IOException {
        if (done) {
            throw new IllegalStateException("the shard " + target + " is already committed or aborted");
        }
        try {
            tar.finish();
            if (part == null) {
                done = true;
                try {
                    out.close(); // the object becomes visible here, complete
                } catch (FileAlreadyExistsException e) {
                    // another attempt of this task completed the shard first: it holds the same images
                }
                return;
            }
            out.close();
            done = true;
            fs.mkdirs(target.getParent());
            if (overwrite) {
                fs.delete(target, false);
            }
            if (!fs.rename(part, target) && !fs.exists(target)) {
                throw new IOException("could not rename " + part + " to " + target);
            }
        } catch (IOException | FSError e) {
            abort();
            throw new IOException("cannot write the shard " + target + ": " + ImageStore.cause(e), e);
        } finally {
            done = true;
            deletePart();
        }
    }

    /** Discards the shard: nothing appears at the target, and the temporary tar is removed. */
    public void abort() {
        if (part == null) {
            if (!done && out.hasCapability(StreamCapabilities.ABORTABLE_STREAM)) {
                out.abort(); // S3A: the multipart upload is cancelled
            }
            // other object stores: the stream is never closed, so the object is never completed
        } else {
            try {
                out.close();
            } catch (IOException | FSError e) {
                // the temporary tar is deleted below, or by the job's removal of the temporary folder
            }
            deletePart();
        }
        done = true;
    }

    private void deletePart() {
        if (part == null) {
            return;
        }
        try {
            fs.delete(part, false);
        } catch (IOException | FSError e) {
            // the job removes the temporary folder at its end
        }
    }

    /** Aborts the shard unless it was committed. */
    @Override
    public void close() {
        if (!done) {
            abort();
        }
    }
}
