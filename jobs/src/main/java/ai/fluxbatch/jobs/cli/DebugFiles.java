package ai.fluxbatch.jobs.cli;

import ai.fluxbatch.kernel.Backend;
import ai.fluxbatch.kernel.Tensor;
import ai.fluxbatch.kernel.cpu.CpuBackend;
import ai.fluxbatch.model.ModelException;
import ai.fluxbatch.model.safetensors.SafetensorsWriter;
import ai.fluxbatch.model.safetensors.TensorSource;
import ai.fluxbatch.model.safetensors.TensorSources;
import java.nio.file.Path;
import java.util.Arrays;
import picocli.CommandLine;
import picocli.CommandLine.Option;

/** {@code --input} and {@code --output} of the debug commands, and writing their F32 outputs in one atomic file. */
final class DebugFiles {
    @Option(names = "--input", required = true, paramLabel = "IN.safetensors", description = "Input tensors.")
    Path input;

    @Option(
            names = "--output",
            required = true,
            paramLabel = "OUT.safetensors",
            description = "Output tensors; written under a temporary name, then renamed.")
    Path output;

    @CommandLine.Spec(CommandLine.Spec.Target.MIXEE)
    CommandLine.Model.CommandSpec mixee;

    private final SafetensorsWriter writer = new SafetensorsWriter();

    /** What a debug command does with its backend, its input tensors and its model folder. */
    @FunctionalInterface
    interface Body {
        void run(CpuBackend backend, TensorSource in, Path modelDir);
    }

    /** Opens the backend and the input, runs {@code body}, then writes the outputs it added; returns the exit code. */
    int run(ModelOption model, String producer, Body body) {
        Path modelDir = model.resolve();
        check(modelDir);
        try (CpuBackend backend = new CpuBackend();
                TensorSource in = TensorSources.open(input)) {
            body.run(backend, in, modelDir);
        }
        write(producer, modelDir);
        return 0;
    }

    /** Before any work: the output may replace only a regular file, never the input, nothing in the model folder. */
    void check(Path modelDir) {
        OutputFiles.check(mixee.commandLine(), "--output", output, new OutputFiles.Input("--input", input));
        OutputFiles.checkOutside(mixee.commandLine(), "--output", output, "--model", modelDir);
    }

    DebugFiles add(Backend backend, String name, Tensor t) {
        writer.addF32(name, Arrays.stream(t.shape()).asLongStream().toArray(), backend.download(t));
        return this;
    }

    DebugFiles addF32(String name, long[] shape, float[] values) {
        writer.addF32(name, shape, values);
        return this;
    }

    /** Input tensor {@code name} of rank {@code rank}, uploaded to the backend. */
    static Tensor read(Backend backend, TensorSource in, String name, int rank) {
        if (!in.contains(name)) {
            throw new ModelException("input tensor '" + name + "' is missing from "
                    + in.file(in.names().first()) + ": expected it with rank " + rank);
        }
        int[] shape = in.info(name).intShape();
        if (shape.length != rank) {
            throw new ModelException("input tensor '" + name + "' in " + in.file(name) + " has shape "
                    + Arrays.toString(shape) + ", expected rank " + rank);
        }
        return backend.upload(in.floats(name), shape);
    }

    void write(String producer, Path model) {
        writer.metadata("producer", "fluxbatch " + Version.get() + " " + producer);
        writer.metadata("model", model.toString());
        writer.write(output);
    }
}
