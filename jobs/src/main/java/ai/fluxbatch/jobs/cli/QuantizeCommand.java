package ai.fluxbatch.jobs.cli;

import ai.fluxbatch.jobs.eval.ReportQuality;
import ai.fluxbatch.jobs.quantize.QuantizeJob;
import ai.fluxbatch.jobs.quantize.QuantizeSettings;
import ai.fluxbatch.model.ModelException;
import ai.fluxbatch.model.Sha256;
import ai.fluxbatch.model.calib.CalibrationFile;
import ai.fluxbatch.model.quant.AbsmeanQuantizer;
import ai.fluxbatch.model.quant.CheckpointQuantizer;
import ai.fluxbatch.model.quant.LayerQuantizer;
import ai.fluxbatch.model.quant.ModelCard;
import ai.fluxbatch.model.quant.QuantizationConfig;
import ai.fluxbatch.model.quant.QuantizeMethods;
import ai.fluxbatch.model.quant.QuantizeProgress;
import ai.fluxbatch.model.quant.QuantizeRecipe;
import ai.fluxbatch.model.quant.QuantizedSnapshotWriter;
import ai.fluxbatch.model.quant.TernaryFormat;
import ai.fluxbatch.model.safetensors.TensorSource;
import ai.fluxbatch.model.snapshot.FluxSnapshot;
import java.io.IOException;
import java.io.PrintWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.Callable;
import java.util.stream.Collectors;
import org.apache.spark.SparkException;
import org.apache.spark.sql.SparkSession;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/** {@code fluxbatch quantize}: a FLUX.1 snapshot to a 1.58-bit snapshot. */
@Command(
        name = "quantize",
        mixinStandardHelpOptions = true,
        sortOptions = false,
        description = {
            "Quantize every block weight of a FLUX.1 transformer to ternary codes {-1, 0, +1} with per-output-channel"
                    + " scales (1.58-bit), streaming tensor by tensor (memory bounded by the largest tensor).",
            "The output folder is a snapshot that --model accepts: the quantized transformer, transformer/config.json"
                    + " with a quantization_config, a README.md model card, and the source files it runs with (configs,"
                    + " text encoders, tokenizers, scheduler, autoencoder, licence; hard-linked where possible); never"
                    + " a full-precision transformer file. What it leaves out is listed.",
            "With --master (or under spark-submit) the blocks are spread over Spark executors: each writes its blocks as"
                    + " one shard, NAME-0000K-of-0000N.safetensors, and the driver indexes them in NAME.index.json; the"
                    + " tensors and metadata are those of a one-process run, byte for byte."
        })
public final class QuantizeCommand implements Callable<Integer> {
    @CommandLine.Mixin
    ModelOption model;

    @Option(names = "--output", required = true, paramLabel = "DIR", description = "The quantized snapshot folder.")
    Path output;

    @Option(
            names = "--method",
            paramLabel = "M",
            completionCandidates = Methods.class,
            description = {
                "Quantization method: ${COMPLETION-CANDIDATES}. absmean needs nothing; refit (absmean codes,"
                        + " least-squares scales) and gptq (error-compensating, ternary GPTQ; needs calibrate --gram) read"
                        + " --calibration statistics and move the mean error into the bias.",
                "Default: " + QuantizeMethods.BEST_CALIBRATED + " with --calibration, else absmean."
            })
    String method;

    @Option(
            names = "--calibration",
            paramLabel = "STATS",
            split = ",",
            description =
                    "Activation statistics from fluxbatch calibrate (local files, as calibrate --output wrote them) for the calibrated methods;"
                            + " several (repeated or comma-separated) are merged, e.g. one per --layers run.")
    List<Path> calibration = new ArrayList<>();

    @Option(
            names = "--layers",
            paramLabel = "REGEX",
            description = {
                "Quantize only the block layers whose name matches"
                        + " (e.g. 'double_blocks\\.[0-4]\\..*'); the others stay as they are. The input may be partly quantized"
                        + " already (same method): its ternary layers are copied. Repeated with calibrate on each partial result,"
                        + " this is sequential calibration: each layer's statistics come from the quantized layers before it."
            })
    String layers;

    @Option(
            names = "--overwrite",
            description = {
                "Replace the output folder if it exists (only once the new one is"
                        + " complete) and fluxbatch quantize made it (it holds a " + OutputFolders.MARKER + " file)."
            })
    boolean overwrite;

    @Option(
            names = "--master",
            paramLabel = "URL",
            description = {
                "Spark master (spark://host:7077, local[N], ...): spread the blocks over its executors, one task and one"
                        + " shard per block. --calibration and --output (and --model, unless it is a URI, which each node"
                        + " copies into its model cache) must then lie on a file system that every executor mounts at the"
                        + " same path. Default: one process, one file (or spread under"
                        + " spark-submit, over the master it set)."
            })
    String master;

    @Option(
            names = "--evaluation",
            paramLabel = "REPORT",
            description = {
                "A report of fluxbatch evaluate (the FILE.json of its --output FILE) that measured this quantization"
                        + " (same --method and --calibration) against --model: its figures go into the output's"
                        + " README.md model card. Without it the card says that quality was not measured."
            })
    Path evaluation;

    @CommandLine.Spec
    CommandLine.Model.CommandSpec spec;

    static final class Methods extends java.util.ArrayList<String> {
        Methods() {
            super(QuantizeMethods.names());
        }
    }

    @Override
    public Integer call() throws IOException {
        String chosen = method != null
                ? method
                : !calibration.isEmpty() ? QuantizeMethods.BEST_CALIBRATED : AbsmeanQuantizer.METHOD;
        if (!new Methods().contains(chosen)) {
            throw new CommandLine.ParameterException(
                    spec.commandLine(), "--method is '" + chosen + "', expected one of " + new Methods());
        }
        LayerQuantizer quantizer = QuantizeMethods.byName(chosen);
        if (quantizer.needsStatistics() && calibration.isEmpty()) {
            throw new CommandLine.ParameterException(
                    spec.commandLine(),
                    "--method " + chosen + " needs --calibration" + " STATS: run fluxbatch calibrate"
                            + (quantizer.needsGram() ? " --gram" : "") + " first");
        }
        PrintWriter err = spec.commandLine().getErr();
        Path source = model.resolve();
        OutputFolders.check(spec.commandLine(), "--output", output, overwrite, "--model", source);
        FluxSnapshot snapshot = FluxSnapshot.open(source);
        if (snapshot.layoutNote() != null) {
            err.println("quantize: " + snapshot.layoutNote());
        }
        if (!quantizer.needsStatistics() && !calibration.isEmpty()) {
            err.println("quantize: --method " + chosen + " does not read --calibration; " + calibration + " is unused");
        }
        if (layers != null) {
            try {
                java.util.regex.Pattern.compile(layers);
            } catch (java.util.regex.PatternSyntaxException e) {
                throw new CommandLine.ParameterException(
                        spec.commandLine(), "--layers is not a regular expression: " + e.getMessage());
            }
        }
        ModelCard.Notes notes = notes(source, snapshot, chosen);
        if (master != null || System.getProperty("spark.master") != null) {
            return spread(snapshot, quantizer, notes, err);
        }
        QuantizeRecipe recipe = QuantizeRecipe.ABSMEAN;
        if (quantizer.needsStatistics()) {
            CalibrationFile.Contents stats = CalibrationFile.readAll(calibration);
            recipe = new QuantizeRecipe(
                    quantizer, stats.stats(), statsNames(), Sha256.ofFiles(calibration), stats.metadata());
        }
        if (layers != null) {
            recipe = recipe.forLayers(layers);
        }
        err.printf(
                Locale.ROOT,
                "quantize: method %s%s%n",
                chosen,
                calibration.isEmpty() ? "" : ", statistics " + calibration);
        long start = System.nanoTime();
        QuantizeProgress progress = (group, done, total, seconds) -> {
            double rate = done / Math.max(seconds, 1e-9);
            err.printf(
                    Locale.ROOT,
                    "quantize: %-18s %s of %s (%.1f%%), %s/s, ETA %s%n",
                    group,
                    bytes(done),
                    bytes(total),
                    100.0 * done / total,
                    bytes((long) rate),
                    eta((total - done) / Math.max(rate, 1)));
        };
        assemble(snapshot, QuantizedSnapshotWriter.quantizing(snapshot, progress, recipe), notes, err);
        OutputFolders.mark(output, "quantize");
        err.printf(Locale.ROOT, "quantize: %s written in %.1f s%n", output, (System.nanoTime() - start) / 1e9);
        return 0;
    }

    /**
     * Writes the output snapshot, the one way both paths do ({@link QuantizedSnapshotWriter}: the files it carries,
     * the transformer config, the model card), and prints what it left out of the source.
     */
    private void assemble(
            FluxSnapshot snapshot,
            QuantizedSnapshotWriter.TransformerWriter transformer,
            ModelCard.Notes notes,
            PrintWriter err) {
        QuantizedSnapshotWriter.Written written = QuantizedSnapshotWriter.write(
                snapshot,
                output,
                overwrite,
                transformer,
                rel -> rel.toString().equals(OutputFolders.MARKER), // the source's own marker, if fluxbatch made it
                QuantizedSnapshotWriter.Extras.NONE,
                notes);
        err.println("quantize: " + written.leftOutLine());
    }

    /**
     * What the model card says beyond the files: the source as given, and the figures of --evaluation, which is
     * checked here, before any work, against what this run will record (method, calibration, ternary parameters, from
     * the options and the source's header), and again against what the written checkpoint records.
     */
    private ModelCard.Notes notes(Path source, FluxSnapshot snapshot, String chosen) {
        String uri = model.uri(); // the model card names the source as the user gave it: the URI, not the cached copy
        String label = Redact.uri(
                uri != null ? uri : source.toAbsolutePath().normalize().toString());
        if (evaluation == null) {
            return new ModelCard.Notes(label, (metadata, written) -> List.of());
        }
        ReportQuality.lines(evaluation, source, expectedQuantization(snapshot, chosen));
        return new ModelCard.Notes(
                label,
                (metadata, written) -> ReportQuality.lines(
                        evaluation,
                        source,
                        new ReportQuality.Quantization(
                                metadata.get(TernaryFormat.KEY_METHOD),
                                metadata.getOrDefault(TernaryFormat.KEY_CALIBRATION, "none"),
                                written.ternaryParameters(),
                                written.blockParameters())));
    }

    /**
     * What the checkpoint of this run will record, from the source's header: its block layers that are ternary now
     * or that this run quantizes (--layers), and the calibration (a partly quantized source's, then this run's).
     */
    private ReportQuality.Quantization expectedQuantization(FluxSnapshot snapshot, String chosen) {
        String ours =
                QuantizeMethods.byName(chosen).needsStatistics() ? "sha256:" + Sha256.ofFiles(calibration) : "none";
        try (TensorSource weights = snapshot.openTransformer()) {
            QuantizationConfig.Layers now = QuantizationConfig.Layers.of(weights);
            long ternary = now.ternaryParameters();
            for (String layer : now.fullPrecision()) {
                if (layers == null || java.util.regex.Pattern.matches(layers, layer)) {
                    ternary += weights.info(layer + ".weight").numel();
                }
            }
            String earlier = weights.metadata().get(TernaryFormat.KEY_CALIBRATION);
            return new ReportQuality.Quantization(
                    chosen, earlier == null ? ours : earlier + ";" + ours, ternary, now.blockParameters());
        }
    }

    private String statsNames() {
        return calibration.stream().map(f -> f.getFileName().toString()).collect(Collectors.joining(","));
    }

    /**
     * The blocks spread over Spark executors ({@link QuantizeJob}). The driver checks what a one-process run checks
     * before it writes (statistics from their headers only: each executor reads its own layers' statistics), computes
     * the source's SHA-256 and the checkpoint metadata once, and indexes the shards in the staging folder that
     * {@link QuantizedSnapshotWriter} renames into place when complete, or removes on failure.
     */
    private int spread(FluxSnapshot snapshot, LayerQuantizer quantizer, ModelCard.Notes notes, PrintWriter err)
            throws IOException {
        if (Files.exists(output) && !overwrite) { // as the writer says it, but before Spark starts
            throw new ModelException("output folder " + output + " exists: choose another, or pass --overwrite");
        }
        try (SparkSession spark = session(spec.commandLine())) {
            Path transformer = snapshot.transformerFile().toAbsolutePath().normalize();
            String sha = QuantizedSnapshotWriter.transformerSha256(snapshot);
            QuantizeRecipe recipe = QuantizeRecipe.ABSMEAN;
            Map<String, CalibrationFile.LayerSummary> summaries = Map.of();
            List<String> statsFiles = List.of();
            if (quantizer.needsStatistics()) {
                // the files are checked and their metadata read here; the statistics themselves by each executor
                CalibrationFile.Contents none = CalibrationFile.readAll(calibration, layer -> false);
                summaries = CalibrationFile.summarize(calibration);
                recipe = new QuantizeRecipe(
                        quantizer, none.stats(), statsNames(), Sha256.ofFiles(calibration), none.metadata());
                statsFiles = calibration.stream()
                        .map(f -> f.toAbsolutePath().normalize().toString())
                        .toList();
            }
            if (layers != null) {
                recipe = recipe.forLayers(layers);
            }
            Map<String, String> metadata;
            try (TensorSource weights = FluxSnapshot.openTransformer(transformer)) {
                CheckpointQuantizer planned =
                        new CheckpointQuantizer(weights, transformer, sha, (g, d, t, s) -> {}, recipe);
                planned.check(summaries);
                metadata = planned.metadata();
            }
            String uri = model.uri(); // executors then resolve it through their node's cache
            QuantizeSettings settings = QuantizeSettings.of(
                    uri,
                    uri == null
                            ? transformer.toString()
                            : snapshot.root()
                                    .toAbsolutePath()
                                    .normalize()
                                    .relativize(transformer)
                                    .toString(),
                    sha,
                    recipe,
                    statsFiles);
            err.printf(
                    Locale.ROOT,
                    "quantize: method %s%s, spread over Spark (%s)%n",
                    quantizer.name(),
                    statsFiles.isEmpty() ? "" : ", statistics " + calibration,
                    spark.sparkContext().master());
            long start = System.nanoTime();
            assemble(snapshot, target -> QuantizeJob.write(spark, settings, metadata, target, err), notes, err);
            OutputFolders.mark(output, "quantize");
            err.printf(Locale.ROOT, "quantize: %s written in %.1f s%n", output, (System.nanoTime() - start) / 1e9);
            return 0;
        }
    }

    /**
     * The Spark session, without speculative tasks (a duplicate writes the same shard, but one still running when the
     * folder is renamed into place could leave its temporary file there); a master URL Spark cannot parse is a usage
     * error naming --master.
     */
    private SparkSession session(CommandLine cli) {
        try {
            return SparkSessions.create("fluxbatch quantize", master, Map.of("spark.speculation", "false"));
        } catch (Exception e) { // SparkException is checked, and thrown undeclared
            if (e instanceof SparkException
                    && String.valueOf(e.getMessage()).startsWith("Could not parse Master URL")) {
                throw new CommandLine.ParameterException(
                        cli,
                        "--master " + (master != null ? master : System.getProperty("spark.master")) + ": "
                                + e.getMessage()
                                + "; expected spark://HOST:PORT, local, local[N], local[*], yarn or k8s://...");
            }
            if (e instanceof RuntimeException r) {
                throw r;
            }
            throw new IllegalStateException("cannot start Spark: " + e.getMessage(), e);
        }
    }

    static String bytes(long b) {
        return b >= 1L << 30
                ? String.format(Locale.ROOT, "%.2f GiB", b / (double) (1L << 30))
                : b >= 1L << 20
                        ? String.format(Locale.ROOT, "%.1f MiB", b / (double) (1L << 20))
                        : String.format(Locale.ROOT, "%.1f KiB", b / 1024.0);
    }

    private static String eta(double seconds) {
        long s = Math.round(seconds);
        return s >= 60 ? (s / 60) + " min " + (s % 60) + " s" : s + " s";
    }
}
