package ai.fluxbatch.jobs.model;

import java.io.EOFException;
import java.io.IOException;
import java.net.URI;
import java.nio.file.Files;
import java.util.Arrays;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.zip.CRC32C;
import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.fs.CompositeCrcFileChecksum;
import org.apache.hadoop.fs.FSDataInputStream;
import org.apache.hadoop.fs.FSInputStream;
import org.apache.hadoop.fs.FileChecksum;
import org.apache.hadoop.fs.FileStatus;
import org.apache.hadoop.fs.Path;
import org.apache.hadoop.fs.RawLocalFileSystem;
import org.apache.hadoop.util.DataChecksum;

/**
 * The local file system under the scheme {@value #SCHEME}, as a model source with what a test can switch on: a slow
 * open ({@link #openDelayMillis}, so that concurrent downloads overlap), a file whose stream ends half way ({@link
 * #truncated}) or has one byte flipped ({@link #corrupted}), and HDFS-style composite CRC32C checksums of the true
 * bytes ({@link #crc}). Counts the files opened. Settings are static (Hadoop makes the instance): tests reset them.
 */
public final class SourceFileSystem extends RawLocalFileSystem {
    public static final String SCHEME = "modelsrc";

    static final AtomicInteger OPENS = new AtomicInteger();
    static volatile long openDelayMillis;
    static volatile String truncated;
    static volatile String corrupted;
    static volatile boolean crc;

    static void reset() {
        OPENS.set(0);
        openDelayMillis = 0;
        truncated = null;
        corrupted = null;
        crc = false;
    }

    /** A configuration that maps the scheme to this class. */
    static Configuration conf() {
        Configuration conf = new Configuration();
        conf.set("fs." + SCHEME + ".impl", SourceFileSystem.class.getName());
        conf.setBoolean("fs." + SCHEME + ".impl.disable.cache", true);
        return conf;
    }

    static String uri(java.nio.file.Path p) {
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
    public FileStatus getFileStatus(Path f) throws IOException {
        return plain(super.getFileStatus(f));
    }

    @Override
    public FileStatus[] listStatus(Path f) throws IOException {
        FileStatus[] all = super.listStatus(f);
        for (int i = 0; i < all.length; i++) {
            all[i] = plain(all[i]);
        }
        return all;
    }

    /**
     * The status without the local file system's lazily loaded permissions, which it loads through a java.io.File of
     * the path's URI: a URI of this scheme is no file: URI.
     */
    private static FileStatus plain(FileStatus s) {
        return new FileStatus(s.getLen(), s.isDirectory(), 1, s.getBlockSize(), s.getModificationTime(), s.getPath());
    }

    @Override
    public FSDataInputStream open(Path f, int bufferSize) throws IOException {
        OPENS.incrementAndGet();
        if (openDelayMillis > 0) {
            try {
                Thread.sleep(openDelayMillis);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new IOException("interrupted", e);
            }
        }
        byte[] data = Files.readAllBytes(pathToFile(f).toPath());
        if (f.getName().equals(truncated)) {
            data = Arrays.copyOf(data, data.length / 2);
        }
        if (f.getName().equals(corrupted) && data.length > 0) {
            data[data.length / 2] ^= 1;
        }
        return new FSDataInputStream(new Bytes(data));
    }

    @Override
    public FileChecksum getFileChecksum(Path f) throws IOException {
        if (!crc) {
            return null;
        }
        CRC32C c = new CRC32C();
        c.update(Files.readAllBytes(pathToFile(f).toPath()));
        return new CompositeCrcFileChecksum((int) c.getValue(), DataChecksum.Type.CRC32C, 512);
    }

    /** A seekable stream over bytes in memory. */
    private static final class Bytes extends FSInputStream {
        private final byte[] data;
        private int pos;

        Bytes(byte[] data) {
            this.data = data;
        }

        @Override
        public void seek(long p) throws IOException {
            if (p < 0 || p > data.length) {
                throw new EOFException("seek to " + p + " of " + data.length);
            }
            pos = (int) p;
        }

        @Override
        public long getPos() {
            return pos;
        }

        @Override
        public boolean seekToNewSource(long targetPos) {
            return false;
        }

        @Override
        public int read() {
            return pos < data.length ? data[pos++] & 0xff : -1;
        }

        @Override
        public int read(byte[] b, int off, int len) {
            if (len == 0) {
                return 0;
            }
            if (pos >= data.length) {
                return -1;
            }
            int n = Math.min(len, data.length - pos);
            System.arraycopy(data, pos, b, off, n);
            pos += n;
            return n;
        }
    }
}
