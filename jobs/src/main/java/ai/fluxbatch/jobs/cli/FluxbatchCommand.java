package ai.fluxbatch.jobs.cli;

import ai.fluxbatch.model.ModelException;
import ai.fluxbatch.model.safetensors.SafetensorsException;
import java.io.PrintWriter;
import picocli.CommandLine;
import picocli.CommandLine.Command;

/** {@code fluxbatch}: the command a user types. */
@Command(name = "fluxbatch", mixinStandardHelpOptions = true, versionProvider = Version.class,
        description = "1.58-bit FLUX.1 text-to-image at scale on Apache Spark.",
        subcommands = {GenerateCommand.class, CalibrateCommand.class, QuantizeCommand.class, EvaluateCommand.class, DebugCommand.class, CommandLine.HelpCommand.class})
public final class FluxbatchCommand implements Runnable {
    @CommandLine.Spec
    CommandLine.Model.CommandSpec spec;

    @Override
    public void run() {
        throw new CommandLine.ParameterException(spec.commandLine(), "missing subcommand: try 'fluxbatch --help'");
    }

    /** Runs the command line and returns the exit code: 0 ok, 1 failed, 2 usage error. */
    public static int run(String... args) {
        return commandLine(new PrintWriter(System.out, true), new PrintWriter(System.err, true)).execute(args);
    }

    public static CommandLine commandLine(PrintWriter out, PrintWriter err) {
        CommandLine cli = new CommandLine(new FluxbatchCommand());
        cli.setOut(out);
        cli.setErr(err);
        cli.setExecutionExceptionHandler((e, commandLine, parseResult) -> {
            if (e instanceof ModelException || e instanceof SafetensorsException
                    || e instanceof IllegalArgumentException || e instanceof java.io.UncheckedIOException) {
                commandLine.getErr().println("fluxbatch: error: " + e.getMessage());
                return CommandLine.ExitCode.SOFTWARE;
            }
            throw e;
        });
        return cli;
    }
}
