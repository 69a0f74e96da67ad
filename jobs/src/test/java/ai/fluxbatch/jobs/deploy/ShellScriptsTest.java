package ai.fluxbatch.jobs.deploy;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.io.File;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;

/** The shipped shell scripts parse, and pass shellcheck where it is installed. */
class ShellScriptsTest {
    static final List<String> SCRIPTS = List.of(
            "deploy/spark/getGpusResources.sh",
            "deploy/spark-submit-fluxbatch",
            "bin/fluxbatch",
            "bin/fluxbatch-sequential-quantize");

    static Optional<Path> onPath(String tool) {
        return Stream.of(System.getenv().getOrDefault("PATH", "").split(File.pathSeparator))
                .filter(d -> !d.isEmpty())
                .map(d -> Path.of(d, tool))
                .filter(Files::isExecutable)
                .findFirst();
    }

    @Test
    void bashParsesThem() throws Exception {
        for (String script : SCRIPTS) {
            Scripts.Result r = Scripts.run(
                    List.of(Scripts.bash(), "-n", Scripts.file(script).toString()), System.getenv());
            assertEquals(0, r.exit(), script + ": " + r);
        }
    }

    @Test
    void shellcheck() throws Exception {
        Optional<Path> shellcheck = onPath("shellcheck");
        assumeTrue(shellcheck.isPresent(), "shellcheck is not installed on this machine: scripts not linted by it");
        List<String> command = new ArrayList<>(List.of(shellcheck.get().toString(), "--severity=style"));
        SCRIPTS.forEach(s -> command.add(Scripts.file(s).toString()));
        Scripts.Result r = Scripts.run(command, System.getenv());
        assertEquals(0, r.exit(), r::toString);
    }
}
