package ai.fluxbatch.jobs.generate;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.URI;
import java.util.Arrays;
import java.util.UUID;
import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.fs.FSDataInputStream;
import org.apache.hadoop.fs.FSDataOutputStream;
import org.apache.hadoop.fs.FileAlreadyExistsException;
import org.apache.hadoop.fs.FileStatus;
import org.apache.hadoop.fs.FileSystem;
import org.apache.hadoop.fs.Path;

/**
 * Files under the output through the Hadoop FileSystem API, never half written. On file systems with atomic rename
 * (local, HDFS) a file is written under {@code _tmp/} and renamed into place; on object stores (s3a://), where rename
 * is a copy, it is created directly with overwrite off: an object only becomes visible once complete, and S3A refuses
 * a create over an existing key (conditionally, with If-None-Match, where the store supports it).
 */
public final class ImageStore {
    private static final byte[] IEND = {0, 0, 0, 0, 'I', 'E', 'N', 'D', (byte) 0xAE, 0x42, 0x60, (byte) 0x82};

    private final FileSystem fs;
    private final Path root;
    private final Path tmp;
    private final boolean atomicRename;

    public ImageStore(String output, Configuration conf) {
        try {
            this.root = new Path(URI.create(output.endsWith("/") ? output : output + "/"));
            this.fs = root.getFileSystem(conf);
            fs.setWriteChecksum(false); // no .crc side files next to the images on file://
            this.tmp = new Path(root, "_tmp");
            String scheme = fs.getUri().getScheme();
            this.atomicRename = !("s3a".equals(scheme) || "s3".equals(scheme) || "gs".equals(scheme));
        } catch (IOException e) {
            throw new UncheckedIOException("cannot open output " + output + ": " + e.getMessage(), e);
        }
    }

    public String pathOf(String relative) {
        return new Path(root, relative).toString();
    }

    /** Whether a complete PNG is at {@code relative}: present and ending in an intact IEND chunk. */
    public boolean hasCompletePng(String relative) throws IOException {
        Path p = new Path(root, relative);
        FileStatus st;
        try {
            st = fs.getFileStatus(p);
        } catch (java.io.FileNotFoundException e) {
            return false;
        }
        if (st.getLen() < 8 + IEND.length) {
            return false;
        }
        byte[] tail = new byte[IEND.length];
        try (FSDataInputStream in = fs.open(p)) {
            in.readFully(st.getLen() - IEND.length, tail);
        }
        return Arrays.equals(tail, IEND);
    }

    /** Writes {@code bytes} at {@code relative}; returns the final path. */
    public String write(String relative, byte[] bytes, boolean overwrite) throws IOException {
        Path target = new Path(root, relative);
        if (!atomicRename) {
            try (FSDataOutputStream out = fs.create(target, overwrite)) {
                out.write(bytes);
            } catch (FileAlreadyExistsException e) {
                // another attempt of this task finished first: its file is the same image
            }
            return target.toString();
        }
        Path part = new Path(tmp, UUID.randomUUID() + "-" + target.getName());
        try (FSDataOutputStream out = fs.create(part, false)) {
            out.write(bytes);
        }
        fs.mkdirs(target.getParent());
        if (overwrite) {
            fs.delete(target, false);
        }
        if (!fs.rename(part, target)) {
            fs.delete(part, false);
            if (!fs.exists(target)) {
                throw new IOException("could not rename " + part + " to " + target);
            }
        }
        return target.toString();
    }

    /** Removes the temporary folder and whatever failed attempts left in it; call when no task is running. */
    public void removeTemporaries() throws IOException {
        fs.delete(tmp, true);
    }
}
