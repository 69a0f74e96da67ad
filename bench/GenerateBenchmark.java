import ai.fluxbatch.kernel.cpu.CpuBackend;
import ai.fluxbatch.model.pipeline.FluxPipeline;
import ai.fluxbatch.model.pipeline.GenerationParams;
import ai.fluxbatch.model.pipeline.TextEmbedding;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

/**
 * Seconds per image and per denoising step of the whole pipeline on the shipped miniature, at its native 64 x 64
 * and at 256 x 256, with the share of time in the text encoders, the transformer and the autoencoder.
 * The 64 x 64 figures are the baseline the 256 x 256 ones are compared with. Run with bench/generate.sh.
 */
public final class GenerateBenchmark {
    public static void main(String[] args) throws Exception {
        Path model = Path.of(args.length > 0 ? args[0] : "models/flux-shapes-dev");
        int steps = 20;
        int images = 3;
        String cpu = Files.readAllLines(Path.of("/proc/cpuinfo")).stream()
                .filter(l -> l.startsWith("model name"))
                .map(l -> l.substring(l.indexOf(':') + 1).trim())
                .findFirst()
                .orElse("unknown CPU");
        System.out.println("machine: " + cpu + ", " + Runtime.getRuntime().availableProcessors() + " cores; java "
                + Runtime.version());
        try (CpuBackend backend = new CpuBackend()) {
            FluxPipeline pipeline = FluxPipeline.load(model, backend);
            System.out.println(
                    "model: " + model + " (" + pipeline.variant() + "), " + steps + " steps, batch 1, best of " + images
                            + " images after one warm-up image; backend " + backend.name());
            System.out.printf(
                    "%-10s %10s %10s %8s %12s %8s%n", "size", "s/image", "s/step", "text", "transformer", "vae");
            double base = 0;
            for (int side : new int[] {64, 256}) {
                GenerationParams p = new GenerationParams(side, side, steps, 3.5f);
                double[] best = null;
                for (int i = 0; i <= images; i++) {
                    long t0 = System.nanoTime();
                    TextEmbedding e = pipeline.embed("a red circle on the left " + i);
                    double text = (System.nanoTime() - t0) / 1e9;
                    FluxPipeline.Batch b = pipeline.generate(List.of(e), new long[] {i}, p, s -> {});
                    double[] t = {text, b.times().transformer(), b.times().vae()};
                    if (i > 0 && (best == null || sum(t) < sum(best))) {
                        best = t;
                    }
                }
                double total = sum(best);
                if (base == 0) {
                    base = total;
                }
                System.out.printf(
                        "%-10s %10.3f %10.4f %7.1f%% %11.1f%% %7.1f%%   (%.1fx the 64 x 64 time)%n",
                        side + "x" + side,
                        total,
                        best[1] / steps,
                        100 * best[0] / total,
                        100 * best[1] / total,
                        100 * best[2] / total,
                        total / base);
            }
        }
    }

    private static double sum(double[] t) {
        return t[0] + t[1] + t[2];
    }
}
