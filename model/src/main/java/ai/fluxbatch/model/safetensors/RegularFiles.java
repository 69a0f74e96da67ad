package ai.fluxbatch.model.safetensors;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.attribute.BasicFileAttributes;

/**
 * Says what is wrong with a path that should be a readable regular file, before it is opened: opening a fifo for
 * reading waits for a writer forever, and "missing" is the wrong word for a dangling link or a folder.
 */
public final class RegularFiles {
    /** The problem of a path where nothing is. */
    public static final String ABSENT = "does not exist";

    private static final int S_IFMT = 0170000;

    private RegularFiles() {}

    /**
     * Null when {@code path} is (or links to) a readable regular file; otherwise what it is, as a phrase that follows
     * the path: "does not exist", "is a dangling symbolic link to x", "is a fifo, expected a regular file", ...
     */
    public static String problem(Path path) {
        BasicFileAttributes attrs;
        try {
            attrs = Files.readAttributes(path, BasicFileAttributes.class);
        } catch (IOException followed) {
            if (Files.isSymbolicLink(path)) {
                return "is a dangling symbolic link to " + target(path) + " (its target does not exist)";
            }
            return Files.exists(path, LinkOption.NOFOLLOW_LINKS) ? "cannot be read: " + followed : ABSENT;
        }
        if (attrs.isDirectory()) {
            return "is a directory, expected a regular file";
        }
        if (!attrs.isRegularFile()) {
            return "is " + special(path) + ", expected a regular file";
        }
        if (!Files.isReadable(path)) {
            return "is not readable (permission denied)";
        }
        return null;
    }

    /**
     * Fails with a {@link SafetensorsException} "cannot open {path}: no such file" or "cannot open {path}: it is a
     * fifo, ..." unless the file can be opened.
     */
    static void require(Path path) {
        String problem = problem(path);
        if (problem != null) {
            throw new SafetensorsException(
                    "cannot open " + path + ": " + (problem.equals(ABSENT) ? "no such file" : "it " + problem));
        }
    }

    private static String special(Path path) {
        try {
            int mode = (Integer) Files.getAttribute(path, "unix:mode");
            return switch (mode & S_IFMT) {
                case 0010000 -> "a fifo (named pipe)";
                case 0140000 -> "a socket";
                case 0020000 -> "a character device";
                case 0060000 -> "a block device";
                default -> "not a regular file";
            };
        } catch (IOException | UnsupportedOperationException | IllegalArgumentException | ClassCastException e) {
            return "a special file (a fifo, socket or device)";
        }
    }

    private static String target(Path link) {
        try {
            return Files.readSymbolicLink(link).toString();
        } catch (IOException e) {
            return "an unreadable target";
        }
    }
}
