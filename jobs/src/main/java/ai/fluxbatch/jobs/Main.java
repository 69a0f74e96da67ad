package ai.fluxbatch.jobs;

import ai.fluxbatch.jobs.cli.FluxbatchCommand;
import ai.fluxbatch.jobs.cli.Redact;

/** Entry point of {@code bin/fluxbatch}. */
public final class Main {
    private Main() {}

    public static void main(String[] args) {
        // before any logger starts: log lines (Spark's, Hadoop's) pass the same secret masking as the commands' own
        System.setErr(Redact.stream(System.err));
        System.setOut(Redact.stream(System.out));
        System.exit(FluxbatchCommand.run(args));
    }
}
