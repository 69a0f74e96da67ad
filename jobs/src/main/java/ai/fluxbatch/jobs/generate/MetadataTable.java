package ai.fluxbatch.jobs.generate;

import ai.fluxbatch.jobs.output.Locations;
import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.RowFactory;
import org.apache.spark.sql.SparkSession;
import org.apache.spark.sql.types.DataTypes;
import org.apache.spark.sql.types.StructField;
import org.apache.spark.sql.types.StructType;

/**
 * The output's metadata, one row per image (skipped and failed ones included), as Parquet and jsonl under
 * OUTPUT/metadata/; each run's rows are merged into the table of the runs before ({@link MetadataHistory}).
 */
public final class MetadataTable {
    static final StructType SCHEMA = new StructType(new StructField[] {
        field("id", DataTypes.StringType),
        field("source", DataTypes.StringType),
        field("row", DataTypes.LongType),
        field("prompt_index", DataTypes.LongType),
        field("prompt", DataTypes.StringType),
        field("image_index", DataTypes.IntegerType),
        field("seed", DataTypes.LongType),
        field("fields", DataTypes.createMapType(DataTypes.StringType, DataTypes.StringType)),
        field("height", DataTypes.IntegerType),
        field("width", DataTypes.IntegerType),
        field("steps", DataTypes.IntegerType),
        field("guidance", DataTypes.FloatType),
        field("max_sequence_length", DataTypes.IntegerType),
        field("model", DataTypes.StringType),
        field("model_checksum", DataTypes.StringType),
        field("quantization", DataTypes.StringType),
        field("path", DataTypes.StringType),
        field("png_sha256", DataTypes.StringType),
        field("text_seconds", DataTypes.DoubleType),
        field("denoise_seconds", DataTypes.DoubleType),
        field("vae_seconds", DataTypes.DoubleType),
        field("write_seconds", DataTypes.DoubleType),
        field("executor", DataTypes.StringType),
        field("engine_loads", DataTypes.IntegerType),
        field("status", DataTypes.StringType),
        field("error", DataTypes.StringType),
        field("device", DataTypes.StringType),
        field("backend", DataTypes.StringType)
    });

    private static final ObjectMapper JSON = new ObjectMapper();

    private MetadataTable() {}

    private static StructField field(String name, org.apache.spark.sql.types.DataType type) {
        return DataTypes.createStructField(name, type, true);
    }

    /** Merges {@code results} into the metadata table under {@code output} ({@link MetadataHistory#write}). */
    public static void write(SparkSession spark, List<ImageResult> results, String output) throws IOException {
        // the same folder ImageStore writes into: a file: or s3a:// URI with its escapes, a local path literally
        String root = Locations.path(output).toString();
        String base = root.endsWith("/") ? root : root + "/";
        MetadataHistory.write(spark, rows(spark, results), base + "metadata");
    }

    /**
     * The rows as jsonl in a new local file under {@code folder}, for when the output cannot take them (a full disk):
     * the record of what was written is not lost. Returns the file.
     */
    public static Path writeLocally(SparkSession spark, List<ImageResult> results, Path folder) throws IOException {
        Path file = Files.createTempFile(folder, "fluxbatch-metadata-", ".jsonl");
        Files.write(file, dataFrame(spark, results).toJSON().collectAsList(), StandardCharsets.UTF_8);
        return file;
    }

    private static Dataset<Row> dataFrame(SparkSession spark, List<ImageResult> results) {
        return ordered(rows(spark, results));
    }

    /** The table in the order it is written: by prompt, then image; in one file. */
    static Dataset<Row> ordered(Dataset<Row> table) {
        return table.orderBy("prompt_index", "image_index", "id").coalesce(1);
    }

    private static Dataset<Row> rows(SparkSession spark, List<ImageResult> results) {
        List<Row> rows = new ArrayList<>();
        for (ImageResult r : results) {
            rows.add(RowFactory.create(values(r)));
        }
        return spark.createDataFrame(rows, SCHEMA);
    }

    /**
     * {@code r} as one JSON object with the table's column names, as a line of the jsonl table has it (null columns
     * left out).
     */
    public static String json(ImageResult r) {
        Object[] values = values(r);
        String[] names = SCHEMA.fieldNames();
        Map<String, Object> row = new LinkedHashMap<>();
        for (int i = 0; i < names.length; i++) {
            Object v = values[i] instanceof scala.collection.Map<?, ?> m
                    ? scala.jdk.javaapi.CollectionConverters.asJava(m)
                    : values[i];
            if (v != null) {
                row.put(names[i], v);
            }
        }
        try {
            return JSON.writeValueAsString(row);
        } catch (JsonProcessingException e) {
            throw new IllegalStateException("cannot write the metadata row of " + r.id() + " as JSON: " + e, e);
        }
    }

    private static Object[] values(ImageResult r) {
        return new Object[] {
            r.id(),
            r.source(),
            r.row(),
            r.promptIndex(),
            r.prompt(),
            r.imageIndex(),
            r.seed(),
            scala.jdk.javaapi.CollectionConverters.asScala(r.fields()),
            r.height(),
            r.width(),
            r.steps(),
            r.guidance(),
            r.maxSequenceLength(),
            r.model(),
            r.modelChecksum(),
            r.quantization(),
            r.path(),
            r.pngSha256(),
            r.textSeconds(),
            r.denoiseSeconds(),
            r.vaeSeconds(),
            r.writeSeconds(),
            r.executor(),
            r.engineLoads(),
            r.status(),
            r.error(),
            r.device(),
            r.backend()
        };
    }
}
