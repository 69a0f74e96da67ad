package ai.fluxbatch.jobs.cli;

import java.nio.file.Files;
import java.nio.file.Path;
import picocli.CommandLine.Option;

/** {@code --model DIR}, defaulting to the miniature FLUX.1-dev that ships with the project. */
public final class ModelOption {
    static final String EMBEDDED = "flux-shapes-dev";

    @Option(
            names = "--model",
            paramLabel = "DIR",
            description = "FLUX.1 snapshot folder in the Hugging Face layout (default: the shipped " + EMBEDDED
                    + " miniature).")
    Path model;

    public Path resolve() {
        return model != null ? model : embedded();
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
