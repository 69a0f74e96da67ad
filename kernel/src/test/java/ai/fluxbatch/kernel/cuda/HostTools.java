package ai.fluxbatch.kernel.cuda;

import java.io.File;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.regex.Pattern;

/** Where the tests that build native code on the host put it, and the tools they look for. */
final class HostTools {
    private HostTools() {}

    /** The build folder: -Dfluxbatch.buildDir (the pom passes project.build.directory), else target. */
    static Path buildDir() {
        String dir = System.getProperty("fluxbatch.buildDir");
        return Path.of(dir != null && !dir.isBlank() ? dir : "target").toAbsolutePath();
    }

    /** The executable {@code name} on PATH, or null. */
    static Path onPath(String name) {
        String path = System.getenv("PATH");
        if (path == null) {
            return null;
        }
        for (String dir : path.split(Pattern.quote(File.pathSeparator))) {
            if (dir.isEmpty()) {
                continue;
            }
            Path p = Path.of(dir, name);
            if (Files.isRegularFile(p) && Files.isExecutable(p)) {
                return p;
            }
        }
        return null;
    }
}
