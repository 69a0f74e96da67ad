package ai.fluxbatch.jobs.cli;

import picocli.CommandLine;
import picocli.CommandLine.Command;

/** {@code fluxbatch debug ...}: one model component on tensors from a file, for parity checks against a reference. */
@Command(
        name = "debug",
        mixinStandardHelpOptions = true,
        description = "Run one model component on input tensors and write its outputs (parity checks).",
        subcommands = {
            DebugTransformerCommand.class,
            DebugDistillGradCommand.class,
            DebugTokenizeCommand.class,
            DebugT5Command.class,
            DebugClipCommand.class,
            DebugVaeDecodeCommand.class,
            DebugVaeEncodeCommand.class,
            DebugNoiseCommand.class,
            DebugScheduleCommand.class,
            DebugSynthCheckpointCommand.class
        })
public final class DebugCommand implements Runnable {
    @CommandLine.Spec
    CommandLine.Model.CommandSpec spec;

    @Override
    public void run() {
        throw new CommandLine.ParameterException(
                spec.commandLine(), "missing subcommand: try 'fluxbatch debug --help'");
    }
}
