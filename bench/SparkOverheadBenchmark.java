import ai.fluxbatch.jobs.generate.GenerateJob;
import ai.fluxbatch.jobs.generate.GenerateSettings;
import ai.fluxbatch.jobs.generate.ImageResult;
import ai.fluxbatch.jobs.generate.ImageTask;
import ai.fluxbatch.jobs.generate.OutputLayout;
import ai.fluxbatch.jobs.prompts.PromptRow;
import ai.fluxbatch.kernel.cpu.CpuBackend;
import ai.fluxbatch.model.image.PngEncoder;
import ai.fluxbatch.model.pipeline.FluxPipeline;
import ai.fluxbatch.model.pipeline.GenerationParams;
import ai.fluxbatch.model.pipeline.TextEmbedding;
import ai.fluxbatch.model.snapshot.FluxSnapshot;
import java.io.PrintWriter;
import java.io.Writer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;
import org.apache.logging.log4j.Level;
import org.apache.logging.log4j.core.config.Configurator;
import org.apache.spark.sql.SparkSession;

/**
 * Images per second at the miniature size (the shipped model, 64 x 64, 4 steps, 16 images, batch 1) made three ways
 * in one JVM: the pipeline called directly in one process (embed, denoise, decode, PNG encode: what GenerateBenchmark
 * times, plus the PNG), and the Spark generate job (GenerateJob: partitions of 4 images, PNGs written to a local
 * folder, the metadata table as Parquet and jsonl) in local mode with one task slot (local[1]) and with two
 * (local[2], spark.task.cpus=1: two tasks at once in one JVM, sharing its one engine). Spark overhead is the Spark
 * job's time over the direct time for the same images. Each figure is the best of 2 timed runs after a warm-up run;
 * the Spark session's start and the first run (which loads the engine) are reported apart. Run with
 * bench/spark-overhead.sh.
 */
public final class SparkOverheadBenchmark {
    private static final int IMAGES = 16;
    private static final int STEPS = 4;
    private static final int SIDE = 64;
    private static final int IMAGES_PER_PARTITION = 4;
    private static final int RUNS = 2;

    public static void main(String[] args) throws Exception {
        Path model =
                Path.of(args.length > 0 ? args[0] : "models/flux-shapes-dev").toAbsolutePath();
        String cpu = Files.readAllLines(Path.of("/proc/cpuinfo")).stream()
                .filter(l -> l.startsWith("model name"))
                .map(l -> l.substring(l.indexOf(':') + 1).trim())
                .findFirst()
                .orElse("unknown CPU");
        System.out.println("machine: " + cpu + ", " + Runtime.getRuntime().availableProcessors() + " cores; java "
                + Runtime.version() + "; Spark " + org.apache.spark.package$.MODULE$.SPARK_VERSION());
        List<String> prompts = new ArrayList<>();
        String[] colours = {"red", "green", "blue", "yellow"};
        String[] shapes = {"circle", "square", "triangle", "star"};
        for (int i = 0; i < IMAGES; i++) {
            prompts.add("a " + colours[i % 4] + " " + shapes[i / 4] + " on the left");
        }
        System.out.printf(
                "model: %s, %dx%d, %d steps, guidance 3.5, batch 1, %d images (%d prompts x 1);"
                        + " best of %d runs after a warm-up run%n",
                model, SIDE, SIDE, STEPS, IMAGES, IMAGES, RUNS);

        Map<String, Double> seconds = new LinkedHashMap<>();
        GenerationParams params = new GenerationParams(SIDE, SIDE, STEPS, 3.5f);
        try (CpuBackend backend = new CpuBackend()) {
            FluxPipeline pipeline = FluxPipeline.load(model, backend);
            System.out.println("backend: " + backend.name());
            double best = Double.MAX_VALUE;
            for (int run = 0; run <= RUNS; run++) {
                long t0 = System.nanoTime();
                for (int i = 0; i < IMAGES; i++) {
                    TextEmbedding e = pipeline.embed(prompts.get(i));
                    FluxPipeline.Batch b = pipeline.generate(List.of(e), new long[] {i}, params, s -> {});
                    PngEncoder.encode(b.images().get(0), Map.of("prompt", prompts.get(i)));
                }
                double t = (System.nanoTime() - t0) / 1e9;
                if (run > 0) {
                    best = Math.min(best, t);
                }
            }
            seconds.put("pipeline, one process", best);
        }

        FluxSnapshot snapshot = FluxSnapshot.open(model);
        List<ImageTask> tasks = new ArrayList<>();
        for (int i = 0; i < IMAGES; i++) {
            tasks.add(ImageTask.of(
                    new PromptRow(i, "bench", i, prompts.get(i), new LinkedHashMap<>(), null, null), 0, i));
        }
        Path out = Files.createTempDirectory("spark-overhead");
        GenerateSettings settings = new GenerateSettings(
                model.toString(),
                snapshot.transformerFingerprint(),
                snapshot.quantizationMethod(),
                out.toUri().toString(),
                OutputLayout.DEFAULT,
                SIDE,
                SIDE,
                STEPS,
                3.5f,
                snapshot.t5MaxLength(),
                1,
                true, // overwrite: every run makes every image
                ai.fluxbatch.kernel.DeviceKind.CPU,
                ai.fluxbatch.kernel.cuda.GemmPrecision.FP32);
        PrintWriter quiet = new PrintWriter(Writer.nullWriter());
        List<String> notes = new ArrayList<>();
        try {
            for (int slots : new int[] {1, 2}) {
                long s0 = System.nanoTime();
                SparkSession spark = SparkSession.builder()
                        .appName("spark-overhead")
                        .master("local[" + slots + "]")
                        .config("spark.task.cpus", "1")
                        .config("spark.ui.enabled", "false")
                        .config("spark.driver.host", "127.0.0.1")
                        .getOrCreate();
                Configurator.setLevel("ai.fluxbatch", Level.WARN); // no line per image (Spark reloads the config)
                double start = (System.nanoTime() - s0) / 1e9;
                double best = Double.MAX_VALUE, first = 0;
                for (int run = 0; run <= RUNS; run++) {
                    long t0 = System.nanoTime();
                    List<ImageResult> results = GenerateJob.run(spark, tasks, settings, IMAGES_PER_PARTITION, quiet);
                    double t = (System.nanoTime() - t0) / 1e9;
                    long ok = results.stream()
                            .filter(r -> r.status().equals(ImageResult.OK))
                            .count();
                    if (ok != IMAGES) {
                        throw new IllegalStateException(ok + " of " + IMAGES + " images made: " + results);
                    }
                    if (run == 0) {
                        first = t;
                    } else {
                        best = Math.min(best, t);
                    }
                }
                spark.stop();
                seconds.put("Spark local[" + slots + "]", best);
                notes.add(String.format(
                        "local[%d]: session start %.2f s, first run %.2f s%s",
                        slots,
                        start,
                        first,
                        slots == 1 ? " (loads the engine)" : " (engine already loaded in this JVM)"));
            }
        } finally {
            try (Stream<Path> s = Files.walk(out)) {
                s.sorted(Comparator.reverseOrder()).forEach(p -> p.toFile().delete());
            }
        }

        double direct = seconds.get("pipeline, one process");
        System.out.printf(
                "%-24s %10s %10s %10s %22s%n", "how", "seconds", "images/s", "s/image", "Spark overhead (time)");
        seconds.forEach((how, t) -> System.out.printf(
                "%-24s %10.2f %10.3f %10.3f %22s%n",
                how,
                t,
                IMAGES / t,
                t / IMAGES,
                how.startsWith("Spark") ? String.format("%.2fx", t / direct) : "(baseline)"));
        System.out.println("Spark job: " + IMAGES / IMAGES_PER_PARTITION + " partitions of " + IMAGES_PER_PARTITION
                + " images, PNGs to a local folder, metadata table (Parquet + jsonl) included; "
                + String.join("; ", notes));
    }
}
