package ai.fluxbatch.jobs.generate;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.URI;
import java.util.UUID;
import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.fs.FSDataOutputStream;
import org.apache.hadoop.fs.FileSystem;
import org.apache.hadoop.fs.Path;

/**
 * Images under {@code OUTPUT/images/<id>.png} through the Hadoop FileSystem API. Each is written under a temporary
 * name in {@code OUTPUT/images/_tmp/} and renamed into place, so a reader never sees half a file and a retried or
 * speculative task that loses the race just drops its copy.
 */
public final class ImageStore {
    private final FileSystem fs;
    private final Path images;
    private final Path tmp;

    public ImageStore(String output, Configuration conf) {
        try {
            Path root = new Path(URI.create(output.endsWith("/") ? output : output + "/"));
            this.fs = root.getFileSystem(conf);
            fs.setWriteChecksum(false); // no .crc side files next to the images on file://
            this.images = new Path(root, "images");
            this.tmp = new Path(images, "_tmp");
        } catch (IOException e) {
            throw new UncheckedIOException("cannot open output " + output + ": " + e.getMessage(), e);
        }
    }

    public String pathOf(String id) {
        return new Path(images, id + ".png").toString();
    }

    public boolean exists(String id) throws IOException {
        return fs.exists(new Path(images, id + ".png"));
    }

    /** Removes the temporary folder and whatever failed attempts left in it; call when no task is running. */
    public void removeTemporaries() throws IOException {
        fs.delete(tmp, true);
    }

    /** Writes the PNG for {@code id}; returns its final path. */
    public String write(String id, byte[] png, boolean overwrite) throws IOException {
        Path target = new Path(images, id + ".png");
        Path part = new Path(tmp, id + "." + UUID.randomUUID() + ".png");
        try (FSDataOutputStream out = fs.create(part, false)) {
            out.write(png);
        }
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
}
