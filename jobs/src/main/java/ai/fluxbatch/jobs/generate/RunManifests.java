package ai.fluxbatch.jobs.generate;

import ai.fluxbatch.jobs.output.Locations;
import ai.fluxbatch.jobs.output.OutputFolder;
import java.io.ByteArrayOutputStream;
import java.io.FileNotFoundException;
import java.io.IOException;
import java.io.InputStream;
import java.util.Arrays;
import java.util.List;
import java.util.Set;
import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.fs.FileStatus;
import org.apache.hadoop.fs.FileSystem;
import org.apache.hadoop.fs.Path;

/**
 * The run manifest of a generate output ({@link RunManifest}, {@code OUTPUT/run.json}), checked and written on the
 * driver after the output is claimed and before any image: a new output gets this run's manifest; an output made with
 * the same settings is resumed; one made with other settings is refused with every difference named, unless
 * {@code --overwrite}, which replaces the manifest (and makes every image of the run again). Written through
 * {@link ImageStore}, so never half written.
 */
public final class RunManifests {
    /** Entries of an output that say nothing about images made in it. */
    private static final Set<String> BOOKKEEPING = Set.of(OutputFolder.MARKER, "_tmp");

    private RunManifests() {}

    /** What {@link #claim} found. */
    public enum Outcome {
        /** A new or empty output: this run's manifest written. */
        NEW,
        /** An output with images or metadata but no manifest (made by an earlier fluxbatch): this run's written. */
        UNRECORDED,
        /** The same settings: resumed, existing images are skipped. */
        RESUMED,
        /** Other settings and {@code --overwrite}: this run's manifest replaced the output's. */
        REPLACED
    }

    /** The output was made with other settings; the message names each difference and what to do. */
    public static final class Refused extends IllegalArgumentException {
        Refused(String message) {
            super(message);
        }
    }

    /**
     * Checks {@code wanted} against the manifest of {@code output} (a folder or URI, already claimed with
     * {@link OutputFolder#claim}) and writes it where the output has none, or another with {@code overwrite}.
     *
     * @throws Refused when the output was made with other settings (or its manifest is unreadable) and not
     *     {@code overwrite}; nothing is written then
     */
    public static Outcome claim(String output, Configuration conf, RunManifest wanted, boolean overwrite)
            throws IOException {
        Path root = Locations.path(output.endsWith("/") ? output : output + "/");
        FileSystem fs = root.getFileSystem(conf);
        Path file = new Path(root, RunManifest.FILE);
        byte[] stored = read(fs, file);
        String name = "--output " + output;
        Outcome outcome;
        if (stored == null) {
            outcome = hasContent(fs, root) ? Outcome.UNRECORDED : Outcome.NEW;
        } else {
            List<String> differences;
            try {
                differences = wanted.differences(RunManifest.parse(stored, file.toString()));
            } catch (IOException e) {
                differences = List.of(e.getMessage());
            }
            if (differences.isEmpty()) {
                if (!Arrays.equals(stored, wanted.toJson())) { // settings an older manifest did not record
                    new ImageStore(output, conf).write(RunManifest.FILE, wanted.toJson(), true);
                }
                return Outcome.RESUMED;
            }
            if (!overwrite) {
                throw new Refused(name + " was made with other settings than this run's (" + file + "): "
                        + String.join("; ", differences) + ". Nothing was written; choose another --output, or"
                        + " add --overwrite to make its images again with this run's settings");
            }
            outcome = Outcome.REPLACED;
        }
        new ImageStore(output, conf).write(RunManifest.FILE, wanted.toJson(), stored != null);
        return outcome;
    }

    /** The bytes of {@code file}, or null when there is none. */
    private static byte[] read(FileSystem fs, Path file) throws IOException {
        try (InputStream in = fs.open(file)) {
            ByteArrayOutputStream out = new ByteArrayOutputStream();
            in.transferTo(out);
            return out.toByteArray();
        } catch (FileNotFoundException e) {
            return null;
        }
    }

    private static boolean hasContent(FileSystem fs, Path root) throws IOException {
        try {
            for (FileStatus s : fs.listStatus(root)) {
                String n = s.getPath().getName();
                if (!BOOKKEEPING.contains(n) && !n.startsWith("_fluxbatch-write-check-")) {
                    return true;
                }
            }
            return false;
        } catch (FileNotFoundException e) {
            return false;
        }
    }
}
