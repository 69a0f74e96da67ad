package ai.fluxbatch.jobs.cli;

import ai.fluxbatch.model.Sha256;
import ai.fluxbatch.model.calib.CalibrationFile;
import ai.fluxbatch.model.quant.AbsmeanQuantizer;
import ai.fluxbatch.model.quant.LayerQuantizer;
import ai.fluxbatch.model.quant.QuantizeMethods;
import ai.fluxbatch.model.quant.QuantizeRecipe;
import ai.fluxbatch.model.quant.QuantizedSnapshotWriter;
import ai.fluxbatch.model.snapshot.FluxSnapshot;
import java.io.PrintWriter;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.Callable;
import java.util.stream.Collectors;
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
            "The output folder is a snapshot that --model accepts: the quantized transformer plus the source's other"
                    + " files (hard-linked where possible)."
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

    @CommandLine.Spec
    CommandLine.Model.CommandSpec spec;

    static final class Methods extends java.util.ArrayList<String> {
        Methods() {
            super(QuantizeMethods.names());
        }
    }

    @Override
    public Integer call() {
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
        QuantizeRecipe recipe = QuantizeRecipe.ABSMEAN;
        if (quantizer.needsStatistics()) {
            CalibrationFile.Contents stats = CalibrationFile.readAll(calibration);
            String names =
                    calibration.stream().map(f -> f.getFileName().toString()).collect(Collectors.joining(","));
            recipe = new QuantizeRecipe(quantizer, stats.stats(), names, Sha256.ofFiles(calibration), stats.metadata());
        } else if (!calibration.isEmpty()) {
            err.println("quantize: --method " + chosen + " does not read --calibration; " + calibration + " is unused");
        }
        if (layers != null) {
            try {
                java.util.regex.Pattern.compile(layers);
            } catch (java.util.regex.PatternSyntaxException e) {
                throw new CommandLine.ParameterException(
                        spec.commandLine(), "--layers is not a regular expression: " + e.getMessage());
            }
            recipe = recipe.forLayers(layers);
        }
        err.printf(
                Locale.ROOT,
                "quantize: method %s%s%n",
                chosen,
                calibration.isEmpty() ? "" : ", statistics " + calibration);
        long start = System.nanoTime();
        QuantizedSnapshotWriter.write(
                snapshot,
                output,
                overwrite,
                (group, done, total, seconds) -> {
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
                },
                recipe);
        OutputFolders.mark(output, "quantize");
        err.printf(Locale.ROOT, "quantize: %s written in %.1f s%n", output, (System.nanoTime() - start) / 1e9);
        return 0;
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
