package ai.fluxbatch.jobs.api;

import ai.fluxbatch.jobs.generate.GeneratePartition;
import ai.fluxbatch.jobs.generate.GenerateProgress;
import ai.fluxbatch.jobs.generate.GenerateSettings;
import ai.fluxbatch.jobs.generate.ImageFormat;
import ai.fluxbatch.jobs.generate.ImageResult;
import ai.fluxbatch.jobs.generate.ImageTask;
import ai.fluxbatch.jobs.generate.OutputFormat;
import ai.fluxbatch.jobs.generate.OutputLayout;
import ai.fluxbatch.jobs.model.ModelLocation;
import ai.fluxbatch.jobs.prompts.PromptRow;
import ai.fluxbatch.kernel.DeviceKind;
import ai.fluxbatch.kernel.cuda.GemmPrecision;
import ai.fluxbatch.model.pipeline.TextEncoders;
import ai.fluxbatch.model.snapshot.FluxSnapshot;
import java.io.Serializable;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Set;
import org.apache.spark.TaskContext;
import org.apache.spark.api.java.JavaRDD;
import org.apache.spark.api.java.function.FlatMapFunction;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.RowFactory;
import org.apache.spark.sql.SparkSession;
import org.apache.spark.sql.types.DataType;
import org.apache.spark.sql.types.DataTypes;
import org.apache.spark.sql.types.StructField;
import org.apache.spark.sql.types.StructType;

/**
 * Text-to-image as a DataFrame transformation: {@link #transform} takes a {@code Dataset<Row>} with a prompt column
 * (and optionally a seed column, an id column and any others) and returns a {@code Dataset<Row>} with one row per
 * image: {@code id}, the input columns, the image's seed and parameters, the encoded PNG or JPEG ({@code image}, when no output
 * folder is set) or the path it was written to ({@code path}), {@code status} and {@code error}, per-stage seconds and
 * the executor, device and backend that made it. Nothing runs until an action asks for rows, as with any Spark transformation; each
 * partition of the input is generated where it lies (prompts are never collected on the driver), by the executor's
 * engine, loaded once per executor JVM as in {@code fluxbatch generate} (which runs the same {@link
 * GeneratePartition}). The model is opened on the driver once, to derive the defaults (size, steps, T5 length) and its
 * fingerprint; a model URI is resolved through each node's model cache.
 *
 * <pre>{@code
 * ImageGenerator gen = ImageGenerator.forModel("s3a://models/FLUX.1-dev").steps(28).imagesPerPrompt(4).build(spark);
 * Dataset<Row> images = gen.transform(spark.read().parquet("s3a://data/prompts.parquet"));
 * images.write().parquet("s3a://data/images.parquet");
 * }</pre>
 */
public final class ImageGenerator implements Serializable {
    /** The columns every output row has besides the input's (which may not use these names, but for seed and id). */
    public static final List<String> COLUMNS = List.of(
            "id",
            "image_index",
            "seed",
            "height",
            "width",
            "steps",
            "guidance",
            "max_sequence_length",
            "model",
            "model_checksum",
            "quantization",
            "image",
            "path",
            "png_sha256",
            "status",
            "error",
            "text_seconds",
            "denoise_seconds",
            "vae_seconds",
            "write_seconds",
            "executor",
            "engine_loads",
            "device",
            "backend");

    private final GenerateSettings settings;
    private final String promptColumn;
    private final String seedColumn;
    private final String idColumn;
    private final long seed;
    private final int imagesPerPrompt;
    private final transient SparkSession spark;

    private ImageGenerator(Builder b, GenerateSettings settings, SparkSession spark) {
        this.settings = settings;
        this.promptColumn = b.promptColumn;
        this.seedColumn = b.seedColumn;
        this.idColumn = b.idColumn;
        this.seed = b.seed;
        this.imagesPerPrompt = b.imagesPerPrompt;
        this.spark = spark;
    }

    /** A builder for {@code model}: a snapshot folder, or a URI ({@code s3a://}, {@code hdfs://}, {@code file://}). */
    public static Builder forModel(String model) {
        return new Builder(Objects.requireNonNull(model, "model"));
    }

    /** The settings every image is made with (defaults filled in from the model). */
    public GenerateSettings settings() {
        return settings;
    }

    /** The schema {@link #transform} gives for an input of schema {@code input}; refuses an input it cannot take. */
    public StructType outputSchema(StructType input) {
        Set<String> names = Set.of(input.fieldNames());
        if (!names.contains(promptColumn)) {
            throw new IllegalArgumentException("the prompt column '" + promptColumn + "' is not in the input: its"
                    + " columns are " + Arrays.toString(input.fieldNames()) + " (set promptColumn)");
        }
        requireType(input, promptColumn, DataTypes.StringType);
        if (idColumn != null && !names.contains(idColumn)) {
            throw new IllegalArgumentException("the id column '" + idColumn + "' is not in the input: its columns are "
                    + Arrays.toString(input.fieldNames()));
        }
        List<StructField> fields = new ArrayList<>();
        fields.add(DataTypes.createStructField("id", DataTypes.StringType, false));
        for (StructField f : input.fields()) {
            if (f.name().equals(seedColumn) || f.name().equals("id")) {
                continue; // the image's own seed and id replace them
            }
            if (COLUMNS.contains(f.name())) {
                throw new IllegalArgumentException("the input column '" + f.name() + "' has the name of an output"
                        + " column (" + String.join(", ", COLUMNS) + "): rename it first");
            }
            fields.add(f);
        }
        fields.add(DataTypes.createStructField("image_index", DataTypes.IntegerType, false));
        fields.add(DataTypes.createStructField("seed", DataTypes.LongType, false));
        fields.add(DataTypes.createStructField("height", DataTypes.IntegerType, false));
        fields.add(DataTypes.createStructField("width", DataTypes.IntegerType, false));
        fields.add(DataTypes.createStructField("steps", DataTypes.IntegerType, false));
        fields.add(DataTypes.createStructField("guidance", DataTypes.FloatType, false));
        fields.add(DataTypes.createStructField("max_sequence_length", DataTypes.IntegerType, false));
        fields.add(DataTypes.createStructField("model", DataTypes.StringType, true));
        fields.add(DataTypes.createStructField("model_checksum", DataTypes.StringType, true));
        fields.add(DataTypes.createStructField("quantization", DataTypes.StringType, true));
        fields.add(DataTypes.createStructField("image", DataTypes.BinaryType, true));
        fields.add(DataTypes.createStructField("path", DataTypes.StringType, true));
        fields.add(DataTypes.createStructField("png_sha256", DataTypes.StringType, true));
        fields.add(DataTypes.createStructField("status", DataTypes.StringType, false));
        fields.add(DataTypes.createStructField("error", DataTypes.StringType, true));
        for (String stage : List.of("text_seconds", "denoise_seconds", "vae_seconds", "write_seconds")) {
            fields.add(DataTypes.createStructField(stage, DataTypes.DoubleType, false));
        }
        fields.add(DataTypes.createStructField("executor", DataTypes.StringType, true));
        fields.add(DataTypes.createStructField("engine_loads", DataTypes.IntegerType, false));
        fields.add(DataTypes.createStructField("device", DataTypes.StringType, true));
        fields.add(DataTypes.createStructField("backend", DataTypes.StringType, true));
        return DataTypes.createStructType(fields);
    }

    /**
     * One row per image of every prompt of {@code prompts} ({@code imagesPerPrompt} each), lazily. A row whose prompt
     * is empty, too long or whose seed is not a non-negative integer becomes an error row; a failed image too.
     */
    public Dataset<Row> transform(Dataset<Row> prompts) {
        StructType in = prompts.schema();
        StructType out = outputSchema(in);
        GenerateProgress.Counters counters = GenerateProgress.Counters.register(spark.sparkContext());
        GeneratePartition work =
                new GeneratePartition(settings, spark.sparkContext().hadoopConfiguration(), counters);
        JavaRDD<Row> rows = prompts.toJavaRDD().mapPartitions(new Partition(this, in, out, work));
        return spark.createDataFrame(rows, out);
    }

    private static void requireType(StructType schema, String column, DataType type) {
        DataType actual = schema.apply(column).dataType();
        if (!actual.equals(type)) {
            throw new IllegalArgumentException(
                    "the column '" + column + "' is " + actual.simpleString() + ", expected " + type.simpleString());
        }
    }

    /** One input partition: its rows to image tasks, the tasks through {@link GeneratePartition}, results to rows. */
    private static final class Partition implements FlatMapFunction<Iterator<Row>, Row> {
        private final ImageGenerator g;
        private final StructType in;
        private final StructType out;
        private final GeneratePartition work;

        Partition(ImageGenerator g, StructType in, StructType out, GeneratePartition work) {
            this.g = g;
            this.in = in;
            this.out = out;
            this.work = work;
        }

        @Override
        public Iterator<Row> call(Iterator<Row> input) throws Exception {
            TaskContext ctx = TaskContext.get();
            long base = (ctx == null ? 0L : (long) ctx.partitionId()) << 32;
            List<Row> inputs = new ArrayList<>();
            List<ImageTask> tasks = new ArrayList<>();
            while (input.hasNext()) {
                Row r = input.next();
                long index = base + inputs.size(); // the row's key within this job: partition and position
                inputs.add(r);
                Map<String, String> fields = new LinkedHashMap<>();
                for (StructField f : in.fields()) {
                    Object v = r.get(in.fieldIndex(f.name()));
                    if (!f.name().equals(g.promptColumn) && v != null) {
                        fields.put(f.name().equals(g.seedColumn) ? "seed" : f.name(), String.valueOf(v));
                    }
                }
                PromptRow p = PromptRow.of(index, "dataframe", index, r.getAs(g.promptColumn), fields);
                String givenId = g.idColumn == null ? null : String.valueOf((Object) r.getAs(g.idColumn));
                for (int i = 0; i < g.imagesPerPrompt; i++) {
                    ImageTask t = ImageTask.of(p, i, g.seed);
                    if (givenId != null) {
                        t = t.withId(g.imagesPerPrompt == 1 ? givenId : givenId + "-" + i);
                    }
                    tasks.add(t);
                }
            }
            List<Row> rows = new ArrayList<>();
            for (Iterator<ImageResult> it = work.call(tasks.iterator()); it.hasNext(); ) {
                ImageResult res = it.next();
                rows.add(row(res, inputs.get((int) (res.promptIndex() - base))));
            }
            return rows.iterator();
        }

        private Row row(ImageResult r, Row input) {
            Object[] v = new Object[out.size()];
            int k = 0;
            v[k++] = r.id();
            for (StructField f : in.fields()) {
                if (!f.name().equals(g.seedColumn) && !f.name().equals("id")) {
                    v[k++] = input.get(in.fieldIndex(f.name()));
                }
            }
            v[k++] = r.imageIndex();
            v[k++] = r.seed();
            v[k++] = r.height();
            v[k++] = r.width();
            v[k++] = r.steps();
            v[k++] = r.guidance();
            v[k++] = r.maxSequenceLength();
            v[k++] = r.model();
            v[k++] = r.modelChecksum();
            v[k++] = r.quantization();
            v[k++] = r.image();
            v[k++] = r.path();
            v[k++] = r.pngSha256();
            v[k++] = r.status();
            v[k++] = r.error();
            v[k++] = r.textSeconds();
            v[k++] = r.denoiseSeconds();
            v[k++] = r.vaeSeconds();
            v[k++] = r.writeSeconds();
            v[k++] = r.executor();
            v[k++] = r.engineLoads();
            v[k++] = r.device();
            v[k++] = r.backend();
            return RowFactory.create(v);
        }
    }

    /** What to make: the model's defaults unless set. */
    public static final class Builder {
        private final String model;
        private String promptColumn = "prompt";
        private String seedColumn = "seed";
        private String idColumn;
        private Integer height;
        private Integer width;
        private Integer steps;
        private float guidance = 3.5f;
        private Integer maxSequenceLength;
        private long seed;
        private int imagesPerPrompt = 1;
        private int batchSize = 1;
        private String output;
        private DeviceKind device = DeviceKind.AUTO;
        private ImageFormat imageFormat = ImageFormat.PNG;
        private int jpegQuality = ImageFormat.DEFAULT_JPEG_QUALITY;
        private GemmPrecision gemmPrecision = GemmPrecision.FP32;

        private Builder(String model) {
            this.model = model;
        }

        /** The column that holds the prompts (default {@code prompt}). */
        public Builder promptColumn(String name) {
            this.promptColumn = Objects.requireNonNull(name);
            return this;
        }

        /** The column of per-row seeds, used when present (default {@code seed}); rows without one use {@link #seed}. */
        public Builder seedColumn(String name) {
            this.seedColumn = Objects.requireNonNull(name);
            return this;
        }

        /** A column of ids for the images ({@code ID}, or {@code ID-i} with several images per prompt). */
        public Builder idColumn(String name) {
            this.idColumn = name;
            return this;
        }

        public Builder size(int height, int width) {
            this.height = height;
            this.width = width;
            return this;
        }

        public Builder steps(int steps) {
            this.steps = steps;
            return this;
        }

        public Builder guidance(float guidance) {
            this.guidance = guidance;
            return this;
        }

        public Builder maxSequenceLength(int tokens) {
            this.maxSequenceLength = tokens;
            return this;
        }

        /** The base seed of rows without a seed column: image {@code i} gets seed + i. */
        public Builder seed(long seed) {
            this.seed = seed;
            return this;
        }

        public Builder imagesPerPrompt(int n) {
            this.imagesPerPrompt = n;
            return this;
        }

        public Builder batchSize(int n) {
            this.batchSize = n;
            return this;
        }

        /**
         * A folder or URI to write the PNGs into ({@code images/<id>.png}; rows then carry {@code path}); without one,
         * rows carry the PNG bytes in {@code image}.
         */
        public Builder output(String output) {
            this.output = output;
            return this;
        }

        /** PNG (default) or JPEG at {@code quality} (1 to 100), the parameters in PNG text chunks or JPEG comments. */
        public Builder imageFormat(ImageFormat format, int quality) {
            if (quality < 1 || quality > 100) {
                throw new IllegalArgumentException("JPEG quality " + quality + " is outside 1..100");
            }
            this.imageFormat = Objects.requireNonNull(format);
            this.jpegQuality = quality;
            return this;
        }

        public Builder device(DeviceKind device, GemmPrecision precision) {
            this.device = Objects.requireNonNull(device);
            this.gemmPrecision = Objects.requireNonNull(precision);
            return this;
        }

        /** Opens the model on the driver (defaults, fingerprint) and checks every value, before any work. */
        public ImageGenerator build(SparkSession spark) {
            if (imagesPerPrompt < 1 || batchSize < 1) {
                throw new IllegalArgumentException("imagesPerPrompt and batchSize must be at least 1, got "
                        + imagesPerPrompt + " and " + batchSize);
            }
            if (seed < 0) {
                throw new IllegalArgumentException("seed " + seed + " is negative");
            }
            Path folder = ModelLocation.folder(model, spark.sparkContext().hadoopConfiguration());
            FluxSnapshot snapshot = FluxSnapshot.open(folder);
            int side = snapshot.defaultSampleSize().pixels();
            int h = height != null ? height : side, w = width != null ? width : side;
            int tokens = maxSequenceLength != null ? maxSequenceLength : snapshot.t5MaxLength();
            if (tokens < 1 || tokens > TextEncoders.MAX_SEQUENCE_LENGTH) {
                throw new IllegalArgumentException(
                        "maxSequenceLength " + tokens + " is outside 1.." + TextEncoders.MAX_SEQUENCE_LENGTH);
            }
            int n = steps != null ? steps : snapshot.defaultSteps();
            new ai.fluxbatch.model.pipeline.GenerationParams(h, w, n, guidance); // checks size, steps and guidance
            GenerateSettings settings = new GenerateSettings(
                    ModelLocation.isUri(model) ? model : folder.toAbsolutePath().toString(),
                    snapshot.transformerFingerprint(),
                    snapshot.quantizationMethod(),
                    output,
                    OutputLayout.DEFAULT,
                    h,
                    w,
                    n,
                    guidance,
                    tokens,
                    batchSize,
                    false,
                    device,
                    gemmPrecision,
                    imageFormat,
                    jpegQuality,
                    OutputFormat.FILES,
                    OutputFormat.DEFAULT_IMAGES_PER_SHARD);
            return new ImageGenerator(this, settings, spark);
        }
    }
}
