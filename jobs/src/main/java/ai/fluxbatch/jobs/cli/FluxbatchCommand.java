package ai.fluxbatch.jobs.cli;

import java.io.PrintWriter;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import picocli.CommandLine;
import picocli.CommandLine.Command;

/** {@code fluxbatch}: the command a user types. */
@Command(
        name = "fluxbatch",
        mixinStandardHelpOptions = true,
        versionProvider = Version.class,
        description = "1.58-bit FLUX.1 text-to-image at scale on Apache Spark.",
        subcommands = {
            GenerateCommand.class,
            CalibrateCommand.class,
            QuantizeCommand.class,
            DistillCommand.class,
            EvaluateCommand.class,
            DebugCommand.class,
            CommandLine.HelpCommand.class
        })
public final class FluxbatchCommand implements Runnable {
    private static final Logger LOG = LoggerFactory.getLogger(FluxbatchCommand.class);

    @CommandLine.Spec
    CommandLine.Model.CommandSpec spec;

    @Override
    public void run() {
        throw new CommandLine.ParameterException(spec.commandLine(), "missing subcommand: try 'fluxbatch --help'");
    }

    /**
     * Runs the command line and returns the exit code: 0 ok, 1 failed, 2 usage error. A failure is one line, {@code
     * fluxbatch: error: MESSAGE} ({@link ErrorMessages}); the stack trace goes to the log at debug level, and to stderr
     * with {@link #showTraces()}. Everything printed has its secrets masked ({@link Redact}).
     */
    public static int run(String... args) {
        return commandLine(new PrintWriter(System.out, true), new PrintWriter(System.err, true))
                .execute(args);
    }

    public static CommandLine commandLine(PrintWriter out, PrintWriter err) {
        CommandLine cli = new CommandLine(new FluxbatchCommand());
        cli.setOut(Redact.writer(out));
        cli.setErr(Redact.writer(err));
        cli.setExecutionExceptionHandler((e, commandLine, parseResult) -> {
            LOG.debug("fluxbatch failed", e);
            if (showTraces()) {
                e.printStackTrace(commandLine.getErr());
            }
            commandLine.getErr().println("fluxbatch: error: " + ErrorMessages.of(e));
            return CommandLine.ExitCode.SOFTWARE;
        });
        return cli;
    }

    /** The full stack trace of a failure is printed with -Dfluxbatch.debug=true or FLUXBATCH_DEBUG=1. */
    static boolean showTraces() {
        String env = System.getenv("FLUXBATCH_DEBUG");
        return Boolean.getBoolean("fluxbatch.debug") || (env != null && !env.isEmpty() && !env.equals("0"));
    }
}
