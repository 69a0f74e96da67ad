package ai.fluxbatch.jobs.cli;

import picocli.CommandLine;

/** Value checks the commands share; a bad value is a usage error (exit 2) naming its option. */
final class OptionChecks {
    private OptionChecks() {
    }

    static void positive(CommandLine cli, String option, int value) {
        if (value < 1) {
            throw new CommandLine.ParameterException(cli, option + " is " + value + ", expected >= 1");
        }
    }

    static void seed(CommandLine cli, long seed) {
        if (seed < 0) {
            throw new CommandLine.ParameterException(cli, "--seed is " + seed + ", expected a non-negative integer");
        }
    }
}
