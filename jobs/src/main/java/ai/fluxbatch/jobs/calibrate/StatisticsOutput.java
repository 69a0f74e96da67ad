package ai.fluxbatch.jobs.calibrate;

import ai.fluxbatch.model.calib.CalibrationFile;
import ai.fluxbatch.model.calib.CalibrationStats;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.URI;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Comparator;
import java.util.Map;
import java.util.UUID;
import java.util.stream.Stream;
import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.fs.FileStatus;
import org.apache.hadoop.fs.FileSystem;

/**
 * The one statistics file a calibrate run writes, never half written. A plain path is written in place by
 * {@link CalibrationFile} (a temporary beside it, then an atomic move). A URI (file://, hdfs://, s3a://) is written to
 * a local temporary file first and copied through the Hadoop FileSystem API: beside the target and renamed where
 * rename is atomic, directly on object stores, where an object only appears once complete.
 */
public final class StatisticsOutput {
    private final String uri;
    private final Configuration conf;
    private final boolean overwrite;

    public StatisticsOutput(String uri, Configuration conf, boolean overwrite) {
        this.uri = uri;
        this.conf = conf;
        this.overwrite = overwrite;
    }

    private boolean isLocalPath() {
        return !uri.contains("://");
    }

    /** Fails unless the output can be written: not a folder, and absent unless {@code overwrite}. */
    public void check() {
        if (uri.endsWith("/")) {
            throw new IllegalArgumentException(
                    "--output " + uri + " names a folder, expected a file such as " + uri + "stats.safetensors");
        }
        if (isLocalPath()) {
            Path p = Path.of(uri);
            if (Files.isDirectory(p)) {
                throw new IllegalArgumentException("--output " + uri + " is a folder, expected a statistics file path"
                        + " such as " + p.resolve("stats.safetensors"));
            }
            if (Files.exists(p) && !overwrite) {
                throw new IllegalArgumentException("--output " + uri + " exists: pass --overwrite to replace it");
            }
            return;
        }
        org.apache.hadoop.fs.Path target = hadoopPath();
        try (FileSystem fs = FileSystem.newInstance(target.toUri(), conf)) {
            FileStatus st = fs.getFileStatus(target);
            if (st.isDirectory()) {
                throw new IllegalArgumentException("--output " + uri + " is a folder, expected a statistics file URI");
            }
            if (!overwrite) {
                throw new IllegalArgumentException("--output " + uri + " exists: pass --overwrite to replace it");
            }
        } catch (java.io.FileNotFoundException absent) {
            // the usual case
        } catch (IOException e) {
            throw new UncheckedIOException("cannot check the output " + uri + ": " + e.getMessage(), e);
        }
    }

    /** Writes the statistics file; returns where it is. */
    public String write(CalibrationStats stats, Map<String, String> metadata) {
        if (isLocalPath()) {
            Path p = Path.of(uri).toAbsolutePath();
            try {
                Files.createDirectories(p.getParent());
            } catch (IOException e) {
                throw new UncheckedIOException(
                        "cannot create the folder of --output " + uri + ": " + e.getMessage(), e);
            }
            CalibrationFile.write(stats, metadata, p);
            return p.toString();
        }
        Path localDir = null;
        try {
            localDir = Files.createTempDirectory("fluxbatch-calibrate-");
            Path local = localDir.resolve("stats.safetensors");
            CalibrationFile.write(stats, metadata, local);
            copy(local);
            return hadoopPath().toString();
        } catch (IOException e) {
            throw new UncheckedIOException("cannot write the statistics to " + uri + ": " + e.getMessage(), e);
        } finally {
            deleteQuietly(localDir);
        }
    }

    private void copy(Path local) throws IOException {
        org.apache.hadoop.fs.Path target = hadoopPath();
        try (FileSystem fs = FileSystem.newInstance(target.toUri(), conf)) {
            fs.setWriteChecksum(false); // no .crc side file on file://
            String scheme = fs.getUri().getScheme();
            boolean atomicRename = !("s3a".equals(scheme) || "s3".equals(scheme) || "gs".equals(scheme));
            org.apache.hadoop.fs.Path source = new org.apache.hadoop.fs.Path(local.toUri());
            if (!atomicRename) {
                fs.copyFromLocalFile(false, overwrite, source, target);
                return;
            }
            org.apache.hadoop.fs.Path part = new org.apache.hadoop.fs.Path(
                    target.getParent(), "." + target.getName() + ".tmp-" + UUID.randomUUID());
            try {
                fs.copyFromLocalFile(false, false, source, part);
                if (overwrite) {
                    fs.delete(target, false); // rename never replaces on HDFS
                }
                if (!fs.rename(part, target)) {
                    throw new IOException("could not rename " + part + " to " + target);
                }
            } finally {
                fs.delete(part, false);
            }
        }
    }

    private org.apache.hadoop.fs.Path hadoopPath() {
        return new org.apache.hadoop.fs.Path(URI.create(uri.replace(" ", "%20")));
    }

    private static void deleteQuietly(Path dir) {
        if (dir == null) {
            return;
        }
        try (Stream<Path> all = Files.walk(dir)) {
            all.sorted(Comparator.reverseOrder()).forEach(p -> p.toFile().delete());
        } catch (IOException ignored) {
            // a temporary folder left behind is harmless
        }
    }
}
