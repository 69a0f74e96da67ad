package ai.fluxbatch.jobs.cli;

import picocli.CommandLine;

/** Value checks the commands share; a bad value is a usage error (exit 2) naming its option. */
final class OptionChecks {
    private OptionChecks() {}

    static void positive(CommandLine cli, String option, int value) {
        if (value < 1) {
            throw new CommandLine.ParameterException(cli, option + " is " + value + ", expected >= 1");
        }
    }

    /** {@code min <= value <= max}; the message says the range, and why there is a maximum. */
    static void range(CommandLine cli, String option, long value, long min, long max, String whyMax) {
        if (value < min || value > max) {
            throw new CommandLine.ParameterException(
                    cli,
                    option + " is " + value + ", expected " + min + ".." + max
                            + (value > max ? " (" + whyMax + ")" : ""));
        }
    }

    /**
     * Seeds {@code seed} to {@code seed + count - 1} (image i of a prompt, or prompt i, uses seed + i) must all be
     * non-negative longs: refused up front rather than wrapping round to a negative seed.
     */
    static void seedRange(CommandLine cli, long seed, long count, String counted) {
        seed(cli, seed);
        if (count > 1 && seed > Long.MAX_VALUE - (count - 1)) {
            throw new CommandLine.ParameterException(
                    cli,
                    "--seed " + seed + " with " + counted
                            + " needs seeds up to " + seed + " + " + (count - 1) + ", past the largest seed "
                            + Long.MAX_VALUE
                            + ": expected --seed <= " + (Long.MAX_VALUE - (count - 1)));
        }
    }

    /**
     * Refuses a URI with credentials in it ({@code s3a://KEY:SECRET@bucket/...}): Hadoop's S3A no longer accepts them,
     * and a secret on the command line ends up in shell histories, process lists and logs.
     */
    static void noCredentials(CommandLine cli, String option, String location) {
        if (location != null && !Redact.uri(location).equals(location)) {
            throw new CommandLine.ParameterException(
                    cli,
                    option + " " + Redact.uri(location) + " has credentials in"
                            + " it: give them as spark.hadoop.fs.s3a.access.key and fs.s3a.secret.key (or a credential provider,"
                            + " or the AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY environment variables), never in the URI");
        }
    }

    static void seed(CommandLine cli, long seed) {
        if (seed < 0) {
            throw new CommandLine.ParameterException(cli, "--seed is " + seed + ", expected a non-negative integer");
        }
    }
}
