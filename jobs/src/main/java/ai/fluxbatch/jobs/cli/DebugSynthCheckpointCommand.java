package ai.fluxbatch.jobs.cli;

import ai.fluxbatch.model.snapshot.SyntheticSnapshot;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.Callable;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/** {@code fluxbatch debug synth-checkpoint}: a full-size transformer of random weights, for scale tests. */
@Command(
        name = "synth-checkpoint",
        mixinStandardHelpOptions = true,
        description = {
            "Write a transformer snapshot (BF16 random weights + transformer/config.json, and FLUX.1's"
                    + " vae/config.json) with the tensor names and shapes of a layout file such as"
                    + " ../shared/golden/flux1-dev-layout.json, streamed to disk."
        })
public final class DebugSynthCheckpointCommand implements Callable<Integer> {
    @Option(
            names = "--layout",
            required = true,
            paramLabel = "LAYOUT.json",
            description = "{\"tensors\": {name: shape}}.")
    Path layout;

    @Option(names = "--output", required = true, paramLabel = "DIR", description = "Snapshot folder to create.")
    Path output;

    @Option(
            names = "--axes",
            defaultValue = "16,56,56",
            split = ",",
            paramLabel = "A,B,C",
            description = "RoPE axes for config.json (default: FLUX.1's ${DEFAULT-VALUE}).")
    int[] axes;

    @Option(
            names = "--seed",
            defaultValue = "0",
            description = "Seed of the random weights (default: ${DEFAULT-VALUE}).")
    long seed;

    @Option(
            names = "--zeros",
            description = "All-zero weights, never written: a sparse file with the layout's full header and size, made"
                    + " in a moment in next to no disk space, for what reads a snapshot without running it (option"
                    + " defaults, file checks).")
    boolean zeros;

    @CommandLine.Spec
    CommandLine.Model.CommandSpec spec;

    @Override
    public Integer call() {
        if (axes.length != 3 || java.util.Arrays.stream(axes).anyMatch(a -> a < 2 || a % 2 != 0)) {
            throw new CommandLine.ParameterException(
                    spec.commandLine(),
                    "--axes is " + java.util.Arrays.toString(axes)
                            + ", expected three positive even numbers such as 16,56,56");
        }
        if (zeros && spec.commandLine().getParseResult().hasMatchedOption("--seed")) {
            throw new CommandLine.ParameterException(
                    spec.commandLine(), "--seed and --zeros: all-zero weights have no seed, give one of them");
        }
        if (Files.exists(output)) {
            throw new CommandLine.ParameterException(spec.commandLine(), "--output " + output + " exists");
        }
        long start = System.nanoTime();
        if (zeros) {
            SyntheticSnapshot.writeZeros(layout, output, axes);
        } else {
            SyntheticSnapshot.write(layout, output, axes, seed);
        }
        spec.commandLine()
                .getErr()
                .printf("synth-checkpoint: %s written in %.1f s%n", output, (System.nanoTime() - start) / 1e9);
        return 0;
    }
}
