package ai.fluxbatch.jobs.cli;

import ai.fluxbatch.jobs.output.OutputFolder;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import picocli.CommandLine;

/**
 * Output folders a command makes and may later replace. A folder the command made carries a marker file, {@value
 * #MARKER}; {@code --overwrite} deletes only a folder with the marker, so it cannot take an unrelated folder (a home
 * folder, a model) with it. An output folder also never is, holds, or lies inside a source folder of the command.
 */
public final class OutputFolders {
    /** The marker file in a folder fluxbatch made: the same one generate's outputs carry. */
    public static final String MARKER = OutputFolder.MARKER;

    private OutputFolders() {}

    /**
     * Refuses {@code output} (given as {@code option}) when it is, contains or lies inside {@code source} (given as
     * {@code sourceOption}), compared as real paths; and, when it exists and {@code overwrite} would replace it, when
     * it is a folder without the marker.
     */
    public static void check(
            CommandLine cli, String option, Path output, boolean overwrite, String sourceOption, Path source) {
        OutputFiles.checkOutside(cli, option, output, sourceOption, source);
        if (overwrite && Files.isDirectory(output) && !isMarked(output)) {
            throw new CommandLine.ParameterException(
                    cli,
                    option + " " + output + " exists and was not made by"
                            + " fluxbatch (it has no " + MARKER
                            + " file): --overwrite replaces only folders fluxbatch made;"
                            + " remove it yourself or choose another folder");
        }
    }

    /** Whether {@code folder} carries the marker. */
    public static boolean isMarked(Path folder) {
        return Files.isRegularFile(folder.resolve(MARKER));
    }

    /**
     * Marks {@code folder} as made by {@code producer}. Written beside and renamed, so a marker hard-linked from a
     * source folder is replaced, not written through.
     */
    public static void mark(Path folder, String producer) {
        try {
            OutputFiles.writeString(
                    folder.resolve(MARKER),
                    "made by fluxbatch " + producer + " " + Version.get()
                            + "; fluxbatch replaces this folder with --overwrite\n");
        } catch (IOException e) {
            throw new UncheckedIOException(
                    "cannot write the marker " + folder.resolve(MARKER) + ": " + e.getMessage(), e);
        }
    }
}
