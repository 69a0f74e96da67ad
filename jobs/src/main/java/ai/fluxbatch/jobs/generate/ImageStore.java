package ai.fluxbatch.jobs.generate;

import ai.fluxbatch.jobs.output.Locations;
import ai.fluxbatch.model.image.PngDecoder;
import java.io.FileNotFoundException;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.URI;
import java.util.Objects;
import java.util.UUID;
import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.fs.FSDataInputStream;
import org.apache.hadoop.fs.FSDataOutputStream;
import org.apache.hadoop.fs.FSError;
import org.apache.hadoop.fs.FileAlreadyExistsException;
import org.apache.hadoop.fs.FileStatus;
import org.apache.hadoop.fs.FileSystem;
import org.apache.hadoop.fs.Path;

/**
 * Files under the output through the Hadoop FileSystem API, never half written. On file systems with atomic rename
 * (local, HDFS) a file is written under {@code _tmp/} and renamed into place; on object stores (s3a://), where rename
 * is a copy, it is created directly with overwrite off: an object only becomes visible once complete, and S3A refuses
 * a create over an existing key (conditionally, with If-None-Match, where the store supports it). Every path is
 * checked to lie under the output (plain relative segments, no {@code ..}, no scheme) before it is read or written; a
 * failed write leaves no temporary behind and is reported as an {@link IOException} naming the file and the cause
 * (the local file system's {@link FSError}, e.g. a full disk, included).
 */
public final class ImageStore {
    /** Larger files are not images this tool wrote: never read whole to check them. */
    private static final long MAX_PNG_BYTES = 1L << 30;

    private final FileSystem fs;
    private final Path root;
    private final Path tmp;
    private final boolean atomicRename;

    public ImageStore(String output, Configuration conf) {
        try {
            this.root = Locations.path(output.endsWith("/") ? output : output + "/");
            this.fs = root.getFileSystem(conf);
            fs.setWriteChecksum(false); // no .crc side files next to the images on file://
            this.tmp = new Path(root, "_tmp");
            String scheme = fs.getUri().getScheme();
            this.atomicRename = !("s3a".equals(scheme) || "s3".equals(scheme) || "gs".equals(scheme));
        } catch (IOException e) {
            throw new UncheckedIOException("cannot open output " + output + ": " + e.getMessage(), e);
        }
    }

    public String pathOf(String relative) throws IOException {
        return resolve(relative).toString();
    }

    /**
     * {@code relative} (segments separated by {@code /}) under the output, refused unless every segment is a plain
     * name and the result lies under the output.
     */
    Path resolve(String relative) throws IOException {
        for (String part : relative.split("/", -1)) {
            if (part.isEmpty()
                    || part.equals(".")
                    || part.equals("..")
                    || part.indexOf(':') >= 0
                    || part.indexOf('\\') >= 0) {
                throw new IOException("refusing the path '" + relative + "': not a plain relative path under the"
                        + " output " + root);
            }
        }
        Path p = new Path(root, new Path(null, null, relative)); // never parsed as a URI: a ':' is no scheme
        URI r = root.toUri(), u = p.toUri();
        String prefix = r.getPath().endsWith("/") ? r.getPath() : r.getPath() + "/";
        if (!Objects.equals(r.getScheme(), u.getScheme())
                || !Objects.equals(r.getAuthority(), u.getAuthority())
                || !u.getPath().startsWith(prefix)
                || u.getPath().length() == prefix.length()) {
            throw new IOException("refusing the path '" + relative + "': " + p + " is not under the output " + root);
        }
        return p;
    }

    /**
     * What is at a path: nothing, a complete image (a PNG, or a JPEG for a {@code .jpg} path), or something else
     * (cut short, zeros, another format).
     */
    public enum Existing {
        MISSING,
        COMPLETE_PNG,
        INVALID
    }

    /**
     * Whether a complete PNG is at {@code relative}: a PNG signature, then chunks whose lengths fit and whose CRCs
     * match, up to IEND, and image data that inflates (read back with {@link PngDecoder}). Anything else is
     * {@link Existing#INVALID}: made again, and replaced.
     */
    public Existing existing(String relative) throws IOException {
        Path p = resolve(relative);
        try {
            FileStatus st;
            try {
                st = fs.getFileStatus(p);
            } catch (FileNotFoundException e) {
                return Existing.MISSING;
            }
            if (!st.isFile() || st.getLen() < 8 || st.getLen() > MAX_PNG_BYTES) {
                return Existing.INVALID;
            }
            byte[] png = new byte[(int) st.getLen()];
            try (FSDataInputStream in = fs.open(p)) {
                in.readFully(0, png);
            }
            try {
                if (relative.endsWith("." + ImageFormat.JPEG.extension())) {
                    ImageEncoding.readJpeg(png);
                } else {
                    PngDecoder.decode(png);
                }
                return Existing.COMPLETE_PNG;
            } catch (RuntimeException | IOException e) {
                return Existing.INVALID;
            }
        } catch (IOException | FSError e) {
            throw new IOException("cannot read " + p + ": " + cause(e), e);
        }
    }

    /** Writes {@code bytes} at {@code relative}; returns the final path. On failure nothing is left under _tmp/. */
    public String write(String relative, byte[] bytes, boolean overwrite) throws IOException {
        Path target = resolve(relative);
        if (!atomicRename) {
            try (FSDataOutputStream out = fs.create(target, overwrite)) {
                out.write(bytes);
            } catch (FileAlreadyExistsException e) {
                // another attempt of this task finished first: its file is the same image
            } catch (IOException | FSError e) {
                throw new IOException("cannot write " + target + ": " + cause(e), e);
            }
            return target.toString();
        }
        Path part = new Path(tmp, UUID.randomUUID() + "-" + target.getName());
        try {
            try (FSDataOutputStream out = fs.create(part, false)) {
                out.write(bytes);
            }
            fs.mkdirs(target.getParent());
            if (overwrite) {
                fs.delete(target, false);
            }
            if (!fs.rename(part, target) && !fs.exists(target)) {
                throw new IOException("could not rename " + part + " to " + target);
            }
            return target.toString();
        } catch (IOException | FSError e) {
            throw new IOException("cannot write " + target + ": " + cause(e), e);
        } finally {
            deleteQuietly(part);
        }
    }

    private void deleteQuietly(Path p) {
        try {
            fs.delete(p, false);
        } catch (IOException | FSError e) {
            // the output is failing; removeTemporaries tries again at the end of the job
        }
    }

    /** The innermost message of {@code e}'s causes: {@code No space left on device}, not the wrappers around it. */
    public static String cause(Throwable e) {
        String message = e.toString();
        for (Throwable t = e; t != null; t = t.getCause()) {
            if (t.getMessage() != null && !(t instanceof FSError)) {
                message = t.getMessage();
            }
        }
        return message;
    }

    /** Removes the temporary folder and whatever failed attempts left in it; call when no task is running. */
    public void removeTemporaries() throws IOException {
        try {
            fs.delete(tmp, true);
        } catch (FSError e) {
            throw new IOException(cause(e), e);
        }
    }
}
