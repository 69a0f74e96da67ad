package ai.fluxbatch.jobs.cli;

import ai.fluxbatch.model.sampling.FlowSchedule;
import ai.fluxbatch.model.sampling.SchedulerConfig;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.util.concurrent.Callable;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/** {@code fluxbatch debug schedule}: the timesteps of the reference {@code get_schedule}, as a JSON list. */
@Command(
        name = "schedule",
        mixinStandardHelpOptions = true,
        description = "Print the sampling timesteps (steps + 1 values from 1 to 0) as a JSON list.")
public final class DebugScheduleCommand implements Callable<Integer> {
    @CommandLine.Mixin
    ModelOption model;

    @Option(names = "--steps", required = true, paramLabel = "N", description = "Denoising steps.")
    int steps;

    @Option(
            names = "--seq-len",
            required = true,
            paramLabel = "L",
            description = "Image tokens: (height/16) * (width/16).")
    int seqLen;

    @Option(names = "--no-shift", description = "No time shift (as for FLUX.1-schnell).")
    boolean noShift;

    @CommandLine.Spec
    CommandLine.Model.CommandSpec spec;

    static final int MAX_STEPS = 10_000;

    @Override
    public Integer call() throws Exception {
        OptionChecks.range(
                spec.commandLine(), "--steps", steps, 1, MAX_STEPS, "a schedule longer than any sampler runs");
        if (seqLen < 1) {
            throw new CommandLine.ParameterException(spec.commandLine(), "--seq-len is " + seqLen + ", expected >= 1");
        }
        double[] t = FlowSchedule.timesteps(steps, seqLen, !noShift, SchedulerConfig.of(model.resolve()));
        spec.commandLine().getOut().println(new ObjectMapper().writeValueAsString(t));
        return 0;
    }
}
