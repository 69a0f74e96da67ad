package ai.fluxbatch.jobs.cli;

import ai.fluxbatch.model.safetensors.DType;
import ai.fluxbatch.model.safetensors.HalfFloats;
import ai.fluxbatch.model.safetensors.SafetensorsWriter;
import ai.fluxbatch.model.sampling.LatentNoise;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.concurrent.Callable;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/** {@code fluxbatch debug noise}: the starting noise of a seed, as the reference draws it. */
@Command(
        name = "noise",
        mixinStandardHelpOptions = true,
        description = {
            "Write the seeded starting noise (1, 16, 2*ceil(h/16), 2*ceil(w/16)) as torch.randn draws it on"
                    + " the CPU generator: 'noise_f32' (F32) and 'noise_bf16' (BF16, what the reference samples from)."
        })
public final class DebugNoiseCommand implements Callable<Integer> {
    @Option(names = "--seed", required = true, description = "Seed (non-negative).")
    long seed;

    @Option(names = "--height", required = true, description = "Image height in pixels.")
    int height;

    @Option(names = "--width", required = true, description = "Image width in pixels.")
    int width;

    @Option(names = "--output", required = true, paramLabel = "OUT.safetensors", description = "Output file.")
    Path output;

    @CommandLine.Spec
    CommandLine.Model.CommandSpec spec;

    @Override
    public Integer call() {
        if (seed < 0) {
            throw new CommandLine.ParameterException(spec.commandLine(), "--seed is " + seed + ", expected >= 0");
        }
        if (height < 1 || width < 1 || height > 16384 || width > 16384) {
            throw new CommandLine.ParameterException(
                    spec.commandLine(), "--height and --width must be 1..16384, got " + height + " x " + width);
        }
        OutputFiles.check(spec.commandLine(), "--output", output);
        long[] shape =
                Arrays.stream(LatentNoise.shape(height, width)).asLongStream().toArray();
        float[] bf16 = LatentNoise.bf16(seed, height, width);
        ByteBuffer bits = ByteBuffer.allocate(bf16.length * 2).order(ByteOrder.LITTLE_ENDIAN);
        for (float v : bf16) {
            bits.putShort(HalfFloats.floatToBf16(v));
        }
        bits.flip();
        new SafetensorsWriter()
                .metadata("seed", Long.toString(seed))
                .metadata("height", Integer.toString(height))
                .metadata("width", Integer.toString(width))
                .addF32("noise_f32", shape, LatentNoise.f32(seed, height, width))
                .add("noise_bf16", DType.BF16, shape, bits)
                .write(output);
        return 0;
    }
}
