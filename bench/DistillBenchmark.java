import ai.fluxbatch.kernel.cpu.CpuBackend;
import ai.fluxbatch.model.distill.DistillSample;
import ai.fluxbatch.model.distill.DistillSettings;
import ai.fluxbatch.model.distill.GradientSums;
import ai.fluxbatch.model.distill.StudentGradients;
import ai.fluxbatch.model.distill.TeacherStudent;
import ai.fluxbatch.model.distill.TrainableParameters;
import ai.fluxbatch.model.pipeline.FluxPipeline;
import ai.fluxbatch.model.pipeline.GenerationParams;
import ai.fluxbatch.model.pipeline.TextEmbedding;
import ai.fluxbatch.model.quant.QuantizedSnapshotWriter;
import ai.fluxbatch.model.snapshot.FluxSnapshot;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * Seconds per distillation step (batch 16, 64 x 64, the shipped miniature, one process) against the baseline measured
 * in the same run: generating one image (20 transformer calls and the autoencoder), so a step reads as "images' worth
 * of compute". Text embeddings are cached after the first step, as on an executor. Run with bench/distill.sh.
 */
public final class DistillBenchmark {
    public static void main(String[] args) throws Exception {
        Path model = Path.of(args.length > 0 ? args[0] : "models/flux-shapes-dev");
        int batch = args.length > 1 ? Integer.parseInt(args[1]) : 16;
        String cpu = Files.readAllLines(Path.of("/proc/cpuinfo")).stream()
                .filter(l -> l.startsWith("model name"))
                .map(l -> l.substring(l.indexOf(':') + 1).trim())
                .findFirst()
                .orElse("unknown CPU");
        System.out.println("machine: " + cpu + ", " + Runtime.getRuntime().availableProcessors() + " cores; java "
                + Runtime.version());
        Path tmp = Files.createTempDirectory("distill-bench");
        Path student = tmp.resolve("q-absmean");
        QuantizedSnapshotWriter.write(FluxSnapshot.open(model), student, false, (g, d, t, s) -> {});
        List<String> prompts = Files.readAllLines(Path.of("../shared/prompts/shapes/train.txt"));
        try (CpuBackend backend = new CpuBackend()) {
            FluxPipeline pipeline = FluxPipeline.load(model, backend);
            GenerationParams p = new GenerationParams(64, 64, 20, 3.5f);
            TextEmbedding e = pipeline.embed(prompts.get(0));
            pipeline.generate(List.of(e), new long[] {0}, p, s -> {});
            double image = Double.MAX_VALUE;
            for (int i = 0; i < 3; i++) {
                long t0 = System.nanoTime();
                pipeline.generate(List.of(e), new long[] {i + 1}, p, s -> {});
                image = Math.min(image, (System.nanoTime() - t0) / 1e9);
            }
            System.out.printf("baseline: one 64 x 64 image, 20 steps, batch 1 (best of 3): %.3f s%n", image);
            try (StudentGradients sg = TeacherStudent.load(
                    backend,
                    FluxSnapshot.open(model),
                    FluxSnapshot.open(student),
                    new DistillSettings(64, 64, 3.5f, 512))) {
                TrainableParameters params = sg.initial();
                double[] times = pipeline.timesteps(p);
                double best = Double.MAX_VALUE, first = 0;
                for (int step = 0; step < 4; step++) {
                    List<DistillSample> samples = new ArrayList<>();
                    for (int i = 0; i < batch; i++) {
                        int k = step * batch + i;
                        samples.add(new DistillSample(
                                prompts.get(k % 32), 7919L * k, (float) times[k % (times.length - 1)]));
                    }
                    long t0 = System.nanoTime();
                    GradientSums g = sg.gradients(params, samples);
                    double s = (System.nanoTime() - t0) / 1e9;
                    if (step == 0) {
                        first = s;
                    } else {
                        best = Math.min(best, s);
                    }
                    System.out.printf("step %d: %.3f s, loss %.5f%n", step, s, g.loss() / g.samples());
                }
                System.out.printf(
                        "distill step, batch %d (first, with %d text embeddings: %.2f s): %.3f s = %.3f s per sample"
                                + " = %.2f images' worth; 300 steps: %.1f min%n",
                        batch, Math.min(batch, 32), first, best, best / batch, best / image, 300 * best / 60);
            }
        }
    }
}
