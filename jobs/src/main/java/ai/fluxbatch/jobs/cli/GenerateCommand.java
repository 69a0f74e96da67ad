package ai.fluxbatch.jobs.cli;

import ai.fluxbatch.jobs.generate.GenerateJob;
import ai.fluxbatch.jobs.generate.GenerateSettings;
import ai.fluxbatch.jobs.generate.ImageResult;
import ai.fluxbatch.jobs.generate.ImageTask;
import ai.fluxbatch.model.ModelException;
import ai.fluxbatch.model.snapshot.FluxSnapshot;
import java.io.IOException;
import java.io.PrintWriter;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Callable;
import org.apache.spark.sql.SparkSession;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/** {@code fluxbatch generate}: prompts to PNG images, as a Spark job (local mode unless --master or spark-submit). */
@Command(name = "generate", mixinStandardHelpOptions = true, sortOptions = false,
        description = {"Generate images from prompts with a FLUX.1 model, as a Spark job.",
            "Each image is written to OUTPUT/images/<id>.png, its generation parameters in the PNG's text chunks;"
                + " images already there are skipped unless --overwrite."})
public final class GenerateCommand implements Callable<Integer> {
    @CommandLine.Mixin
    ModelOption model;

    @Option(names = "--prompt", paramLabel = "TEXT", description = "A prompt (repeatable).")
    List<String> prompts = new ArrayList<>();

    @Option(names = "--prompts", paramLabel = "FILE", description = "A text file with one prompt per line.")
    Path promptsFile;

    @Option(names = "--seed", defaultValue = "0", description = "Seed of each prompt's first image; image i of a"
            + " prompt uses seed + i (default: ${DEFAULT-VALUE}).")
    long seed;

    @Option(names = "--height", defaultValue = "64", description = "Image height, a multiple of 16 (default: ${DEFAULT-VALUE}).")
    int height;

    @Option(names = "--width", defaultValue = "64", description = "Image width, a multiple of 16 (default: ${DEFAULT-VALUE}).")
    int width;

    @Option(names = "--steps", description = "Denoising steps (default: 50 for dev models, 4 for schnell, as the reference).")
    Integer steps;

    @Option(names = "--guidance", defaultValue = "3.5", description = "Guidance for dev models (default: ${DEFAULT-VALUE}).")
    float guidance;

    @Option(names = "--images-per-prompt", defaultValue = "1", paramLabel = "N", description = "Images per prompt (default: ${DEFAULT-VALUE}).")
    int imagesPerPrompt;

    @Option(names = "--batch-size", defaultValue = "1", paramLabel = "N", description = "Images denoised together (default: ${DEFAULT-VALUE}).")
    int batchSize;

    @Option(names = "--output", defaultValue = "fluxbatch-output", paramLabel = "DIR|URI",
            description = "Output folder or URI (file://, hdfs://, s3a://) (default: ${DEFAULT-VALUE}).")
    String output;

    @Option(names = "--overwrite", description = "Regenerate images that already exist.")
    boolean overwrite;

    @Option(names = "--master", paramLabel = "URL", description = "Spark master (default: local mode, or what"
            + " spark-submit set).")
    String master;

    @Option(names = "--partitions", paramLabel = "N", description = "Spark partitions (default: one per task slot).")
    Integer partitions;

    @CommandLine.Spec
    CommandLine.Model.CommandSpec spec;

    @Override
    public Integer call() throws IOException {
        List<String> allPrompts = collectPrompts();
        String modelDir = model.resolve().toAbsolutePath().toString();
        GenerateSettings settings = validate(modelDir, allPrompts);
        List<ImageTask> tasks = new ArrayList<>();
        String source = promptsFile != null ? promptsFile.getFileName().toString() : "cli";
        for (String prompt : allPrompts) {
            for (int i = 0; i < imagesPerPrompt; i++) {
                tasks.add(ImageTask.of(source, prompt, i, seed + i));
            }
        }
        List<ImageResult> results;
        try (SparkSession spark = SparkSessions.create("fluxbatch generate", master)) {
            int slots = partitions != null ? partitions : spark.sparkContext().defaultParallelism();
            results = GenerateJob.run(spark, tasks, settings, slots);
        }
        return report(results);
    }

    private List<String> collectPrompts() throws IOException {
        List<String> all = new ArrayList<>(prompts);
        if (promptsFile != null) {
            if (!Files.isRegularFile(promptsFile)) {
                throw new ModelException("prompts file " + promptsFile + " does not exist: expected a text file with"
                        + " one prompt per line");
            }
            for (String line : Files.readAllLines(promptsFile, StandardCharsets.UTF_8)) {
                if (!line.isBlank()) {
                    all.add(line.strip());
                }
            }
        }
        if (all.isEmpty()) {
            throw new CommandLine.ParameterException(spec.commandLine(),
                    "no prompts: give --prompt TEXT (repeatable) or --prompts FILE with at least one prompt");
        }
        return all;
    }

    /** Every check that needs no model, before Spark starts. */
    private GenerateSettings validate(String modelDir, List<String> allPrompts) {
        CommandLine cli = spec.commandLine();
        if (seed < 0) {
            throw new CommandLine.ParameterException(cli, "--seed is " + seed + ", expected a non-negative integer");
        }
        if (imagesPerPrompt < 1) {
            throw new CommandLine.ParameterException(cli, "--images-per-prompt is " + imagesPerPrompt + ", expected >= 1");
        }
        if (batchSize < 1) {
            throw new CommandLine.ParameterException(cli, "--batch-size is " + batchSize + ", expected >= 1");
        }
        if (partitions != null && partitions < 1) {
            throw new CommandLine.ParameterException(cli, "--partitions is " + partitions + ", expected >= 1");
        }
        GenerateSettings s = new GenerateSettings(modelDir, output, height, width,
                steps != null ? steps : FluxSnapshot.open(Path.of(modelDir)).defaultSteps(), guidance, batchSize,
                overwrite);
        try {
            s.params();
        } catch (IllegalArgumentException e) {
            throw new CommandLine.ParameterException(cli, e.getMessage().replaceFirst("^(height|width|steps|guidance)",
                    "--$1"));
        }
        if (!output.contains("://") && Files.isRegularFile(Path.of(output))) {
            throw new CommandLine.ParameterException(cli, "--output " + output + " is a file, expected a folder");
        }
        return s;
    }

    private int report(List<ImageResult> results) {
        PrintWriter out = spec.commandLine().getOut();
        long ok = results.stream().filter(r -> r.status().equals(ImageResult.OK)).count();
        long skipped = results.stream().filter(r -> r.status().equals(ImageResult.SKIPPED)).count();
        List<ImageResult> errors = results.stream().filter(r -> r.status().equals(ImageResult.ERROR)).toList();
        for (ImageResult r : results) {
            out.printf("%-8s %s  %s  (seed %d)%s%n", r.status(), r.path() == null ? "-" : r.path(), r.prompt(),
                    r.seed(), r.error() == null ? "" : ": " + r.error());
        }
        out.printf("%d images: %d written, %d skipped (already there), %d failed%n", results.size(), ok, skipped,
                errors.size());
        return errors.isEmpty() ? 0 : 1;
    }
}
