import ai.fluxbatch.kernel.cpu.CpuBackend;
import ai.fluxbatch.model.flux.FluxTransformer;
import ai.fluxbatch.model.flux.FluxTransformers;
import ai.fluxbatch.model.safetensors.TensorSource;
import ai.fluxbatch.model.snapshot.FluxSnapshot;
import java.nio.file.Path;

/**
 * Loads a (quantized) transformer onto the CPU backend and prints the bytes its weights occupy there, against the
 * same parameters held in BF16 (2 bytes each, what the reference keeps in GPU memory).
 */
public final class ResidentBytes {
    public static void main(String[] args) {
        FluxSnapshot snapshot = FluxSnapshot.open(Path.of(args[0]));
        long params = 0;
        long quantizedParams = 0;
        try (TensorSource s = snapshot.openTransformer()) {
            for (String name : s.names()) {
                if (name.endsWith("_scale")) {
                    continue;
                }
                String scale = name + "_scale";
                long n = s.contains(scale)
                        ? s.info(scale).shape()[0] * s.info(name).shape()[1]
                        : s.info(name).numel();
                params += n;
                quantizedParams += s.contains(scale) ? n : 0;
            }
        }
        long t0 = System.nanoTime();
        try (CpuBackend cpu = new CpuBackend()) {
            FluxTransformer t = FluxTransformers.load(snapshot, cpu);
            long resident = t.residentBytes();
            long bf16 = 2 * params;
            System.out.printf("transformer: %s%n", t.config());
            System.out.printf(
                    "parameters: %,d (%,d quantized, %.2f%%)%n",
                    params, quantizedParams, 100.0 * quantizedParams / params);
            System.out.printf(
                    "loaded in %.1f s; resident weight bytes: %,d (%.2f GiB): packed codes + scales, other"
                            + " tensors as float32%n",
                    (System.nanoTime() - t0) / 1e9, resident, resident / (double) (1L << 30));
            System.out.printf(
                    "same parameters in BF16: %,d (%.2f GiB): %.2fx more%n",
                    bf16, bf16 / (double) (1L << 30), bf16 / (double) resident);
        }
    }
}
