package ai.fluxbatch.jobs.deploy;

import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;

/** The checkout's deploy files, and running its scripts in a controlled environment. */
final class Scripts {
    private Scripts() {}

    /** The repository root: the parent of the jobs module, where surefire runs the tests. */
    static Path root() {
        Path root = Path.of("").toAbsolutePath().getParent();
        assertTrue(
                Files.isDirectory(root.resolve("deploy")) && Files.isRegularFile(root.resolve("jobs/pom.xml")),
                "expected the repository root (with deploy/ and jobs/pom.xml) above the working directory, got "
                        + root);
        return root;
    }

    static Path file(String relative) {
        Path p = root().resolve(relative);
        assertTrue(Files.isRegularFile(p), "missing " + relative + " in the checkout");
        return p;
    }

    /** Writes an executable shell script. */
    static Path executable(Path path, String body) throws IOException {
        Files.createDirectories(path.getParent());
        Files.writeString(path, "#!/bin/sh\n" + body, StandardCharsets.UTF_8);
        Files.setPosixFilePermissions(path, PosixFilePermissions.fromString("rwxr-xr-x"));
        return path;
    }

    static String bash() {
        for (String b : List.of("/bin/bash", "/usr/bin/bash")) {
            if (Files.isExecutable(Path.of(b))) {
                return b;
            }
        }
        return fail("these tests need bash at /bin/bash or /usr/bin/bash");
    }

    record Result(int exit, String stdout, String stderr) {
        @Override
        public String toString() {
            return "exit " + exit + "\n--- stdout\n" + stdout + "--- stderr\n" + stderr;
        }
    }

    /** Runs {@code command} with exactly {@code env} as its environment (nothing inherited). */
    static Result run(List<String> command, Map<String, String> env) throws Exception {
        ProcessBuilder pb = new ProcessBuilder(new ArrayList<>(command));
        pb.environment().clear();
        pb.environment().putAll(env);
        Process p = pb.start();
        p.getOutputStream().close();
        CompletableFuture<String> out = CompletableFuture.supplyAsync(() -> read(p.getInputStream()));
        CompletableFuture<String> err = CompletableFuture.supplyAsync(() -> read(p.getErrorStream()));
        if (!p.waitFor(60, TimeUnit.SECONDS)) {
            p.destroyForcibly();
            fail("timed out after 60 s: " + command);
        }
        return new Result(p.exitValue(), out.get(), err.get());
    }

    private static String read(java.io.InputStream in) {
        try (in) {
            return new String(in.readAllBytes(), StandardCharsets.UTF_8);
        } catch (IOException e) {
            throw new java.io.UncheckedIOException(e);
        }
    }
}
