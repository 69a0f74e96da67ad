package ai.fluxbatch.jobs.cli;

import ai.fluxbatch.kernel.Backend;
import ai.fluxbatch.kernel.BackendSelection;
import ai.fluxbatch.kernel.Tensor;
import ai.fluxbatch.kernel.cpu.CpuBackend;
import ai.fluxbatch.model.flux.FluxInputs;
import ai.fluxbatch.model.flux.FluxInputsReader;
import ai.fluxbatch.model.flux.FluxTransformer;
import ai.fluxbatch.model.flux.FluxTransformers;
import ai.fluxbatch.model.safetensors.TensorSource;
import ai.fluxbatch.model.safetensors.TensorSources;
import ai.fluxbatch.model.snapshot.FluxSnapshot;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.concurrent.Callable;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/** {@code fluxbatch debug transformer}: one transformer call on the golden-case tensor names. */
@Command(
        name = "transformer",
        mixinStandardHelpOptions = true,
        description = {
            "Run the FLUX.1 transformer once.",
            "Reads img, img_ids, txt, txt_ids, timesteps, y and guidance (dev models) from --input and writes"
                    + " 'out' (F32, [B, L, 64]) to --output."
        })
public final class DebugTransformerCommand implements Callable<Integer> {
    @CommandLine.Mixin
    ModelOption model;

    @CommandLine.Mixin
    DebugFiles files;

    @Option(
            names = "--threads",
            paramLabel = "N",
            description = "Threads of the CPU backend (default: all processors).")
    Integer threads;

    @CommandLine.Mixin
    DeviceOption device;

    @CommandLine.Spec
    CommandLine.Model.CommandSpec spec;

    /** More threads than this only cost memory and scheduling: no machine has that many cores to use. */
    static final int MAX_THREADS = 1024;

    @Override
    public Integer call() {
        if (threads != null) {
            OptionChecks.range(spec.commandLine(), "--threads", threads, 1, MAX_THREADS, "one per core is enough");
        }
        Path modelDir = model.resolve();
        files.check(modelDir);
        BackendSelection.Decision decision =
                device.select("debug transformer", spec.commandLine().getErr());
        try (Backend backend = device.open(
                        "debug transformer",
                        decision,
                        spec.commandLine().getErr(),
                        () -> threads == null ? new CpuBackend() : new CpuBackend(threads));
                TensorSource in = TensorSources.open(files.input)) {
            long start = System.nanoTime();
            FluxTransformer transformer = FluxTransformers.load(FluxSnapshot.open(modelDir), backend);
            FluxInputs inputs = FluxInputsReader.read(in, transformer.config());
            long loaded = System.nanoTime();
            Tensor out = transformer.forward(inputs, (name, t) -> {});
            long done = System.nanoTime();
            files.add(backend, "out", out).write("debug transformer", modelDir);
            spec.commandLine()
                    .getErr()
                    .printf(
                            "%s on %s: out %s in %.2f s (load %.2f s) -> %s%n",
                            transformer.config(),
                            backend.name(),
                            Arrays.toString(out.shape()),
                            (done - loaded) / 1e9,
                            (loaded - start) / 1e9,
                            files.output);
            return 0;
        }
    }
}
