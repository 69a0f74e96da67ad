package ai.fluxbatch.jobs.generate;

import static org.apache.spark.sql.functions.when;

import java.io.IOException;
import java.util.ArrayList;
import java.util.List;
import java.util.UUID;
import org.apache.hadoop.fs.FSError;
import org.apache.hadoop.fs.FileSystem;
import org.apache.hadoop.fs.Path;
import org.apache.spark.sql.Column;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.SaveMode;
import org.apache.spark.sql.SparkSession;

/**
 * The metadata table across runs: each run's rows merged into the table already under the output, one row per image
 * id with its latest status. An image of an earlier run that this run did not list keeps its row; an image this run
 * skipped (already there) keeps the checksum, timings and device of the row of the run that wrote it. The new table is
 * written beside the old one and only then moved into its place, so a failure never loses the earlier table. With
 * Spark, so the rows never need to be on the driver.
 */
final class MetadataHistory {
    /** The columns a skipped image keeps from the row of the run that wrote it. */
    static final List<String> KEPT_WHEN_SKIPPED = List.of(
            "png_sha256",
            "text_seconds",
            "denoise_seconds",
            "vae_seconds",
            "write_seconds",
            "executor",
            "engine_loads",
            "device",
            "backend");

    private static final List<String> PARTS = List.of("parquet", "jsonl");

    private MetadataHistory() {}

    /**
     * {@code current} (this run's rows) merged into {@code previous} (the table under the output, read with
     * {@link MetadataTable#SCHEMA}, so columns it predates are null): every row of {@code current}, skipped rows with
     * {@link #KEPT_WHEN_SKIPPED} from their earlier row where that has a checksum, and the rows of {@code previous}
     * whose id {@code current} does not have.
     */
    static Dataset<Row> merge(Dataset<Row> previous, Dataset<Row> current) {
        Dataset<Row> earlier = previous.dropDuplicates("id");
        Column sameId = current.col("id").equalTo(earlier.col("id"));
        Column inherit = current.col("status")
                .equalTo(ImageResult.SKIPPED)
                .and(earlier.col("png_sha256").isNotNull());
        List<Column> columns = new ArrayList<>();
        for (String name : current.columns()) {
            columns.add(
                    KEPT_WHEN_SKIPPED.contains(name)
                            ? when(inherit, earlier.col(name))
                                    .otherwise(current.col(name))
                                    .as(name)
                            : current.col(name).as(name));
        }
        Dataset<Row> latest = current.join(earlier, sameId, "left").select(columns.toArray(Column[]::new));
        Dataset<Row> untouched = earlier.join(current, sameId, "left_anti");
        return latest.unionByName(untouched);
    }

    /**
     * Writes the table of {@code current} merged into the one under {@code folder} (OUTPUT/metadata) as
     * {@code folder/parquet} and {@code folder/jsonl}: first under {@code folder/_new-<uuid>}, then the old parts are
     * moved aside and the new ones into place. When the move fails the message says where the earlier table is.
     */
    static void write(SparkSession spark, Dataset<Row> current, String folder) throws IOException {
        Path dir = new Path(folder);
        FileSystem fs = dir.getFileSystem(spark.sparkContext().hadoopConfiguration());
        Path parquet = new Path(dir, "parquet");
        Dataset<Row> table = current;
        if (fs.exists(new Path(parquet, "_SUCCESS"))) { // a table fluxbatch finished writing
            table = merge(spark.read().schema(MetadataTable.SCHEMA).parquet(parquet.toString()), current);
        }
        table = MetadataTable.ordered(table);
        String run = UUID.randomUUID().toString();
        Path fresh = new Path(dir, "_new-" + run);
        Path old = new Path(dir, "_old-" + run);
        boolean written = false;
        try {
            table.write().mode(SaveMode.ErrorIfExists).parquet(new Path(fresh, "parquet").toString());
            table.write().mode(SaveMode.ErrorIfExists).json(new Path(fresh, "jsonl").toString());
            written = true;
        } finally { // a failure (often a SparkException, checked in Scala) leaves the earlier table untouched
            if (!written) {
                deleteQuietly(fs, fresh);
            }
        }
        try {
            boolean moved = false;
            for (String part : PARTS) {
                Path live = new Path(dir, part);
                if (fs.exists(live)) {
                    fs.mkdirs(old);
                    if (!fs.rename(live, new Path(old, part))) {
                        throw new IOException("could not move " + live + " to " + old);
                    }
                    moved = true;
                }
                if (!fs.rename(new Path(fresh, part), live)) {
                    throw new IOException("could not move " + new Path(fresh, part) + " to " + live
                            + (moved ? "; the earlier table is in " + old : ""));
                }
            }
        } catch (FSError e) {
            throw new IOException(
                    ImageStore.cause(e) + "; the new table is in " + fresh + ", the earlier one in " + old + " or "
                            + dir,
                    e);
        }
        deleteQuietly(fs, old);
        deleteQuietly(fs, fresh);
    }

    private static void deleteQuietly(FileSystem fs, Path p) {
        try {
            fs.delete(p, true);
        } catch (IOException | FSError e) {
            // a leftover folder beside the table; the table itself is complete
        }
    }
}
