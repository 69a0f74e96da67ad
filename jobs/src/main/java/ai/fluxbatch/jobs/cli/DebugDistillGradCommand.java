package ai.fluxbatch.jobs.cli;

import ai.fluxbatch.kernel.Backend;
import ai.fluxbatch.kernel.BackendSelection;
import ai.fluxbatch.kernel.cpu.CpuBackend;
import ai.fluxbatch.model.distill.DistillationLoss;
import ai.fluxbatch.model.flux.FluxInputs;
import ai.fluxbatch.model.flux.FluxInputsReader;
import ai.fluxbatch.model.flux.FluxTransformer;
import ai.fluxbatch.model.flux.FluxTransformers;
import ai.fluxbatch.model.flux.TernaryLinear;
import ai.fluxbatch.model.safetensors.TensorSource;
import ai.fluxbatch.model.safetensors.TensorSources;
import ai.fluxbatch.model.snapshot.FluxSnapshot;
import java.nio.file.Path;
import java.util.Map;
import java.util.concurrent.Callable;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/** {@code fluxbatch debug distill-grad}: the self-distillation loss and gradients of one transformer call. */
@Command(
        name = "distill-grad",
        mixinStandardHelpOptions = true,
        description = {
            "Self-distillation gradients of one transformer call.",
            "Runs the full-precision --model (teacher) and the 1.58-bit --quantized (student) on the inputs of --input"
                    + " (img, img_ids, txt, txt_ids, timesteps, y, guidance for dev models); loss = mean((student -"
                    + " teacher)^2) over every output value. Writes 'loss' ([1]) and, for every ternary block linear"
                    + " layer, '<layer>.weight_scale.grad' and '<layer>.bias.grad' ([out]) to --output."
        })
public final class DebugDistillGradCommand implements Callable<Integer> {
    @CommandLine.Mixin
    ModelOption model;

    @Option(
            names = "--quantized",
            required = true,
            paramLabel = "Q_DIR",
            description = "The 1.58-bit snapshot of --model (fluxbatch quantize's output) whose gradients to compute.")
    Path quantized;

    @CommandLine.Mixin
    DebugFiles files;

    @CommandLine.Mixin
    DeviceOption device;

    @CommandLine.Spec
    CommandLine.Model.CommandSpec spec;

    @Override
    public Integer call() {
        Path modelDir = model.resolve();
        files.check(modelDir);
        OutputFiles.checkOutside(spec.commandLine(), "--output", files.output, "--quantized", quantized);
        BackendSelection.Decision decision =
                device.select("debug distill-grad", spec.commandLine().getErr());
        try (Backend backend = device.open(
                        "debug distill-grad", decision, spec.commandLine().getErr(), CpuBackend::new);
                TensorSource in = TensorSources.open(files.input)) {
            long start = System.nanoTime();
            FluxTransformer teacher = FluxTransformers.load(FluxSnapshot.open(modelDir), backend);
            FluxTransformer student = FluxTransformers.load(FluxSnapshot.open(quantized), backend);
            if (!teacher.config().sameArchitecture(student.config())) {
                throw new CommandLine.ParameterException(
                        spec.commandLine(),
                        "--quantized " + quantized + " is " + student.config() + ", --model " + modelDir + " is "
                                + teacher.config() + ": expected a quantized copy of --model");
            }
            if (student.blockLinears().values().stream().noneMatch(l -> l instanceof TernaryLinear)) {
                throw new CommandLine.ParameterException(
                        spec.commandLine(),
                        "--quantized " + quantized + " has no ternary layers: expected a 1.58-bit snapshot (fluxbatch"
                                + " quantize's output)");
            }
            FluxInputs inputs = FluxInputsReader.read(in, teacher.config());
            DistillationLoss.Result r = DistillationLoss.compute(
                    backend, student, inputs, DistillationLoss.target(backend, teacher, inputs));
            long done = System.nanoTime();
            files.addF32("loss", new long[] {1}, new float[] {(float) r.loss()});
            for (Map.Entry<String, float[]> e : r.scale().entrySet()) {
                String layer = e.getKey();
                files.addF32(layer + ".weight_scale.grad", new long[] {e.getValue().length}, e.getValue());
                files.addF32(
                        layer + ".bias.grad",
                        new long[] {e.getValue().length},
                        r.bias().get(layer));
            }
            files.write("debug distill-grad", modelDir);
            spec.commandLine()
                    .getErr()
                    .printf(
                            "%s on %s: loss %.6g, gradients of %d ternary layers in %.2f s -> %s%n",
                            teacher.config(),
                            backend.name(),
                            r.loss(),
                            r.scale().size(),
                            (done - start) / 1e9,
                            files.output);
            return 0;
        }
    }
}
