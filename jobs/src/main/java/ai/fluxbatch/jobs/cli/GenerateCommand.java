package ai.fluxbatch.jobs.cli;

import ai.fluxbatch.jobs.generate.GenEvalMetadata;
import ai.fluxbatch.jobs.generate.GenerateJob;
import ai.fluxbatch.jobs.generate.GenerateSettings;
import ai.fluxbatch.jobs.generate.ImageFormat;
import ai.fluxbatch.jobs.generate.ImageResult;
import ai.fluxbatch.jobs.generate.ImageTask;
import ai.fluxbatch.jobs.generate.MadeOn;
import ai.fluxbatch.jobs.generate.OutputFormat;
import ai.fluxbatch.jobs.generate.OutputLayout;
import ai.fluxbatch.jobs.generate.RunManifest;
import ai.fluxbatch.jobs.generate.RunManifests;
import ai.fluxbatch.jobs.output.Locations;
import ai.fluxbatch.jobs.output.OutputFolder;
import ai.fluxbatch.jobs.prompts.PromptRow;
import ai.fluxbatch.kernel.DeviceKind;
import ai.fluxbatch.model.pipeline.FluxPipeline;
import ai.fluxbatch.model.pipeline.GenerationParams;
import ai.fluxbatch.model.snapshot.FluxSnapshot;
import java.io.IOException;
import java.io.PrintWriter;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.UUID;
import java.util.concurrent.Callable;
import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.fs.FSDataOutputStream;
import org.apache.hadoop.fs.FileSystem;
import org.apache.spark.sql.SparkSession;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/** {@code fluxbatch generate}: prompts to PNG images and a metadata table, as a Spark job. */
@Command(
        name = "generate",
        mixinStandardHelpOptions = true,
        sortOptions = false,
        description = {
            "Generate images from prompts with a FLUX.1 model, as a Spark job (local mode unless --master or"
                    + " spark-submit).",
            "Images go under OUTPUT (images/<id>.png, or a benchmark --layout) with their generation parameters in the"
                    + " PNG text chunks; the metadata table (one row per image) under OUTPUT/metadata/ as Parquet and jsonl."
                    + " Images already complete are skipped unless --overwrite, so a re-run finishes an interrupted one.",
            "The run's settings (model, size, steps, guidance, --seed, layout) are kept in OUTPUT/run.json: a re-run"
                    + " with other settings is refused, naming each difference, unless --overwrite. The metadata table"
                    + " accumulates across runs, one row per image with its latest status.",
            "--image-format jpeg writes JPEGs with the parameters in their comments; --format webdataset writes tar"
                    + " shards under OUTPUT/shards/ with a Parquet index instead of files."
        })
public final class GenerateCommand implements Callable<Integer> {
    @CommandLine.Mixin
    ModelOption model;

    @CommandLine.Mixin
    PromptOptions input;

    @CommandLine.Mixin
    ImageOptions image;

    @Option(
            names = "--seed",
            defaultValue = "0",
            description = "Seed of each prompt's first image unless the dataset"
                    + " has a seed column; image i of a prompt uses seed + i (default: ${DEFAULT-VALUE}).")
    long seed;

    /** Each image of a prompt is a task of its own: bounds the task list the driver builds. */
    static final int MAX_IMAGES_PER_PROMPT = 10_000;

    @Option(
            names = "--images-per-prompt",
            defaultValue = "1",
            paramLabel = "N",
            description = "Images per prompt, 1 to " + MAX_IMAGES_PER_PROMPT + " (default: ${DEFAULT-VALUE}).")
    int imagesPerPrompt;

    @Option(
            names = "--batch-size",
            defaultValue = "1",
            paramLabel = "N",
            description = "Images denoised together (default: ${DEFAULT-VALUE}).")
    int batchSize;

    @Option(
            names = "--output",
            defaultValue = "fluxbatch-output",
            paramLabel = "DIR|URI",
            description = "Output folder or URI (file://, hdfs://, s3a://) (default: ${DEFAULT-VALUE}).")
    String output;

    @Option(
            names = "--layout",
            defaultValue = "default",
            paramLabel = "L",
            description = "default (images/<id>.png), geneval or t2i-compbench (default: ${DEFAULT-VALUE}).")
    String layout;

    @Option(
            names = "--format",
            defaultValue = "files",
            paramLabel = "F",
            description = "files (one image per file, under --layout) or webdataset (tar shards"
                    + " OUTPUT/shards/data-000000.tar, ... of <id>.png|jpg, <id>.json, <id>.txt, with a Parquet index"
                    + " in OUTPUT/shards/index.parquet) (default: ${DEFAULT-VALUE}).")
    String format;

    @Option(
            names = "--images-per-shard",
            paramLabel = "N",
            description = "Images per WebDataset shard, with --format webdataset; each shard is one Spark task"
                    + " (default: " + OutputFormat.DEFAULT_IMAGES_PER_SHARD + ").")
    Integer imagesPerShard;

    @Option(
            names = "--image-format",
            defaultValue = "png",
            paramLabel = "F",
            description = "png or jpeg; the generation parameters go into PNG text chunks or JPEG comments"
                    + " (default: ${DEFAULT-VALUE}).")
    String imageFormat;

    @Option(
            names = "--jpeg-quality",
            paramLabel = "N",
            description = "JPEG quality, 1 to 100, with --image-format jpeg (default: "
                    + ImageFormat.DEFAULT_JPEG_QUALITY + ").")
    Integer jpegQuality;

    @Option(
            names = "--overwrite",
            description = "Regenerate images that already exist, and replace the output's run settings"
                    + " (run.json) with this run's.")
    boolean overwrite;

    @Option(
            names = "--fail-on-error",
            description = "Exit 1 when any image failed (default: failed images are error"
                    + " rows in the metadata and the exit code is 0).")
    boolean failOnError;

    @Option(
            names = "--master",
            paramLabel = "URL",
            description = "Spark master (default: local mode, or what" + " spark-submit set).")
    String master;

    @Option(
            names = "--images-per-partition",
            defaultValue = "8",
            paramLabel = "N",
            description = "Images per Spark partition (default: ${DEFAULT-VALUE}).")
    int imagesPerPartition;

    @CommandLine.Mixin
    DeviceOption device;

    @CommandLine.Spec
    CommandLine.Model.CommandSpec spec;

    @Override
    public Integer call() throws java.io.IOException {
        CommandLine cli = spec.commandLine();
        input.check(cli);
        OptionChecks.noCredentials(cli, "--output", output);
        device.checkForSpark("generate", master, cli.getErr());
        OutputLayout outputLayout;
        try {
            outputLayout = OutputLayout.parse(layout);
        } catch (IllegalArgumentException e) {
            throw new CommandLine.ParameterException(cli, e.getMessage());
        }
        FluxSnapshot snapshot = FluxSnapshot.open(model.resolve().toAbsolutePath());
        if (snapshot.layoutNote() != null) {
            cli.getErr().println("generate: " + snapshot.layoutNote());
        }
        GenerateSettings settings = validate(snapshot, outputLayout);
        cli.getErr().printf("generate: %s%n", image.describe(settings.params(), settings.maxSequenceLength()));
        FluxPipeline.checkComponents(snapshot.root());
        try (SparkSession spark = SparkSessions.create("fluxbatch generate", master)) {
            List<PromptRow> rows = input.rows(spark, cli);
            checkWritable(spark.sparkContext().hadoopConfiguration());
            claimManifest(settings, spark.sparkContext().hadoopConfiguration());
            List<ImageTask> tasks = new ArrayList<>();
            for (PromptRow row : rows) {
                for (int i = 0; i < imagesPerPrompt; i++) {
                    tasks.add(ImageTask.of(row, i, seed));
                }
            }
            if (outputLayout == OutputLayout.GENEVAL) {
                GenEvalMetadata.write(rows, output, spark.sparkContext().hadoopConfiguration());
            }
            PrintWriter err = cli.getErr();
            err.printf(
                    "generate: %d prompts x %d images with %s (%s) -> %s%n",
                    rows.size(), imagesPerPrompt, snapshot.root(), settings.quantization(), output);
            List<ImageResult> results = GenerateJob.run(spark, tasks, settings, imagesPerPartition, err);
            return report(results);
        }
    }

    /**
     * Claims the output ({@link OutputFolder}: a new, empty or fluxbatch-made folder only), then creates and deletes a
     * small probe object under it, so that an unreachable store, missing or wrong credentials or a read-only location
     * fail here, naming the output, rather than in every task after the model has loaded. Through a file system instance of its own with few retries: S3A's defaults (7 retries with
     * back-off, each over 6 SDK attempts) take about two minutes to give up on a dead endpoint.
     */
    private void checkWritable(Configuration conf) {
        String root = output.endsWith("/") ? output : output + "/";
        Configuration probe = new Configuration(conf);
        probe.set("fs.s3a.retry.limit", "1");
        probe.set("fs.s3a.attempts.maximum", "1");
        probe.set("fs.s3a.retry.interval", "200ms");
        probe.set("fs.s3a.connection.establish.timeout", "10s");
        try {
            org.apache.hadoop.fs.Path marker =
                    new org.apache.hadoop.fs.Path(Locations.path(root), "_fluxbatch-write-check-" + UUID.randomUUID());
            try (FileSystem fs = FileSystem.newInstance(marker.toUri(), probe)) {
                OutputFolder.claim(fs, marker.getParent(), "--output " + output);
                try (FSDataOutputStream out = fs.create(marker, false)) {
                    out.write('\n');
                }
                fs.delete(marker, false);
            }
        } catch (OutputFolder.Refused e) {
            throw new CommandLine.ParameterException(spec.commandLine(), e.getMessage());
        } catch (IOException | RuntimeException e) {
            throw new UncheckedIOException(
                    "cannot write to the output " + output + " (is the store reachable, and do"
                            + " the credentials allow writing there?): " + e,
                    e instanceof IOException io ? io : new IOException(e));
        }
    }

    /**
     * Checks this run's settings against the output's run manifest ({@link RunManifests}) before any work: another
     * output's settings are refused with each difference named, unless --overwrite.
     */
    private void claimManifest(GenerateSettings settings, Configuration conf) {
        CommandLine cli = spec.commandLine();
        try {
            RunManifests.Outcome outcome = RunManifests.claim(output, conf, RunManifest.of(settings, seed), overwrite);
            if (outcome == RunManifests.Outcome.UNRECORDED) {
                cli.getErr()
                        .printf(
                                "generate: %s has no %s (an earlier fluxbatch made it): its images are kept as they"
                                        + " are, and this run's settings are recorded from now on%n",
                                output, RunManifest.FILE);
            } else if (outcome == RunManifests.Outcome.REPLACED) {
                cli.getErr()
                        .printf(
                                "generate: --overwrite: the settings in %s/%s replaced by this run's%n",
                                output.replaceAll("/$", ""), RunManifest.FILE);
            }
        } catch (RunManifests.Refused e) {
            throw new CommandLine.ParameterException(cli, e.getMessage());
        } catch (IOException e) {
            throw new UncheckedIOException(
                    "cannot read or write the run manifest under " + output + ": " + e.getMessage(), e);
        }
    }

    /** Every check that needs no Spark and no model weights, before any work. */
    private GenerateSettings validate(FluxSnapshot snapshot, OutputLayout outputLayout) {
        CommandLine cli = spec.commandLine();
        if (output.isBlank()) {
            throw new CommandLine.ParameterException(cli, "--output is empty, expected a folder or URI");
        }
        OptionChecks.range(
                cli,
                "--images-per-prompt",
                imagesPerPrompt,
                1,
                MAX_IMAGES_PER_PROMPT,
                "for more, repeat the prompt or run again with another --seed");
        OptionChecks.positive(cli, "--batch-size", batchSize);
        OptionChecks.positive(cli, "--images-per-partition", imagesPerPartition);
        OptionChecks.seedRange(cli, seed, imagesPerPrompt, "--images-per-prompt " + imagesPerPrompt);
        ImageFormat encoding;
        OutputFormat storage;
        try {
            encoding = ImageFormat.parse(imageFormat);
            storage = OutputFormat.parse(format);
        } catch (IllegalArgumentException e) {
            throw new CommandLine.ParameterException(cli, e.getMessage());
        }
        if (jpegQuality != null && encoding != ImageFormat.JPEG) {
            throw new CommandLine.ParameterException(
                    cli, "--jpeg-quality is for --image-format jpeg, and the image format is " + imageFormat);
        }
        int quality = jpegQuality == null ? ImageFormat.DEFAULT_JPEG_QUALITY : jpegQuality;
        OptionChecks.range(cli, "--jpeg-quality", quality, 1, 100, "100 is the best JPEG quality");
        if (imagesPerShard != null && storage != OutputFormat.WEBDATASET) {
            throw new CommandLine.ParameterException(
                    cli, "--images-per-shard is for --format webdataset, and the format is " + format);
        }
        int perShard = imagesPerShard == null ? OutputFormat.DEFAULT_IMAGES_PER_SHARD : imagesPerShard;
        OptionChecks.positive(cli, "--images-per-shard", perShard);
        if (storage == OutputFormat.WEBDATASET && outputLayout != OutputLayout.DEFAULT) {
            throw new CommandLine.ParameterException(
                    cli,
                    "--layout " + layout + " places files, and --format webdataset names each sample by its id in"
                            + " a shard: use one or the other");
        }
        if (storage == OutputFormat.WEBDATASET && cli.getParseResult().hasMatchedOption("--images-per-partition")) {
            throw new CommandLine.ParameterException(
                    cli,
                    "--images-per-partition is for --format files; with --format webdataset each shard is one"
                            + " partition (--images-per-shard)");
        }
        GenerationParams p = image.params(cli, snapshot);
        int length = image.maxSequenceLength(cli, snapshot);
        GenerateSettings s = new GenerateSettings(
                model.location(snapshot.root()),
                snapshot.transformerFingerprint(),
                snapshot.quantizationMethod(),
                output,
                outputLayout,
                p.height(),
                p.width(),
                p.steps(),
                p.guidance(),
                length,
                batchSize,
                overwrite,
                device.requested(),
                device.gemmPrecision(),
                encoding,
                quality,
                storage,
                perShard);
        if (!output.contains("://") && Files.isRegularFile(Path.of(output))) {
            throw new CommandLine.ParameterException(cli, "--output " + output + " is a file, expected a folder");
        }
        return s;
    }

    private int report(List<ImageResult> results) {
        PrintWriter out = spec.commandLine().getOut();
        long ok =
                results.stream().filter(r -> r.status().equals(ImageResult.OK)).count();
        long skipped = results.stream()
                .filter(r -> r.status().equals(ImageResult.SKIPPED))
                .count();
        List<ImageResult> errors = results.stream()
                .filter(r -> r.status().equals(ImageResult.ERROR))
                .toList();
        for (ImageResult r : errors) {
            out.printf("error    %s (seed %d): %s%n", r.prompt(), r.seed(), r.error());
        }
        MadeOn.Count on = MadeOn.count(results);
        out.printf(
                "%d images: %d written, %d skipped (already there), %d failed; %s; metadata in %s/metadata/%n",
                results.size(), ok, skipped, errors.size(), on, output.replaceAll("/$", ""));
        if (on.cpu() > 0 && device.requested() == DeviceKind.AUTO) {
            spec.commandLine()
                    .getErr()
                    .printf(
                            "generate: --device auto: %d images were made on a CPU (their tasks had no usable GPU;"
                                    + " the metadata's device and backend columns say where each image was made)%n",
                            on.cpu());
        }
        return errors.isEmpty() || !failOnError ? 0 : 1;
    }
}
