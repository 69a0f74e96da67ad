package ai.fluxbatch.jobs.output;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.stream.Stream;
import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.fs.FileSystem;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class OutputFolderTest {
    @TempDir
    Path tmp;

    private static void claim(Path p) throws IOException {
        org.apache.hadoop.fs.Path root = new org.apache.hadoop.fs.Path(p.toUri());
        OutputFolder.claim(FileSystem.getLocal(new Configuration()).getRawFileSystem(), root, "--output " + p);
    }

    @Test
    void aNewOrEmptyFolderIsMarkedAndAMarkedOneAccepted() throws IOException {
        Path fresh = tmp.resolve("a/b");
        claim(fresh);
        assertTrue(Files.isRegularFile(fresh.resolve(OutputFolder.MARKER)));
        Files.writeString(fresh.resolve("image.png"), "x");
        claim(fresh); // ours: accepted, marker kept
        Path empty = Files.createDirectories(tmp.resolve("empty"));
        claim(empty);
        assertTrue(Files.isRegularFile(empty.resolve(OutputFolder.MARKER)));
    }

    @Test
    void aFolderFluxbatchDidNotMakeIsRefusedUntouched() throws IOException {
        Path home = Files.createDirectories(tmp.resolve("home"));
        Files.writeString(home.resolve("thesis.tex"), "years of work");
        OutputFolder.Refused e = assertThrows(OutputFolder.Refused.class, () -> claim(home));
        assertTrue(
                e.getMessage()
                        .startsWith("--output " + home + " is a folder that fluxbatch did not make (it has"
                                + " files and no _fluxbatch marker): refusing"),
                e.getMessage());
        try (Stream<Path> s = Files.list(home)) {
            assertEquals(List.of(home.resolve("thesis.tex")), s.toList());
        }
        Path file = Files.writeString(tmp.resolve("f"), "x");
        assertTrue(assertThrows(OutputFolder.Refused.class, () -> claim(file))
                .getMessage()
                .contains("is a file"));
    }
}
