package ai.fluxbatch.model.snapshot;

import static java.time.Duration.ofSeconds;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTimeoutPreemptively;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeFalse;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import ai.fluxbatch.model.Golden;
import ai.fluxbatch.model.ModelException;
import ai.fluxbatch.model.safetensors.SafetensorsException;
import ai.fluxbatch.model.safetensors.SafetensorsFile;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Something at the transformer's expected path that is not a readable regular file is reported as what it is, naming
 * the path, never as "no transformer found", and never waited on (a fifo opened for reading blocks for a writer).
 */
class FluxSnapshotFilesTest {
    @TempDir
    Path dir;

    private Path weights() {
        return dir.resolve("flux1-dev.safetensors");
    }

    private void assertReported(String... parts) {
        ModelException e = assertTimeoutPreemptively(
                ofSeconds(10),
                () -> assertThrows(
                        ModelException.class, () -> FluxSnapshot.open(dir).transformerFile()));
        assertTrue(e.getMessage().contains(weights().toString()), e.getMessage());
        for (String p : parts) {
            assertTrue(e.getMessage().contains(p), "message lacks \"" + p + "\": " + e.getMessage());
        }
    }

    private static void mkfifo(Path p) throws IOException, InterruptedException {
        Process mk;
        try {
            mk = new ProcessBuilder("mkfifo", p.toString()).inheritIO().start();
        } catch (IOException e) {
            assumeTrue(false, "no mkfifo here: " + e.getMessage());
            return;
        }
        assumeTrue(mk.waitFor() == 0, "mkfifo failed");
    }

    @Test
    void fifo() throws Exception {
        mkfifo(weights());
        assertReported("is a fifo (named pipe), expected a regular file");
        // opening it directly is refused too, not waited on
        SafetensorsException e = assertTimeoutPreemptively(
                ofSeconds(10), () -> assertThrows(SafetensorsException.class, () -> SafetensorsFile.open(weights())));
        assertTrue(e.getMessage().contains("cannot open " + weights() + ": it is a fifo"), e.getMessage());
    }

    @Test
    void danglingSymbolicLink() throws IOException {
        Files.createSymbolicLink(weights(), dir.resolve("gone.safetensors"));
        assertReported("is a dangling symbolic link to " + dir.resolve("gone.safetensors"));
    }

    @Test
    void directory() throws IOException {
        Files.createDirectory(weights());
        assertReported("is a directory, expected a regular file");
    }

    @Test
    void unreadableFile() throws IOException {
        Files.copy(Golden.path("flux-tiny-dev", "flux1-dev.safetensors"), weights());
        Files.setPosixFilePermissions(weights(), PosixFilePermissions.fromString("---------"));
        assumeFalse(Files.isReadable(weights()), "running as root: every file is readable");
        assertReported("is not readable");
    }

    @Test
    void aLinkToAGoodFileIsFine() throws IOException {
        Path real = Golden.path("flux-tiny-dev", "flux1-dev.safetensors").toAbsolutePath();
        Files.createSymbolicLink(weights(), real);
        assertEquals(weights(), FluxSnapshot.open(dir).transformerFile());
        SafetensorsFile.open(weights()).close();
    }
}
