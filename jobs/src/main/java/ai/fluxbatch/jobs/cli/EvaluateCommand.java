package ai.fluxbatch.jobs.cli;

import ai.fluxbatch.jobs.eval.EvaluationReport;
import ai.fluxbatch.jobs.eval.MachineInfo;
import ai.fluxbatch.jobs.eval.ReportJson;
import ai.fluxbatch.jobs.eval.ReportMarkdown;
import ai.fluxbatch.jobs.prompts.BuiltInPrompts;
import ai.fluxbatch.jobs.prompts.PromptRow;
import ai.fluxbatch.jobs.prompts.PromptSources;
import ai.fluxbatch.kernel.Backend;
import ai.fluxbatch.kernel.BackendSelection;
import ai.fluxbatch.kernel.cpu.CpuBackend;
import ai.fluxbatch.model.eval.Architectures;
import ai.fluxbatch.model.eval.CandidateResult;
import ai.fluxbatch.model.eval.QuantizationEvaluation;
import ai.fluxbatch.model.eval.QuantizationInfo;
import ai.fluxbatch.model.flux.FluxConfig;
import ai.fluxbatch.model.pipeline.FluxPipeline;
import ai.fluxbatch.model.pipeline.GenerationParams;
import ai.fluxbatch.model.pipeline.TextEmbedding;
import ai.fluxbatch.model.snapshot.FluxSnapshot;
import java.io.IOException;
import java.io.PrintWriter;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.Callable;
import org.apache.spark.sql.SparkSession;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/** {@code fluxbatch evaluate}: how far quantized models are from full precision, on the same prompts and seeds. */
@Command(
        name = "evaluate",
        mixinStandardHelpOptions = true,
        sortOptions = false,
        description = {
            "Measure 1.58-bit models against the full-precision reference on held-out prompts, with the same"
                    + " seeds, in this JVM (no Spark job): per denoising step the relative L2 error of each candidate's"
                    + " transformer output on the reference's own inputs, the relative L2 error of its final latents, and the"
                    + " PSNR of its 8-bit images against the reference's.",
            "Prints the tables; --output FILE also writes them to FILE.md and FILE.json."
        })
public final class EvaluateCommand implements Callable<Integer> {
    @Option(
            names = "--reference",
            paramLabel = "DIR|URI",
            description = "The full-precision FLUX.1 snapshot folder, or its URI (s3a://, hdfs://, file://, copied into"
                    + " the model cache as --model is)" + " (default: the shipped " + ModelOption.EMBEDDED
                    + " miniature).")
    String reference;

    @Option(
            names = "--quantized",
            required = true,
            paramLabel = "DIR",
            description = "A quantized snapshot folder of the reference, as fluxbatch quantize writes it (repeatable).")
    List<Path> quantized = new ArrayList<>();

    @CommandLine.Mixin
    PromptOptions input;

    @CommandLine.Mixin
    ImageOptions image;

    @Option(
            names = "--seed",
            defaultValue = "1000",
            description = "Prompt i is denoised from seed + i" + " (default: ${DEFAULT-VALUE}).")
    long seed;

    @Option(
            names = "--batch-size",
            defaultValue = "4",
            paramLabel = "N",
            description = "Prompts denoised together (default: ${DEFAULT-VALUE}).")
    int batchSize;

    @Option(
            names = "--output",
            paramLabel = "FILE",
            description = "Also write the report to FILE.md and FILE.json"
                    + " (a .md or .json ending given here is dropped first).")
    Path output;

    @CommandLine.Mixin
    DeviceOption device;

    @CommandLine.Spec
    CommandLine.Model.CommandSpec spec;

    @Override
    public Integer call() {
        CommandLine cli = spec.commandLine();
        PrintWriter err = cli.getErr();
        input.check(cli);
        BackendSelection.Decision decision = device.select("evaluate", err);
        OptionChecks.positive(cli, "--batch-size", batchSize);
        OptionChecks.seed(cli, seed);
        Path ref = (reference != null
                        ? ModelOption.Located.of(cli, "--reference", reference).folder()
                        : ModelOption.embedded())
                .toAbsolutePath()
                .normalize();
        folder("--reference", ref);
        for (Path q : quantized) {
            folder("--quantized", q);
        }
        FluxSnapshot refSnapshot = FluxSnapshot.open(ref);
        GenerationParams params = image.params(cli, refSnapshot);
        int length = image.maxSequenceLength(cli, refSnapshot);
        if (output != null) {
            for (Path report : reportFiles()) {
                OutputFiles.check(cli, "--output", report, promptFile());
                OutputFiles.checkOutside(cli, "--output", report, "--reference", ref);
                for (Path q : quantized) {
                    OutputFiles.checkOutside(cli, "--output", report, "--quantized", q);
                }
            }
        }

        err.printf("evaluate: %s%n", image.describe(params, length));
        QuantizationInfo refQuantization = checkModels(ref, err);
        Prompts chosen = prompts();
        OptionChecks.seedRange(
                cli, seed, chosen.texts.size(), chosen.texts.size() + " prompts (prompt i uses seed + i)");
        err.printf(
                Locale.ROOT,
                "evaluate: %d prompts (%d skipped), %d candidates against %s%n",
                chosen.texts.size(),
                chosen.skipped,
                quantized.size(),
                ref);

        try (Backend backend = device.open("evaluate", decision, err, CpuBackend::new)) {
            long t0 = System.nanoTime();
            FluxPipeline refPipeline = FluxPipeline.load(ref, backend);
            List<FluxPipeline> candidates = new ArrayList<>();
            for (Path q : quantized) {
                candidates.add(FluxPipeline.load(q.toAbsolutePath().normalize(), backend));
            }
            List<TextEmbedding> embeddings = new ArrayList<>();
            long[] seeds = new long[chosen.texts.size()];
            for (int i = 0; i < seeds.length; i++) {
                embeddings.add(refPipeline.embed(chosen.texts.get(i), length));
                seeds[i] = seed + i;
            }
            long t1 = System.nanoTime();
            List<CandidateResult> results = new QuantizationEvaluation(refPipeline, candidates, backend)
                    .run(
                            embeddings,
                            seeds,
                            params,
                            batchSize,
                            (done, total) -> err.printf(
                                    Locale.ROOT,
                                    "evaluate: %d of %d prompts, %.1f s%n",
                                    done,
                                    total,
                                    (System.nanoTime() - t1) / 1e9));
            long t2 = System.nanoTime();
            EvaluationReport report = new EvaluationReport(
                    ref,
                    refQuantization,
                    MachineInfo.current(),
                    seeds.length,
                    chosen.skipped,
                    seed,
                    params,
                    length,
                    batchSize,
                    refPipeline.timesteps(params),
                    (t1 - t0) / 1e9,
                    (t2 - t1) / 1e9,
                    results);
            String markdown = ReportMarkdown.render(report);
            cli.getOut().print(markdown);
            cli.getOut().flush();
            if (output != null) {
                write(report, markdown, err);
            }
        }
        return 0;
    }

    /** Header-only checks before any weight is loaded: every snapshot complete, every candidate the same architecture. */
    private QuantizationInfo checkModels(Path ref, PrintWriter err) {
        FluxPipeline.checkComponents(ref);
        QuantizationInfo refQuantization = QuantizationInfo.of(ref);
        if (refQuantization.quantized()) {
            err.printf(
                    Locale.ROOT,
                    "evaluate: warning: the reference %s is itself quantized (%s, %.0f %% ternary):"
                            + " errors are measured against it, not against full precision%n",
                    ref,
                    refQuantization.method(),
                    100 * refQuantization.ternaryFraction());
        }
        FluxConfig refConfig = Architectures.read(ref);
        for (Path q : quantized) {
            Architectures.requireSame(ref, refConfig, q, Architectures.read(q));
        }
        for (Path q : quantized) {
            FluxPipeline.checkComponents(q);
        }
        return refQuantization;
    }

    private record Prompts(List<String> texts, int skipped) {}

    private Prompts prompts() {
        List<String> texts = new ArrayList<>();
        int skipped = 0;
        for (String p : input.prompts) {
            if (p.isBlank()) {
                skipped++;
            } else {
                texts.add(p);
            }
        }
        if (input.uri != null && BuiltInPrompts.isName(input.uri)) {
            texts.addAll(BuiltInPrompts.prompts(input.uri));
        } else if (input.uri != null) {
            // PromptSources reads through a Spark session's Hadoop configuration (and Parquet through Spark itself);
            // the session lives only while the file is read
            SparkSession spark = SparkSessions.create("fluxbatch evaluate", null);
            try {
                for (PromptRow r : PromptSources.read(input.uri, input.column, spark)) {
                    if (r.error() != null) {
                        skipped++;
                    } else {
                        texts.add(r.prompt());
                    }
                }
            } finally {
                spark.stop();
            }
        }
        if (input.limit != null && texts.size() > input.limit) {
            texts = texts.subList(0, input.limit);
        }
        if (texts.isEmpty()) {
            throw new CommandLine.ParameterException(
                    spec.commandLine(), "no usable prompts: all " + skipped + " were empty or bad rows");
        }
        return new Prompts(texts, skipped);
    }

    /** FILE.md and FILE.json of --output FILE. */
    private List<Path> reportFiles() {
        String base = output.toString().replaceFirst("\\.(md|json)$", "");
        return List.of(Path.of(base + ".md"), Path.of(base + ".json"));
    }

    /** --prompts as a local file, the one input a report could be written over. */
    private OutputFiles.Input promptFile() {
        return new OutputFiles.Input(
                "--prompts",
                input.uri == null || input.uri.contains("://") || BuiltInPrompts.isName(input.uri)
                        ? null
                        : Path.of(input.uri));
    }

    private void write(EvaluationReport report, String markdown, PrintWriter err) {
        Path md = reportFiles().get(0), json = reportFiles().get(1);
        try {
            Path parent = md.toAbsolutePath().getParent();
            if (parent != null) {
                Files.createDirectories(parent);
            }
            OutputFiles.writeString(md, "# fluxbatch evaluate\n\n" + markdown);
            OutputFiles.writeString(json, ReportJson.render(report));
        } catch (IOException e) {
            throw new UncheckedIOException(
                    "cannot write the report to " + md + " and " + json + ": " + e.getMessage(), e);
        }
        err.printf("evaluate: report written to %s and %s%n", md, json);
    }

    private void folder(String option, Path dir) {
        if (!Files.isDirectory(dir)) {
            throw new CommandLine.ParameterException(
                    spec.commandLine(),
                    option + " " + dir + ": " + (Files.exists(dir) ? "is a file" : "no such folder")
                            + ", expected a FLUX.1 snapshot folder");
        }
    }
}
