package ai.fluxbatch.jobs.generate;

import ai.fluxbatch.jobs.SerializableConfiguration;
import ai.fluxbatch.jobs.output.Locations;
import java.io.FileNotFoundException;
import java.io.IOException;
import java.io.Serializable;
import java.io.UncheckedIOException;
import java.util.ArrayList;
import java.util.List;
import org.apache.commons.compress.archivers.tar.TarArchiveEntry;
import org.apache.commons.compress.archivers.tar.TarArchiveInputStream;
import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.fs.FSDataInputStream;
import org.apache.hadoop.fs.FileStatus;
import org.apache.hadoop.fs.FileSystem;
import org.apache.hadoop.fs.Path;
import org.apache.spark.api.java.JavaSparkContext;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.RowFactory;
import org.apache.spark.sql.SaveMode;
import org.apache.spark.sql.SparkSession;
import org.apache.spark.sql.types.DataTypes;
import org.apache.spark.sql.types.StructField;
import org.apache.spark.sql.types.StructType;

/**
 * The WebDataset shards' index: one row per tar member (shard, sample id, member name, offset of the member's data in
 * the tar, size), so that a reader can fetch one image with a ranged read. Read from the shards themselves (their
 * headers only) by a Spark job and written as Parquet under {@code OUTPUT/shards/index.parquet}: the index always
 * matches the tars, skipped shards of an earlier run included.
 */
public final class ShardIndex {
    /** The folder of the shards under the output, and their names: {@code shards/data-000000.tar}. */
    public static final String FOLDER = "shards";

    public static final String INDEX = FOLDER + "/index.parquet";

    static final StructType SCHEMA = new StructType(new StructField[] {
        DataTypes.createStructField("shard", DataTypes.StringType, false),
        DataTypes.createStructField("id", DataTypes.StringType, false),
        DataTypes.createStructField("member", DataTypes.StringType, false),
        DataTypes.createStructField("offset", DataTypes.LongType, false),
        DataTypes.createStructField("size", DataTypes.LongType, false)
    });

    private ShardIndex() {}

    /** One member of a shard: {@code offset} is where its data starts in the tar. */
    public record Member(String shard, String id, String member, long offset, long size) implements Serializable {}

    /** The shard file of shard {@code number}, relative to the output. */
    public static String shardPath(int number) {
        return String.format(java.util.Locale.ROOT, "%s/data-%06d.tar", FOLDER, number);
    }

    /**
     * The members of the tar at {@code tar} (named {@code shard} in the rows), or null where there is none. Throws
     * {@link IOException} when it is not a complete tar (a header that does not parse, data or end-of-archive records
     * cut short).
     */
    public static List<Member> read(FileSystem fs, Path tar, String shard) throws IOException {
        FileStatus st;
        try {
            st = fs.getFileStatus(tar);
        } catch (FileNotFoundException e) {
            return null;
        }
        List<Member> members = new ArrayList<>();
        long end = 0;
        try (FSDataInputStream raw = fs.open(tar);
                TarArchiveInputStream in = new TarArchiveInputStream(raw, "UTF-8")) {
            for (TarArchiveEntry e = in.getNextEntry(); e != null; e = in.getNextEntry()) {
                if (!e.isFile()) {
                    continue;
                }
                long offset = in.getBytesRead();
                String name = e.getName();
                int dot = name.indexOf('.', name.lastIndexOf('/') + 1);
                String id = dot < 0 ? name : name.substring(0, dot);
                members.add(new Member(shard, id, name, offset, e.getSize()));
                end = offset + (e.getSize() + 511) / 512 * 512;
            }
        } catch (IOException | IllegalArgumentException e) {
            throw new IOException("not a complete tar: " + tar + ": " + e.getMessage(), e);
        }
        if (st.getLen() < end + 1024) { // two zero records end a tar
            throw new IOException("not a complete tar: " + tar + " ends at " + st.getLen()
                    + " bytes, before its end-of-archive records");
        }
        return members;
    }

    /** Reads the shards {@code 0 .. shards - 1} under {@code output} (those that exist) and writes their index. */
    public static void write(SparkSession spark, String output, int shards) {
        String root = Locations.path(output).toString();
        String base = root.endsWith("/") ? root : root + "/";
        List<Integer> numbers = new ArrayList<>();
        for (int i = 0; i < shards; i++) {
            numbers.add(i);
        }
        JavaSparkContext sc = JavaSparkContext.fromSparkContext(spark.sparkContext());
        SerializableConfiguration conf = new SerializableConfiguration(sc.hadoopConfiguration());
        List<Row> none = List.of();
        var rows = sc.parallelize(numbers.isEmpty() ? List.of(-1) : numbers, Math.max(1, Math.min(shards, 64)))
                .flatMap(
                        n -> n < 0 ? none.iterator() : rows(conf.get(), base, n).iterator());
        spark.createDataFrame(rows, SCHEMA)
                .orderBy("shard", "offset")
                .coalesce(1)
                .write()
                .mode(SaveMode.Overwrite)
                .parquet(base + INDEX);
    }

    private static List<Row> rows(Configuration conf, String base, int number) {
        String shard = shardPath(number);
        Path tar = new Path(base + shard);
        try {
            List<Member> members = read(tar.getFileSystem(conf), tar, shard);
            List<Row> rows = new ArrayList<>();
            for (Member m : members == null ? List.<Member>of() : members) {
                rows.add(RowFactory.create(m.shard(), m.id(), m.member(), m.offset(), m.size()));
            }
            return rows;
        } catch (IOException e) {
            throw new UncheckedIOException("cannot index the shard " + tar + ": " + e.getMessage(), e);
        }
    }
}
