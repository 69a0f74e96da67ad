package ai.fluxbatch.jobs.generate;

import java.io.FilterOutputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.net.URI;
import java.util.concurrent.atomic.AtomicInteger;
import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.fs.FSError;
import org.apache.hadoop.fs.Path;
import org.apache.hadoop.fs.RawLocalFileSystem;
import org.apache.hadoop.fs.permission.FsPermission;

/**
 * The local file system under the scheme {@value #SCHEME}, with two faults a test can switch on: a disk that fills up
 * after {@link #pngLimit} PNG files (later .png files are created empty and writing to them fails as the local file
 * system fails on ENOSPC: an {@link FSError} around "No space left on device"), and HDFS's rename, which does not
 * replace an existing file ({@link #renameKeepsExisting}). With {@link #fillsUp}, every file after the limit fails.
 */
public final class FaultyFileSystem extends RawLocalFileSystem {
    public static final String SCHEME = "faulty";
    public static volatile int pngLimit = Integer.MAX_VALUE;
    public static volatile boolean renameKeepsExisting;
    /** Whether, once the PNG limit is reached, every later file fails too (the metadata table included). */
    public static volatile boolean fillsUp;

    private static volatile boolean full;
    private static final AtomicInteger PNGS = new AtomicInteger();

    public static void reset() {
        pngLimit = Integer.MAX_VALUE;
        renameKeepsExisting = false;
        fillsUp = false;
        full = false;
        PNGS.set(0);
    }

    /** The Hadoop setting that maps the scheme to this class. */
    public static final String IMPL_KEY = "fs." + SCHEME + ".impl";

    public static Configuration conf() {
        Configuration conf = new Configuration();
        conf.set(IMPL_KEY, FaultyFileSystem.class.getName());
        conf.setBoolean("fs." + SCHEME + ".impl.disable.cache", true);
        return conf;
    }

    public static String uri(java.nio.file.Path p) {
        return SCHEME + "://" + p.toAbsolutePath();
    }

    @Override
    public URI getUri() {
        return URI.create(SCHEME + ":///");
    }

    @Override
    public String getScheme() {
        return SCHEME;
    }

    @Override
    protected OutputStream createOutputStreamWithMode(Path f, boolean append, FsPermission permission)
            throws IOException {
        OutputStream out = super.createOutputStreamWithMode(f, append, permission);
        boolean png = f.getName().endsWith(".png");
        if (png && PNGS.incrementAndGet() > pngLimit) {
            full = fillsUp;
        } else if (!(full && !f.getName().startsWith("_fluxbatch"))) {
            return out;
        }
        return new FilterOutputStream(out) {
            @Override
            public void write(int b) {
                throw noSpace();
            }

            @Override
            public void write(byte[] b, int off, int len) {
                throw noSpace();
            }
        };
    }

    @Override
    public boolean rename(Path src, Path dst) throws IOException {
        if (renameKeepsExisting && exists(dst) && getFileStatus(dst).isFile()) {
            return false;
        }
        return super.rename(src, dst);
    }

    private static FSError noSpace() {
        try { // as RawLocalFileSystem reports it; FSError's constructor is package-private
            var c = FSError.class.getDeclaredConstructor(Throwable.class);
            c.setAccessible(true);
            return c.newInstance(new IOException("No space left on device"));
        } catch (ReflectiveOperationException e) {
            throw new AssertionError(e);
        }
    }
}
