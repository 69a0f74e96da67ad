import ai.fluxbatch.kernel.cpu.CpuBackend;
import ai.fluxbatch.model.pipeline.FluxPipeline;
import ai.fluxbatch.model.pipeline.GenerationParams;
import ai.fluxbatch.model.pipeline.TextEmbedding;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * Seconds per image and per denoising step of the whole pipeline on the shipped miniature, at its native 64 x 64
 * and at 256 x 256, with the share of time in the text encoders, the transformer and the autoencoder.
 * The 64 x 64 figures are the baseline the 256 x 256 ones are compared with. Arguments: the snapshot, then
 * {@code images=N}, {@code warmup=N} (untimed images first at each size) and {@code reference64=S} / {@code reference256=S}, the reference's seconds per image (mean of its
 * images, denoise + decode) that bench/generate.sh measured just before; the speed-up compares that with this
 * pipeline's mean over the same number of images (text encoders included, which the reference leaves out).
 * Run with bench/generate.sh.
 */
public final class GenerateBenchmark {
    public static void main(String[] args) throws Exception {
        Path model = Path.of(args.length > 0 ? args[0] : "models/flux-shapes-dev");
        Map<String, String> options = new HashMap<>();
        for (int i = 1; i < args.length; i++) {
            String[] kv = args[i].split("=", 2);
            if (kv.length != 2) {
                throw new IllegalArgumentException("expected key=value, got " + args[i]);
            }
            options.put(kv[0], kv[1]);
        }
        int steps = 20;
        int images = Integer.parseInt(options.getOrDefault("images", "3"));
        // the JIT compiles the Vector API kernels during the first few images (about 10 s here): a bulk job's
        // executor runs long past that, so the timed images come after warmup images at each size
        int warmup = Integer.parseInt(options.getOrDefault("warmup", "3"));
        String cpu = Files.readAllLines(Path.of("/proc/cpuinfo")).stream()
                .filter(l -> l.startsWith("model name"))
                .map(l -> l.substring(l.indexOf(':') + 1).trim())
                .findFirst()
                .orElse("unknown CPU");
        System.out.println("machine: " + cpu + ", " + Runtime.getRuntime().availableProcessors() + " cores; java "
                + Runtime.version());
        try (CpuBackend backend = new CpuBackend()) {
            FluxPipeline pipeline = FluxPipeline.load(model, backend);
            System.out.println("model: " + model + " (" + pipeline.variant() + "), " + steps
                    + " steps, batch 1, best of " + images
                    + " images after " + warmup + " warm-up images; backend " + backend.name() + ", dense products: "
                    + denseProducts());
            System.out.printf(
                    "%-10s %10s %10s %8s %12s %8s %10s %13s %9s%n",
                    "size", "s/image", "s/step", "text", "transformer", "vae", "mean", "reference", "speed-up");
            double base = 0;
            for (int side : new int[] {64, 256}) {
                GenerationParams p = new GenerationParams(side, side, steps, 3.5f);
                double[] best = null;
                double all = 0;
                for (int i = 1 - warmup; i <= images; i++) {
                    long t0 = System.nanoTime();
                    TextEmbedding e = pipeline.embed("a red circle on the left " + i);
                    double text = (System.nanoTime() - t0) / 1e9;
                    FluxPipeline.Batch b = pipeline.generate(List.of(e), new long[] {1000L + warmup + i}, p, s -> {});
                    double[] t = {text, b.times().transformer(), b.times().vae()};
                    if (i > 0) {
                        all += sum(t);
                    }
                    if (i > 0 && (best == null || sum(t) < sum(best))) {
                        best = t;
                    }
                }
                double total = sum(best);
                if (base == 0) {
                    base = total;
                }
                double mean = all / images;
                String reference = options.get("reference" + side);
                System.out.printf(
                        "%-10s %10.3f %10.4f %7.1f%% %11.1f%% %7.1f%% %10.3f %13s %9s   (%.1fx the 64 x 64 time)%n",
                        side + "x" + side,
                        total,
                        best[1] / steps,
                        100 * best[0] / total,
                        100 * best[1] / total,
                        100 * best[2] / total,
                        mean,
                        reference == null ? "skipped" : reference,
                        reference == null ? "-" : String.format("%.2fx", Double.parseDouble(reference) / mean),
                        total / base);
            }
        }
    }

    /** NativeBlas's description where the kernel has it (bench/compare-commits.sh also runs older commits). */
    private static String denseProducts() {
        try {
            return (String) Class.forName("ai.fluxbatch.kernel.cpu.NativeBlas")
                    .getMethod("description")
                    .invoke(null);
        } catch (ReflectiveOperationException e) {
            return "Vector API (no NativeBlas in this kernel)";
        }
    }

    private static double sum(double[] t) {
        return t[0] + t[1] + t[2];
    }
}
