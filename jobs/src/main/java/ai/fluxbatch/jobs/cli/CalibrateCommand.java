package ai.fluxbatch.jobs.cli;

import ai.fluxbatch.jobs.calibrate.CalibrateJob;
import ai.fluxbatch.jobs.calibrate.CalibratePrompt;
import ai.fluxbatch.jobs.calibrate.CalibrateSettings;
import ai.fluxbatch.jobs.calibrate.CalibrationMetadata;
import ai.fluxbatch.jobs.calibrate.CalibrationPartial;
import ai.fluxbatch.jobs.calibrate.RecordedLayers;
import ai.fluxbatch.jobs.calibrate.StatisticsOutput;
import ai.fluxbatch.jobs.calibrate.StepSelection;
import ai.fluxbatch.jobs.prompts.BuiltInPrompts;
import ai.fluxbatch.jobs.prompts.PromptRow;
import ai.fluxbatch.model.pipeline.FluxPipeline;
import ai.fluxbatch.model.pipeline.GenerationParams;
import ai.fluxbatch.model.snapshot.FluxSnapshot;
import java.io.PrintWriter;
import java.net.URI;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.Callable;
import java.util.regex.Pattern;
import java.util.regex.PatternSyntaxException;
import org.apache.hadoop.conf.Configuration;
import org.apache.spark.network.util.JavaUtils;
import org.apache.spark.sql.SparkSession;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/** {@code fluxbatch calibrate}: per-layer activation statistics of the full-precision model, as a Spark job. */
@Command(
        name = "calibrate",
        mixinStandardHelpOptions = true,
        sortOptions = false,
        description = {
            "Record what the linear layers of a full-precision FLUX.1 transformer see along the sampling"
                    + " trajectory of calibration prompts, as a Spark job (local mode unless --master or spark-submit).",
            "Per quantizable layer: token count, per-input-channel sum, sum of squares and absolute maximum, and with"
                    + " --gram the Gram matrix, merged over all executors into one statistics file for 'fluxbatch"
                    + " quantize'."
        })
public final class CalibrateCommand implements Callable<Integer> {
    private static final double MIB = 1024.0 * 1024;

    @CommandLine.Mixin
    ModelOption model;

    @CommandLine.Mixin
    PromptOptions input;

    @CommandLine.Mixin
    ImageOptions image;

    @Option(
            names = "--output",
            required = true,
            paramLabel = "FILE|URI",
            description = "The statistics file, e.g. stats.safetensors, or a file:// hdfs:// s3a:// URI.")
    String output;

    @Option(names = "--overwrite", description = "Replace an existing statistics file.")
    boolean overwrite;

    @Option(
            names = "--timesteps",
            paramLabel = "LIST",
            description = "The steps recorded, 0-based indices and" + " ranges such as 0,5,10 or 0-9 (default: all).")
    String timesteps;

    @Option(
            names = "--seed",
            defaultValue = "0",
            description = "Prompt i's noise uses seed + i unless the dataset has a"
                    + " seed column (default: ${DEFAULT-VALUE}).")
    long seed;

    @Option(
            names = "--gram",
            description = "Also record each layer's Gram matrix sum(x x^T): in x in x 4 bytes per"
                    + " layer, held by every executor and the driver (0.9 GB for a 15360-input layer of FLUX.1-dev, about"
                    + " 67 GB for all its layers: calibrate the blocks in several runs with --layers).")
    boolean gram;

    @Option(
            names = "--layers",
            paramLabel = "REGEX",
            description = "Record only the quantizable layers whose name the"
                    + " regular expression finds a match in, e.g. '^double_blocks\\.[0-9]\\.' (default: all). The way to"
                    + " bound executor and driver memory with --gram on full-size models.")
    String layers;

    @Option(
            names = "--max-stats-memory",
            paramLabel = "SIZE",
            description = "Refuse to start when one partial result"
                    + " of the statistics would take more than this, e.g. 8g or 512m (default: half the driver's maximum"
                    + " heap).")
    String maxStatsMemory;

    @Option(
            names = "--batch-size",
            defaultValue = "4",
            paramLabel = "N",
            description = "Images denoised together (default: ${DEFAULT-VALUE}).")
    int batchSize;

    @Option(
            names = "--prompts-per-partition",
            defaultValue = "16",
            paramLabel = "N",
            description = "Prompts per Spark partition (default: ${DEFAULT-VALUE}).")
    int promptsPerPartition;

    @Option(
            names = "--master",
            paramLabel = "URL",
            description = "Spark master (default: local mode, or what" + " spark-submit set).")
    String master;

    @CommandLine.Mixin
    DeviceOption device;

    @CommandLine.Spec
    CommandLine.Model.CommandSpec spec;

    @Override
    public Integer call() throws java.io.IOException {
        CommandLine cli = spec.commandLine();
        input.check(cli);
        OptionChecks.noCredentials(cli, "--output", output);
        device.checkForSpark("calibrate", master, cli.getErr());
        FluxSnapshot snapshot = FluxSnapshot.open(model.resolve().toAbsolutePath());
        if (snapshot.layoutNote() != null) {
            cli.getErr().println("calibrate: " + snapshot.layoutNote());
        }
        CalibrateSettings settings = validate(snapshot);
        cli.getErr().printf("calibrate: %s%n", image.describe(settings.params(), settings.maxSequenceLength()));
        RecordedLayers recorded = RecordedLayers.of(snapshot, settings); // refuses a quantized model
        FluxPipeline.checkComponents(snapshot.root());
        long statsBytes = recorded.statsBytes(gram);
        PrintWriter err = cli.getErr();
        err.printf(
                Locale.ROOT,
                "calibrate: statistics take %.1f MiB per partial result (%d layers, gram %s)%n",
                statsBytes / MIB,
                recorded.count(),
                gram ? "on" : "off");
        checkStatsMemory(statsBytes);
        if (!output.contains("://")) {
            new StatisticsOutput(output, new Configuration(false), overwrite).check(); // before Spark starts
        }
        Path local = localPath(output);
        if (local != null) {
            OutputFiles.check(
                    cli,
                    "--output",
                    local,
                    new OutputFiles.Input(
                            "--prompts",
                            input.uri == null || BuiltInPrompts.isName(input.uri) ? null : localPath(input.uri)));
            OutputFiles.checkOutside(cli, "--output", local, "--model", snapshot.root());
        }
        try (SparkSession spark = SparkSessions.create("fluxbatch calibrate", master)) {
            Configuration hadoop = spark.sparkContext().hadoopConfiguration();
            StatisticsOutput out = new StatisticsOutput(output, hadoop, overwrite);
            out.check();
            checkResultSize(spark, statsBytes);
            List<PromptRow> rows = input.rows(spark, cli);
            OptionChecks.seedRange(cli, seed, rows.size(), rows.size() + " prompts (prompt i uses seed + i)");
            List<CalibratePrompt> work = new ArrayList<>();
            List<PromptRow> bad = new ArrayList<>();
            for (int i = 0; i < rows.size(); i++) {
                PromptRow r = rows.get(i);
                if (r.error() != null) {
                    bad.add(r);
                } else {
                    work.add(new CalibratePrompt(i, r.prompt(), r.seed() != null ? r.seed() : seed + i));
                }
            }
            reportSkipped(bad);
            if (work.isEmpty()) {
                throw new IllegalArgumentException(
                        "no valid prompts to calibrate with: all " + rows.size() + " rows are bad");
            }
            err.printf(
                    "calibrate: %d prompts x %d of %d steps with %s -> %s%n",
                    work.size(), settings.recordedSteps().count(), settings.steps(), snapshot.root(), output);
            long t0 = System.nanoTime();
            CalibrationPartial result = CalibrateJob.run(spark, work, settings, promptsPerPartition, err);
            reportFailed(result);
            if (result.stats().isEmpty()) {
                throw new IllegalArgumentException("no statistics recorded: all " + work.size() + " prompts failed"
                        + (result.errors().isEmpty()
                                ? ""
                                : " (first: " + result.errors().get(0) + ")"));
            }
            String label = input.label();
            String written = out.write(
                    result.stats(),
                    CalibrationMetadata.of(
                            settings,
                            snapshot.transformerFingerprint(),
                            label,
                            seed,
                            result,
                            bad.size(),
                            Version.get()));
            double seconds = (System.nanoTime() - t0) / 1e9;
            cli.getOut()
                    .printf(
                            Locale.ROOT,
                            "calibrate: %d prompts, %d layers, %d tokens in %.1f s (%.2f prompts/s)" + " -> %s%n",
                            result.prompts(),
                            result.stats().layers().size(),
                            result.stats().tokens(),
                            seconds,
                            result.prompts() / Math.max(seconds, 1e-9),
                            written);
            return 0;
        }
    }

    /** {@code location} as a local path: a plain path or a file: URI; null for other schemes. */
    private static Path localPath(String location) {
        if (!location.contains("://")) {
            return Path.of(location);
        }
        return location.startsWith("file:") ? Path.of(URI.create(location.replace(" ", "%20"))) : null;
    }

    /** Every check that needs no Spark and no model weights, before any work. */
    private CalibrateSettings validate(FluxSnapshot snapshot) {
        CommandLine cli = spec.commandLine();
        OptionChecks.positive(cli, "--batch-size", batchSize);
        OptionChecks.positive(cli, "--prompts-per-partition", promptsPerPartition);
        OptionChecks.seed(cli, seed);
        if (layers != null) {
            try {
                Pattern.compile(layers);
            } catch (PatternSyntaxException e) {
                throw new CommandLine.ParameterException(
                        cli, "--layers " + layers + " is not a regular expression: " + e.getDescription());
            }
        }
        GenerationParams p = image.params(cli, snapshot);
        int length = image.maxSequenceLength(cli, snapshot);
        int n = p.steps();
        try {
            StepSelection recorded = timesteps == null ? StepSelection.all(n) : StepSelection.parse(timesteps, n);
            return new CalibrateSettings(
                    model.location(snapshot.root()),
                    gram,
                    layers,
                    p.height(),
                    p.width(),
                    n,
                    p.guidance(),
                    length,
                    batchSize,
                    recorded,
                    device.requested(),
                    device.gemmPrecision());
        } catch (IllegalArgumentException e) {
            throw new CommandLine.ParameterException(cli, e.getMessage());
        }
    }

    private void checkStatsMemory(long statsBytes) {
        long limit;
        if (maxStatsMemory == null) {
            limit = Runtime.getRuntime().maxMemory() / 2;
        } else {
            try {
                limit = JavaUtils.byteStringAsBytes(maxStatsMemory);
            } catch (NumberFormatException e) {
                throw new CommandLine.ParameterException(
                        spec.commandLine(),
                        "--max-stats-memory " + maxStatsMemory
                                + " is not a size: expected a number with a unit such as 512m or 8g");
            }
        }
        if (statsBytes > limit) {
            throw new CommandLine.ParameterException(
                    spec.commandLine(),
                    String.format(
                            Locale.ROOT,
                            "the statistics would take %.1f MiB per partial result, more than the %.1f MiB --max-stats-memory"
                                    + " allows%s: record fewer layers per run with --layers REGEX (e.g. one block range at a"
                                    + " time)%s, or raise --max-stats-memory with the driver and executor memory",
                            statsBytes / MIB,
                            limit / MIB,
                            maxStatsMemory == null ? " (half the driver's heap)" : "",
                            gram ? " or leave out --gram" : ""));
        }
    }

    /** The driver receives one partial result; Spark refuses task results larger than spark.driver.maxResultSize. */
    private void checkResultSize(SparkSession spark, long statsBytes) {
        String setting = spark.sparkContext().getConf().get("spark.driver.maxResultSize", "1g");
        long max = JavaUtils.byteStringAsBytes(setting);
        if (max > 0 && statsBytes > max) {
            throw new CommandLine.ParameterException(
                    spec.commandLine(),
                    String.format(
                            Locale.ROOT,
                            "the statistics would take %.1f MiB, more than spark.driver.maxResultSize (%s) lets the driver"
                                    + " receive: record fewer layers per run with --layers REGEX, or raise it (--conf"
                                    + " spark.driver.maxResultSize=... with spark-submit)",
                            statsBytes / MIB,
                            setting));
        }
    }

    private void reportSkipped(List<PromptRow> bad) {
        if (bad.isEmpty()) {
            return;
        }
        PrintWriter out = spec.commandLine().getOut();
        out.printf("calibrate: skipped %d bad prompt rows%n", bad.size());
        for (PromptRow r : bad.subList(0, Math.min(bad.size(), 10))) {
            out.printf("skipped  %s row %d: %s%n", r.source(), r.row(), r.error());
        }
    }

    private void reportFailed(CalibrationPartial result) {
        if (result.failed() == 0) {
            return;
        }
        PrintWriter out = spec.commandLine().getOut();
        out.printf("calibrate: %d prompts failed and are not in the statistics%n", result.failed());
        for (String e : result.errors()) {
            out.printf("error    %s%n", e);
        }
    }
}
