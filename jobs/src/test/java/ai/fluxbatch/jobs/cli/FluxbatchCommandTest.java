package ai.fluxbatch.jobs.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;

class FluxbatchCommandTest {
    @Test
    void helpListsSubcommands() {
        CliRun run = CliRun.of("--help");
        assertEquals(0, run.exitCode());
        assertTrue(run.out().contains("debug"), run.out());
    }

    @Test
    void subcommandsHaveTheirOwnHelp() {
        CliRun run = CliRun.of("debug", "transformer", "--help");
        assertEquals(0, run.exitCode());
        assertTrue(run.out().contains("--input") && run.out().contains("--model"), run.out());
    }

    @Test
    void versionNamesTheProject() {
        CliRun run = CliRun.of("--version");
        assertEquals(0, run.exitCode());
        assertTrue(run.out().startsWith("fluxbatch 0."), run.out());
    }

    @Test
    void unknownOptionIsAUsageErrorNamingIt() {
        CliRun run = CliRun.of("debug", "transformer", "--input", "in", "--output", "out", "--frobnicate", "3");
        assertEquals(2, run.exitCode());
        assertTrue(run.err().contains("Unknown options: '--frobnicate'"), run.err());
        CliRun top = CliRun.of("--frobnicate");
        assertEquals(2, top.exitCode());
        assertTrue(top.err().contains("--frobnicate"), top.err());
    }

    @Test
    void missingSubcommandIsAUsageError() {
        assertEquals(2, CliRun.of().exitCode());
        assertEquals(2, CliRun.of("debug").exitCode());
    }

    @Test
    void missingRequiredOptionIsAUsageError() {
        CliRun run = CliRun.of("debug", "transformer", "--input", "x.safetensors");
        assertEquals(2, run.exitCode());
        assertTrue(run.err().contains("--output"), run.err());
    }
}
