package ai.fluxbatch.jobs.cli;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.AtomicMoveNotSupportedException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.attribute.BasicFileAttributes;
import java.util.UUID;
import picocli.CommandLine;

/**
 * What an output file may replace: nothing but a regular file (a device node, a fifo or a folder, or a link to one,
 * stays as it is), and never one of the command's inputs (compared as files, so a symbolic or hard link to the input
 * is the input). Checked before any work; a refusal is a usage error naming the option.
 */
final class OutputFiles {
    private OutputFiles() {}

    /** Refuses {@code output} (given as {@code option}) if it exists as anything but a regular file, or is an input. */
    static void check(CommandLine cli, String option, Path output, Input... inputs) {
        if (Files.exists(output) && !Files.isRegularFile(output)) {
            throw new CommandLine.ParameterException(
                    cli,
                    option + " " + output + " is " + kind(output)
                            + ", not a regular file: refusing to replace it; name a file to write");
        }
        for (Input in : inputs) {
            if (in.path() != null && sameFile(output, in.path())) {
                throw new CommandLine.ParameterException(
                        cli,
                        option + " " + output + " is the " + in.option() + " "
                                + in.path()
                                + (realPath(output).equals(realPath(in.path())) ? "" : " (through a link)")
                                + ": refusing to replace an input; name another output file");
            }
        }
    }

    /**
     * Refuses {@code output} (given as {@code option}) when it is, lies inside or contains the folder {@code source}
     * (given as {@code sourceOption}, e.g. {@code --model}), compared as real paths: writing there could replace the
     * source's files.
     */
    static void checkOutside(CommandLine cli, String option, Path output, String sourceOption, Path source) {
        Path out = realPath(output), src = realPath(source);
        if (out.startsWith(src) || src.startsWith(out)) {
            String how = out.equals(src) ? "is" : out.startsWith(src) ? "is inside" : "contains";
            throw new CommandLine.ParameterException(
                    cli,
                    option + " " + output + " " + how + " " + sourceOption + " " + source
                            + ": writing there could replace the source's files; choose an output outside it");
        }
    }

    /** An input file of the command, named by its option. */
    record Input(String option, Path path) {}

    /** Writes {@code text} to {@code file} under a temporary name beside it, then renames it into place. */
    static void writeString(Path file, String text) throws IOException {
        Path target = file.toAbsolutePath();
        Path tmp = target.resolveSibling("." + target.getFileName() + ".tmp-" + UUID.randomUUID());
        try {
            Files.writeString(tmp, text, StandardCharsets.UTF_8);
            try {
                Files.move(tmp, target, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
            } catch (AtomicMoveNotSupportedException e) {
                Files.move(tmp, target, StandardCopyOption.REPLACE_EXISTING);
            }
        } finally {
            Files.deleteIfExists(tmp);
        }
    }

    /** Both exist and are the same file (through symbolic links or hard links). */
    static boolean sameFile(Path a, Path b) {
        try {
            return Files.exists(a) && Files.exists(b) && Files.isSameFile(a, b);
        } catch (IOException e) {
            throw new UncheckedIOException("cannot compare " + a + " with " + b + ": " + e.getMessage(), e);
        }
    }

    /**
     * The real path {@code p} has or would have: its nearest existing ancestor with links resolved, then the rest of
     * it, so that two spellings of one location (symbolic links, {@code ..}) compare equal before it exists.
     */
    static Path realPath(Path p) {
        Path abs = p.toAbsolutePath().normalize();
        Path existing = abs;
        while (existing != null && !Files.exists(existing)) {
            existing = existing.getParent();
        }
        if (existing == null) {
            return abs;
        }
        try {
            return existing.toRealPath().resolve(existing.relativize(abs));
        } catch (IOException e) {
            throw new UncheckedIOException("cannot resolve " + p + ": " + e.getMessage(), e);
        }
    }

    private static String kind(Path p) {
        try {
            BasicFileAttributes a = Files.readAttributes(p, BasicFileAttributes.class);
            String what =
                    a.isDirectory() ? "a folder" : a.isOther() ? "a device, fifo or socket" : "not a regular file";
            return Files.isSymbolicLink(p) ? "a link to " + what : what;
        } catch (IOException e) {
            return "not a regular file";
        }
    }
}
