package ai.fluxbatch.jobs.output;

import java.io.FileNotFoundException;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import org.apache.hadoop.fs.FSDataOutputStream;
import org.apache.hadoop.fs.FileAlreadyExistsException;
import org.apache.hadoop.fs.FileStatus;
import org.apache.hadoop.fs.FileSystem;
import org.apache.hadoop.fs.Path;
import org.apache.hadoop.fs.RemoteIterator;

/**
 * An output folder that fluxbatch may replace and delete files in: one it made, marked by a small file
 * {@value #MARKER} in it. {@link #claim} marks a new or empty folder and accepts a marked one; a non-empty folder
 * without the marker (someone's home, a data set, another tool's output) is refused before anything in it is written,
 * replaced or deleted. Through the Hadoop FileSystem API, so local folders, hdfs:// and s3a:// prefixes alike.
 */
public final class OutputFolder {
    public static final String MARKER = "_fluxbatch";

    private OutputFolder() {}

    /** {@code root} is not a folder fluxbatch may write into; the message says why and what to do. */
    public static final class Refused extends IllegalArgumentException {
        Refused(String message) {
            super(message);
        }
    }

    /**
     * Makes {@code root} a fluxbatch output: creates it with the marker if it is missing or empty, accepts it if the
     * marker is there, and otherwise throws {@link Refused}; {@code name} names it in messages ({@code --output DIR}).
     * Turns off {@code fs}'s checksum side files.
     */
    public static void claim(FileSystem fs, Path root, String name) throws IOException {
        Path marker = new Path(root, MARKER);
        FileStatus status;
        try {
            status = fs.getFileStatus(root);
        } catch (FileNotFoundException e) {
            status = null;
        }
        if (status != null && !status.isDirectory()) {
            throw new Refused(name + " is a file, expected a folder");
        }
        boolean marked = status != null && fs.exists(marker);
        if (status != null && !marked && !isEmpty(fs, root)) {
            throw new Refused(name + " is a folder that fluxbatch did not make (it has files and no "
                    + MARKER + " marker): refusing to write, replace or delete anything in it. Choose a new or empty"
                    + " folder, or, if it is the output of an earlier fluxbatch version, create an empty file "
                    + marker + " to let fluxbatch use it");
        }
        if (!marked) {
            fs.setWriteChecksum(false); // no ._fluxbatch.crc beside it on file://
            try (FSDataOutputStream out = fs.create(marker, false)) {
                out.write("This folder was made by fluxbatch, which may replace or delete the files in it.\n"
                        .getBytes(StandardCharsets.UTF_8));
            } catch (FileAlreadyExistsException e) {
                // a concurrent run marked it first
            }
        }
    }

    private static boolean isEmpty(FileSystem fs, Path root) throws IOException {
        try {
            RemoteIterator<FileStatus> it = fs.listStatusIterator(root);
            return !it.hasNext();
        } catch (FileNotFoundException e) {
            return true;
        }
    }
}
