package ai.fluxbatch.jobs.cli;

import ai.fluxbatch.jobs.distill.DistillJob;
import ai.fluxbatch.jobs.distill.DistillJobSettings;
import ai.fluxbatch.jobs.distill.DistillProgress;
import ai.fluxbatch.jobs.distill.StudentFactory;
import ai.fluxbatch.jobs.prompts.PromptRow;
import ai.fluxbatch.model.Sha256;
import ai.fluxbatch.model.distill.Adam;
import ai.fluxbatch.model.distill.DistillCheckpoint;
import ai.fluxbatch.model.distill.DistillSchedule;
import ai.fluxbatch.model.distill.DistillSettings;
import ai.fluxbatch.model.distill.DistillTraining;
import ai.fluxbatch.model.distill.DistilledSnapshotWriter;
import ai.fluxbatch.model.distill.StudentParameters;
import ai.fluxbatch.model.distill.Trainable;
import ai.fluxbatch.model.distill.TrainableParameters;
import ai.fluxbatch.model.pipeline.FluxPipeline;
import ai.fluxbatch.model.pipeline.GenerationParams;
import ai.fluxbatch.model.quant.QuantizedSnapshotWriter;
import ai.fluxbatch.model.quant.TernaryFormat;
import ai.fluxbatch.model.safetensors.TensorInfo;
import ai.fluxbatch.model.safetensors.TensorSource;
import ai.fluxbatch.model.sampling.SchedulerConfig;
import ai.fluxbatch.model.snapshot.FluxSnapshot;
import java.io.IOException;
import java.io.PrintWriter;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.security.MessageDigest;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.Callable;
import java.util.stream.Stream;
import org.apache.spark.sql.SparkSession;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/** {@code fluxbatch distill}: tunes a 1.58-bit snapshot's scales and biases to its full-precision model, as a Spark job. */
@Command(
        name = "distill",
        mixinStandardHelpOptions = true,
        sortOptions = false,
        description = {
            "Self-distillation: train the per-channel scales and the biases of a 1.58-bit snapshot (from fluxbatch"
                    + " quantize) so that its transformer's velocity matches the full-precision model's, on prompts"
                    + " only, as a Spark job (local mode unless --master or spark-submit). The ternary codes stay as they are.",
            "Each sample: a prompt, seeded noise, a time t of the sampling schedule, the teacher's point x_t; loss ="
                    + " mean squared error between the student's and the teacher's velocity there. Every executor loads"
                    + " both models once; gradients are summed over executors, Adam runs on the driver.",
            "OUTPUT becomes a snapshot that --model accepts (method <method>+distill), with the run's checkpoints under"
                    + " OUTPUT/" + DistilledSnapshotWriter.CHECKPOINTS + "/; --resume continues an interrupted run."
        })
public final class DistillCommand implements Callable<Integer> {
    /**
     * Test hook: when this system property names a {@link StudentFactory} class, the executors use it instead of
     * the real teacher and student.
     */
    public static final String STUDENT_FACTORY = "fluxbatch.test.distillStudentFactory";

    @CommandLine.Mixin
    ModelOption model;

    @Option(
            names = "--quantized",
            required = true,
            paramLabel = "Q_DIR",
            description = "The 1.58-bit snapshot to tune: fluxbatch quantize's output for --model.")
    Path quantized;

    @CommandLine.Mixin
    PromptOptions input;

    @Option(
            names = "--output",
            required = true,
            paramLabel = "DIR",
            description = "The distilled snapshot folder (local), with the run's checkpoints.")
    String output;

    @Option(
            names = "--steps",
            defaultValue = "300",
            paramLabel = "N",
            description = "Training steps (default: ${DEFAULT-VALUE}).")
    int steps;

    @Option(
            names = "--batch-size",
            defaultValue = "16",
            paramLabel = "N",
            description = "Samples per step, spread over the executors (default: ${DEFAULT-VALUE}).")
    int batchSize;

    @Option(
            names = "--learning-rate",
            defaultValue = "2e-3",
            paramLabel = "LR",
            description = "Adam's learning rate (default: ${DEFAULT-VALUE}).")
    double learningRate;

    @Option(
            names = "--trainable",
            defaultValue = "scales,biases",
            paramLabel = "LIST",
            description =
                    "What is trained: scales, biases or both; the rest stays as loaded (default: ${DEFAULT-VALUE}).")
    String trainable;

    @Option(
            names = "--height",
            paramLabel = "H",
            description = "Image height of the samples, a multiple of 16 (default: " + ModelDefaults.SIZE_HELP + ").")
    Integer height;

    @Option(
            names = "--width",
            paramLabel = "W",
            description = "Image width of the samples, a multiple of 16 (default: " + ModelDefaults.SIZE_HELP + ").")
    Integer width;

    @Option(
            names = "--guidance",
            defaultValue = "3.5",
            description = "Guidance for dev models; ignored for schnell (default: ${DEFAULT-VALUE}).")
    float guidance;

    @Option(names = ModelDefaults.MAX_SEQUENCE_LENGTH, paramLabel = "N", description = ModelDefaults.LENGTH_HELP)
    Integer maxSequenceLength;

    @Option(
            names = "--seed",
            defaultValue = "1000000",
            description = "Seed of the sample choice; sample i of step s has noise seed + s * batch + i (default:"
                    + " ${DEFAULT-VALUE}: training noise apart from the small seeds that generate and benchmarks use).")
    long seed;

    @Option(
            names = "--checkpoint-every",
            defaultValue = "25",
            paramLabel = "N",
            description = "Write a checkpoint every N steps and after the last (default: ${DEFAULT-VALUE}).")
    int checkpointEvery;

    @Option(
            names = "--resume",
            description = "Continue the run whose checkpoints are in --output from the last one (same options).")
    boolean resume;

    @Option(
            names = "--overwrite",
            description = "Start again in an existing --output that fluxbatch made (it holds a " + OutputFolders.MARKER
                    + " file); its old contents are replaced when the new snapshot is complete.")
    boolean overwrite;

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
    public Integer call() throws IOException {
        CommandLine cli = spec.commandLine();
        PrintWriter err = cli.getErr();
        Trainable train = validateOptions(cli);
        Path out = Path.of(output).toAbsolutePath().normalize();
        FluxSnapshot teacher = FluxSnapshot.open(model.resolve().toAbsolutePath());
        FluxSnapshot student = FluxSnapshot.open(quantized.toAbsolutePath());
        if (teacher.layoutNote() != null) {
            err.println("distill: " + teacher.layoutNote());
        }
        checkOutput(cli, out, teacher, student);
        device.checkForSpark("distill", master, err);
        boolean dev = teacher.hasGuidanceEmbedding();
        int sampleSteps = DistillSchedule.sampleSteps(dev);
        ModelDefaults.Size size = ModelDefaults.size(cli, height, width, teacher);
        int length = ModelDefaults.maxSequenceLength(cli, maxSequenceLength, teacher);
        GenerationParams params;
        try {
            params = new GenerationParams(size.height(), size.width(), sampleSteps, guidance);
        } catch (IllegalArgumentException e) {
            throw new CommandLine.ParameterException(
                    cli, e.getMessage().replaceFirst("^(height|width|guidance)", "--$1"));
        }
        String method = checkStudent(cli, teacher, student);
        FluxPipeline.checkComponents(teacher.root());
        err.printf(
                "distill: checking that --quantized %s was made from --model %s (SHA-256)%n",
                student.root(), teacher.root());
        String teacherSha = checkSource(cli, teacher, student);
        float[] times =
                DistillSchedule.times(sampleSteps, params.imageTokens(), dev, SchedulerConfig.of(teacher.root()));
        DistillSettings settings = new DistillSettings(params.height(), params.width(), guidance, length);
        err.printf(
                "distill: samples of %d x %d%s, T5 length %d%s%n",
                params.height(),
                params.width(),
                size.heightFromModel() || size.widthFromModel() ? " (the model's sample size)" : "",
                length,
                maxSequenceLength == null ? " (the model's)" : "");
        String factory = System.getProperty(STUDENT_FACTORY, StudentFactory.Real.class.getName());
        DistillJobSettings job = new DistillJobSettings(
                model.location(teacher.root()),
                student.root().toString(),
                settings,
                device.requested(),
                device.gemmPrecision(),
                factory);
        TrainableParameters initial;
        try (TensorSource weights = student.openTransformer()) {
            initial = StudentParameters.read(weights);
        }
        try (SparkSession spark = SparkSessions.create("fluxbatch distill", master)) {
            List<String> prompts = prompts(spark, cli);
            DistillSchedule schedule = new DistillSchedule(prompts, seed, batchSize, times);
            try {
                schedule.lastNoiseSeed(steps);
            } catch (IllegalArgumentException e) {
                throw new CommandLine.ParameterException(cli, "--seed " + seed + ": " + e.getMessage());
            }
            Map<String, String> run = runIdentity(teacherSha, student, prompts, train, settings, sampleSteps, dev);
            Path checkpoints = out.resolve(DistilledSnapshotWriter.CHECKPOINTS);
            Optional<DistillCheckpoint> from = prepareOutput(out, checkpoints, err);
            err.printf(
                    Locale.ROOT,
                    "distill: %d steps x %d samples from %d prompts, %s of %d layers (%d values), learning rate %s,"
                            + " times from a %d-step schedule, %s (%s) -> %s%n",
                    steps,
                    batchSize,
                    prompts.size(),
                    train,
                    initial.layers().size(),
                    initial.count(),
                    learningRate,
                    sampleSteps,
                    student.root(),
                    method,
                    out);
            long t0 = System.nanoTime();
            DistillTraining.Result result = DistillTraining.train(
                    new DistillTraining.Settings(
                            schedule, train, learningRate, steps, checkpointEvery, checkpoints, run),
                    initial,
                    from,
                    DistillJob.gradients(spark, job),
                    new DistillProgress(err));
            double[] losses = result.losses();
            DistilledSnapshotWriter.write(
                    student,
                    out,
                    result.parameters(),
                    train,
                    metadata(method, prompts.size(), train, settings, sampleSteps, dev, losses),
                    folder -> linkCheckpoints(checkpoints, folder.resolve(DistilledSnapshotWriter.CHECKPOINTS)));
            OutputFolders.mark(out, "distill");
            cli.getOut()
                    .printf(
                            Locale.ROOT,
                            "distill: %d steps (%d samples), loss %.6g -> %.6g in %.1f s -> %s (%s)%n",
                            losses.length,
                            (long) losses.length * batchSize,
                            losses[0],
                            losses[losses.length - 1],
                            (System.nanoTime() - t0) / 1e9,
                            out,
                            DistilledSnapshotWriter.method(method));
            return 0;
        }
    }

    /** Every check of option values alone: usage errors naming the option. */
    private Trainable validateOptions(CommandLine cli) {
        input.check(cli);
        OptionChecks.positive(cli, "--steps", steps);
        OptionChecks.positive(cli, "--batch-size", batchSize);
        OptionChecks.positive(cli, "--checkpoint-every", checkpointEvery);
        OptionChecks.seed(cli, seed);
        if (!(learningRate > 0) || !Double.isFinite(learningRate)) {
            throw new CommandLine.ParameterException(
                    cli, "--learning-rate is " + learningRate + ", expected a finite number > 0");
        }
        if (resume && overwrite) {
            throw new CommandLine.ParameterException(
                    cli, "--resume continues a run and --overwrite starts one again: give one of them");
        }
        if (output.isBlank() || output.contains("://")) {
            throw new CommandLine.ParameterException(
                    cli, "--output '" + output + "': expected a local folder (checkpoints are renamed into place)");
        }
        try {
            return Trainable.parse(trainable);
        } catch (IllegalArgumentException e) {
            throw new CommandLine.ParameterException(cli, "--trainable " + e.getMessage());
        }
    }

    private void checkOutput(CommandLine cli, Path out, FluxSnapshot teacher, FluxSnapshot student) {
        OutputFolders.check(cli, "--output", out, overwrite || resume, "--model", teacher.root());
        OutputFiles.checkOutside(cli, "--output", out, "--quantized", student.root());
        if (Files.exists(out) && !Files.isDirectory(out)) {
            throw new CommandLine.ParameterException(cli, "--output " + output + " is a file, expected a folder");
        }
        if (resume && !Files.isDirectory(out)) {
            throw new CommandLine.ParameterException(
                    cli, "--resume: --output " + output + " does not exist, so there is no run to continue");
        }
        if (Files.exists(out) && !overwrite && !resume) {
            throw new CommandLine.ParameterException(
                    cli,
                    "--output " + output + " exists: --resume continues the run whose checkpoints are there,"
                            + " --overwrite starts again, or choose another folder");
        }
    }

    /**
     * Refuses a student that is not a 1.58-bit snapshot of the teacher's shapes, and returns its method: every tensor
     * of the teacher is in the student with the same shape, a ternary layer's packed to (ceil(out / 4), in) with an
     * (out) scale, and the student has nothing else.
     */
    private static String checkStudent(CommandLine cli, FluxSnapshot teacher, FluxSnapshot student) {
        try (TensorSource t = teacher.openTransformer();
                TensorSource s = student.openTransformer()) {
            String what = "--quantized " + student.root();
            if (s.names().stream().noneMatch(n -> StudentParameters.isTernaryWeight(s, n))) {
                throw new CommandLine.ParameterException(
                        cli,
                        what + " has no ternary layers (" + s.metadata().getOrDefault(TernaryFormat.KEY_METHOD, "none")
                                + "): expected a 1.58-bit snapshot from fluxbatch quantize --model " + teacher.root());
            }
            if (t.names().stream().anyMatch(n -> StudentParameters.isTernaryWeight(t, n))) {
                throw new CommandLine.ParameterException(
                        cli,
                        "--model " + teacher.root() + " is quantized: the teacher must be the full-precision model");
            }
            for (String name : t.names()) {
                long[] shape = t.info(name).shape();
                if (!s.contains(name)) {
                    throw otherModel(cli, what, "it has no tensor '" + name + "' " + Arrays.toString(shape));
                }
                long[] got = s.info(name).shape();
                long[] want = shape;
                if (StudentParameters.isTernaryWeight(s, name)) {
                    want = new long[] {TernaryFormat.packedRows(Math.toIntExact(shape[0])), shape[1]};
                    long[] scale = s.info(TernaryFormat.scaleName(name)).shape();
                    if (!Arrays.equals(scale, new long[] {shape[0]})) {
                        throw otherModel(
                                cli,
                                what,
                                "'" + TernaryFormat.scaleName(name) + "' is " + Arrays.toString(scale)
                                        + ", the teacher's '" + name + "' " + Arrays.toString(shape));
                    }
                }
                if (!Arrays.equals(got, want)) {
                    throw otherModel(
                            cli,
                            what,
                            "'" + name + "' is " + Arrays.toString(got) + ", expected " + Arrays.toString(want)
                                    + " for the teacher's " + Arrays.toString(shape));
                }
            }
            for (String name : s.names()) {
                boolean scale = name.endsWith(".weight_scale")
                        && t.contains(name.substring(0, name.length() - "_scale".length()));
                if (!t.contains(name) && !scale) {
                    TensorInfo info = s.info(name);
                    throw otherModel(
                            cli,
                            what,
                            "it has '" + name + "' " + Arrays.toString(info.shape()) + ", the teacher has not");
                }
            }
            return s.metadata().getOrDefault(TernaryFormat.KEY_METHOD, "unknown");
        }
    }

    private static CommandLine.ParameterException otherModel(CommandLine cli, String what, String why) {
        return new CommandLine.ParameterException(cli, what + " is not a quantized snapshot of --model: " + why);
    }

    /** Refuses a student whose recorded source is not the teacher's transformer; returns the teacher's SHA-256. */
    private static String checkSource(CommandLine cli, FluxSnapshot teacher, FluxSnapshot student) {
        String recorded;
        try (TensorSource s = student.openTransformer()) {
            recorded = s.metadata().get(TernaryFormat.KEY_SOURCE_SHA256);
        }
        String sha = QuantizedSnapshotWriter.transformerSha256(teacher);
        if (!sha.equals(recorded)) {
            throw new CommandLine.ParameterException(
                    cli,
                    "--quantized " + student.root() + " was not made from --model " + teacher.root() + ": its "
                            + TernaryFormat.KEY_SOURCE_SHA256 + " is " + (recorded == null ? "missing" : recorded)
                            + ", the SHA-256 of " + teacher.transformerFile().getFileName() + " is " + sha);
        }
        return sha;
    }

    /** The valid prompts, in row order; bad rows are reported and skipped. */
    private List<String> prompts(SparkSession spark, CommandLine cli) {
        List<PromptRow> rows = input.rows(spark, cli);
        List<String> prompts = new ArrayList<>();
        List<PromptRow> bad = new ArrayList<>();
        for (PromptRow r : rows) {
            if (r.error() != null) {
                bad.add(r);
            } else {
                prompts.add(r.prompt());
            }
        }
        if (!bad.isEmpty()) {
            PrintWriter out = cli.getOut();
            out.printf("distill: skipped %d bad prompt rows%n", bad.size());
            for (PromptRow r : bad.subList(0, Math.min(bad.size(), 10))) {
                out.printf("skipped  %s row %d: %s%n", r.source(), r.row(), r.error());
            }
        }
        if (prompts.isEmpty()) {
            throw new CommandLine.ParameterException(
                    cli, "no valid prompts to distill with: all " + rows.size() + " rows are bad");
        }
        return prompts;
    }

    /** What a resumed run must share with the checkpoints it continues. */
    private Map<String, String> runIdentity(
            String teacherSha,
            FluxSnapshot student,
            List<String> prompts,
            Trainable train,
            DistillSettings settings,
            int sampleSteps,
            boolean dev) {
        Map<String, String> run = new LinkedHashMap<>();
        run.put("model_sha256", teacherSha);
        run.put("quantized_fingerprint", student.transformerFingerprint());
        run.put("prompts_sha256", promptsSha256(prompts));
        run.put("seed", Long.toString(seed));
        run.put("batch_size", Integer.toString(batchSize));
        run.put("learning_rate", Double.toString(learningRate));
        run.put("trainable", train.toString());
        run.put("height", Integer.toString(settings.height()));
        run.put("width", Integer.toString(settings.width()));
        run.put("guidance", dev ? Float.toString(guidance) : "none");
        run.put("max_sequence_length", Integer.toString(settings.maxSequenceLength()));
        run.put("sample_steps", Integer.toString(sampleSteps));
        return run;
    }

    private static String promptsSha256(List<String> prompts) {
        MessageDigest sha = Sha256.digest();
        for (String p : prompts) {
            byte[] b = p.getBytes(StandardCharsets.UTF_8);
            sha.update(Integer.toString(b.length).getBytes(StandardCharsets.US_ASCII));
            sha.update((byte) ':');
            sha.update(b);
        }
        return Sha256.hex(sha);
    }

    /**
     * Makes {@code out} the run's folder: with --resume, the last checkpoint in it (if any); otherwise a new folder, or
     * with --overwrite the existing one without its old checkpoints (the rest is replaced at the end).
     */
    private Optional<DistillCheckpoint> prepareOutput(Path out, Path checkpoints, PrintWriter err) {
        try {
            if (resume) {
                Optional<DistillCheckpoint> last = DistillCheckpoint.latest(checkpoints);
                err.printf(
                        "distill: %s%n",
                        last.map(c -> "resuming after step " + c.step() + " from " + checkpoints)
                                .orElse("no checkpoint in " + checkpoints + ": starting at step 1"));
                return last;
            }
            if (Files.isDirectory(checkpoints)) {
                deleteTree(checkpoints);
            }
            Files.createDirectories(out);
            OutputFolders.mark(out, "distill (in progress)");
            return Optional.empty();
        } catch (IOException e) {
            throw new UncheckedIOException("cannot prepare --output " + out + ": " + e.getMessage(), e);
        }
    }

    /** The distilled checkpoint's {@code distill_*} metadata: settings, sample count, first and last loss. */
    private Map<String, String> metadata(
            String method,
            int promptCount,
            Trainable train,
            DistillSettings settings,
            int sampleSteps,
            boolean dev,
            double[] losses) {
        Map<String, String> m = new LinkedHashMap<>();
        m.put("distill_student_method", method);
        m.put("distill_steps", Integer.toString(losses.length));
        m.put("distill_batch_size", Integer.toString(batchSize));
        m.put("distill_samples", Long.toString((long) losses.length * batchSize));
        m.put("distill_learning_rate", Double.toString(learningRate));
        m.put(
                "distill_optimizer",
                "adam(beta1=" + Adam.BETA1 + ",beta2=" + Adam.BETA2 + ",epsilon=" + Adam.EPSILON + ")");
        m.put("distill_trainable", train.toString());
        m.put("distill_prompts", input.label());
        m.put("distill_prompt_count", Integer.toString(promptCount));
        m.put("distill_seed", Long.toString(seed));
        m.put("distill_height", Integer.toString(settings.height()));
        m.put("distill_width", Integer.toString(settings.width()));
        m.put("distill_guidance", dev ? Float.toString(guidance) : "none");
        m.put("distill_max_sequence_length", Integer.toString(settings.maxSequenceLength()));
        m.put("distill_sample_steps", Integer.toString(sampleSteps));
        m.put("distill_first_loss", Double.toString(losses[0]));
        m.put("distill_last_loss", Double.toString(losses[losses.length - 1]));
        m.put("distill_fluxbatch_version", Version.get());
        return m;
    }

    /** Hard-links (else copies) the run's checkpoint files into the new snapshot folder. */
    private static void linkCheckpoints(Path from, Path to) throws IOException {
        Files.createDirectories(to);
        for (Path p : DistillCheckpoint.list(from)) {
            Path dst = to.resolve(p.getFileName().toString());
            try {
                Files.createLink(dst, p);
            } catch (IOException | UnsupportedOperationException e) {
                Files.copy(p, dst, StandardCopyOption.COPY_ATTRIBUTES);
            }
        }
    }

    private static void deleteTree(Path dir) throws IOException {
        try (Stream<Path> s = Files.walk(dir)) {
            for (Path p : s.sorted(Comparator.reverseOrder()).toList()) {
                Files.deleteIfExists(p);
            }
        }
    }
}
