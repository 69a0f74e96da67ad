package ai.fluxbatch.jobs;

import ai.fluxbatch.jobs.cli.FluxbatchCommand;

/** Entry point of {@code bin/fluxbatch}. */
public final class Main {
    private Main() {
    }

    public static void main(String[] args) {
        System.exit(FluxbatchCommand.run(args));
    }
}
