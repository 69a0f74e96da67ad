package ai.fluxbatch.jobs.cli;

import ai.fluxbatch.jobs.model.ModelCache;
import ai.fluxbatch.jobs.model.ModelLocation;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import picocli.CommandLine;
import picocli.CommandLine.Option;

/**
 * {@code --model DIR|URI}, defaulting to the miniature FLUX.1-dev that ships with the project. A folder is used where
 * it is; a URI ({@link ModelLocation}) is copied into this machine's model cache first ({@link Located}), and job
 * settings carry the URI ({@link #location}) so that each executor resolves it through its own node's cache.
 */
public final class ModelOption {
    static final String EMBEDDED = "flux-shapes-dev";

    @Option(
            names = "--model",
            paramLabel = "DIR|URI",
            description = "FLUX.1 snapshot folder in the Hugging Face layout, or its URI (s3a://, hdfs://, file://),"
                    + " which each node copies once into its model cache (-D" + ModelCache.PROPERTY + ", "
                    + ModelCache.SPARK_CONF + " or " + ModelCache.ENV + "; default ~/.cache/fluxbatch/models)"
                    + " (default: the shipped " + EMBEDDED + " miniature).")
    String model;

    @CommandLine.Spec(CommandLine.Spec.Target.MIXEE)
    CommandLine.Model.CommandSpec mixee;

    /** This run's resolution of {@link #model}, once made (a mixin lives for one command run). */
    private Located located;

    /** The snapshot folder on this machine: the folder given, this machine's cached copy of the URI, or the shipped one. */
    public Path resolve() {
        if (model == null) {
            return embedded();
        }
        if (located == null) {
            located = Located.of(mixee.commandLine(), "--model", model);
        }
        return located.folder();
    }

    /**
     * The model as job settings carry it to executors: the URI (qualified) when {@code --model} is one, else {@code
     * root}, the folder {@link #resolve} gave as the command opened it.
     */
    public String location(Path root) {
        String uri = uri();
        return uri != null ? uri : root.toString();
    }

    /** The qualified URI when {@code --model} is one, else null. */
    public String uri() {
        resolve();
        return located != null ? located.uri() : null;
    }

    /**
     * Where a model option's value is on this machine: {@code folder}, and {@code uri} (qualified) when the value is a
     * URI, null for a local folder.
     */
    record Located(Path folder, String uri) {
        /**
         * {@code value} of {@code option} located: a local folder as it is; a URI copied into this machine's model cache
         * unless it is there already, through the Hadoop configuration the job's Spark session will have, with one line
         * on the command's stderr saying where from, where to, and whether it was downloaded. A URI that cannot be
         * reached, or names no folder, fails here, before any work, with a message naming it.
         */
        static Located of(CommandLine cli, String option, String value) {
            if (!ModelLocation.isUri(value)) {
                return new Located(Path.of(value), null);
            }
            OptionChecks.noCredentials(cli, option, value);
            ModelCache.Resolved r;
            try {
                r = ModelLocation.cache().resolve(value, SparkSessions.hadoopConfiguration());
            } catch (IllegalArgumentException e) { // malformed, or a scheme without a file system
                throw new CommandLine.ParameterException(cli, option + ": " + e.getMessage());
            } catch (UncheckedIOException e) {
                throw new UncheckedIOException(option + ": " + e.getMessage(), e.getCause());
            }
            cli.getErr().println(option.replaceFirst("^--", "") + ": " + r.describe());
            return new Located(r.folder(), r.uri());
        }
    }

    /** models/flux-shapes-dev under the installation folder (set by bin/fluxbatch as fluxbatch.home). */
    static Path embedded() {
        String home = System.getProperty("fluxbatch.home", System.getenv().getOrDefault("FLUXBATCH_HOME", "."));
        Path dir = Path.of(home, "models", EMBEDDED);
        if (!Files.isDirectory(dir)) {
            throw new IllegalArgumentException("the shipped model " + dir.toAbsolutePath() + " is missing: pass"
                    + " --model DIR, or run through bin/fluxbatch so that fluxbatch.home points at the project");
        }
        return dir;
    }
}
