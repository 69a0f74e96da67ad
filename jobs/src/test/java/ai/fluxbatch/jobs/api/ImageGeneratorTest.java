package ai.fluxbatch.jobs.api;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.fluxbatch.jobs.generate.Engines;
import ai.fluxbatch.model.Golden;
import ai.fluxbatch.model.image.PngDecoder;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import org.apache.spark.scheduler.SparkListener;
import org.apache.spark.scheduler.SparkListenerJobStart;
import org.apache.spark.scheduler.SparkListenerTaskEnd;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.RowFactory;
import org.apache.spark.sql.SparkSession;
import org.apache.spark.sql.types.DataTypes;
import org.apache.spark.sql.types.StructType;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The DataFrame API in Spark local mode, on a three-column Parquet of prompts (StandaloneClusterTest: on a cluster). */
public class ImageGeneratorTest {
    @TempDir
    Path tmp;

    /** What the driver saw while a generator ran: jobs started, and the bytes tasks sent back to it. */
    static final class DriverWatch extends SparkListener {
        final AtomicInteger jobs = new AtomicInteger();
        final AtomicLong resultBytes = new AtomicLong();

        @Override
        public void onJobStart(SparkListenerJobStart jobStart) {
            jobs.incrementAndGet();
        }

        @Override
        public void onTaskEnd(SparkListenerTaskEnd taskEnd) {
            if (taskEnd.taskMetrics() != null) {
                resultBytes.addAndGet(taskEnd.taskMetrics().resultSize());
            }
        }
    }

    /** Three prompts with a seed column (one row without a seed) and a category column, as Parquet. */
    public static Path promptsParquet(SparkSession spark, Path folder) {
        StructType schema = DataTypes.createStructType(List.of(
                DataTypes.createStructField("prompt", DataTypes.StringType, true),
                DataTypes.createStructField("seed", DataTypes.LongType, true),
                DataTypes.createStructField("category", DataTypes.StringType, true)));
        List<Row> rows = List.of(
                RowFactory.create("a red circle on the left", 7L, "color"),
                RowFactory.create("a blue square", null, "shape"),
                RowFactory.create("a green triangle above a white circle", 1000L, "position"));
        Path out = folder.resolve("prompts.parquet");
        spark.createDataFrame(rows, schema).repartition(2).write().parquet(out.toString());
        return out;
    }

    /**
     * Every prompt's images once (2 each), lazily: no job runs until the write, the images are made and written by
     * the tasks (the driver receives fewer bytes than the images hold), one engine load in each of at most {@code
     * executors} executors.
     */
    public static void checkRun(SparkSession spark, Path prompts, Path output, int executors) throws Exception {
        Dataset<Row> input = spark.read().parquet(prompts.toString());
        DriverWatch watch = new DriverWatch();
        int loadsBefore = Engines.loads();
        ImageGenerator gen = ImageGenerator.forModel(
                        Golden.path("flux-tiny-dev").toString())
                .size(32, 32)
                .steps(2)
                .imagesPerPrompt(2)
                .seed(100)
                .build(spark);
        spark.sparkContext().addSparkListener(watch);
        Dataset<Row> images;
        try {
            images = gen.transform(input);
            spark.sparkContext().listenerBus().waitUntilEmpty();
            assertEquals(0, watch.jobs.get(), "transform ran a job: it must be lazy");
            images.write().parquet(output.toString());
            spark.sparkContext().listenerBus().waitUntilEmpty();
        } finally {
            spark.sparkContext().removeSparkListener(watch);
        }
        List<Row> rows = spark.read().parquet(output.toString()).collectAsList();
        assertEquals(6, rows.size(), rows.toString());
        Set<String> ids = new HashSet<>(), made = new HashSet<>(), runOn = new HashSet<>();
        Set<Integer> loads = new HashSet<>();
        long imageBytes = 0;
        for (Row r : rows) {
            assertEquals("ok", r.getAs("status"), r.toString());
            assertTrue(ids.add(r.getAs("id")), "id twice: " + r);
            assertTrue(made.add(r.getAs("prompt") + "#" + r.getAs("image_index")), "image twice: " + r);
            long seed = r.getAs("seed");
            int index = r.getAs("image_index");
            String prompt = r.getAs("prompt");
            long base = prompt.startsWith("a red") ? 7 : prompt.startsWith("a blue") ? 100 : 1000;
            assertEquals(base + index, seed, r.toString());
            assertNotNull(r.getAs("category"));
            if (executors > 1) { // fresh executor JVMs: their first and only load
                assertEquals(1, (int) r.getAs("engine_loads"), "one engine load per executor: " + r);
            }
            loads.add(r.getAs("engine_loads"));
            byte[] png = r.getAs("image");
            imageBytes += png.length;
            PngDecoder.Decoded d = PngDecoder.decode(png);
            assertEquals(32, d.image().width());
            assertEquals(prompt, d.text().get("prompt"));
            assertNull(r.getAs("path"));
            assertEquals("cpu", r.getAs("device"), r.toString());
            runOn.add(r.getAs("executor"));
        }
        assertTrue(runOn.size() >= 1 && runOn.size() <= executors, "executors that made images: " + runOn);
        if (executors == 1) { // this JVM: earlier tests may have loaded (and the bounded cache evicted) the model
            assertTrue(Engines.loads() - loadsBefore <= 1, "loaded " + (Engines.loads() - loadsBefore) + " times");
            assertEquals(1, loads.size(), "every image by one engine: " + loads);
        }
        if (executors > 1) {
            assertTrue(!runOn.contains("driver"), "made in the driver: " + runOn);
        }
        assertTrue(
                watch.resultBytes.get() < imageBytes,
                "the driver received " + watch.resultBytes.get() + " bytes from the tasks, the images are " + imageBytes
                        + ": rows were collected");
    }

    @Test
    void generatesEveryRowOnceLazilyOnTheExecutors() throws Exception {
        SparkSession spark = SparkSession.builder()
                .master("local[2]")
                .appName("image-generator-test")
                .config("spark.ui.enabled", "false")
                .config("spark.driver.host", "127.0.0.1")
                .getOrCreate();
        try {
            Path prompts = promptsParquet(spark, tmp);
            checkRun(spark, prompts, tmp.resolve("images.parquet"), 1);
        } finally {
            spark.stop();
        }
    }

    @Test
    void refusesAnInputItCannotTakeBeforeAnyWork() throws Exception {
        SparkSession spark = SparkSession.builder()
                .master("local[1]")
                .appName("image-generator-test")
                .config("spark.ui.enabled", "false")
                .config("spark.driver.host", "127.0.0.1")
                .getOrCreate();
        try {
            ImageGenerator gen = ImageGenerator.forModel(
                            Golden.path("flux-tiny-dev").toString())
                    .size(32, 32)
                    .steps(2)
                    .build(spark);
            List<Row> one = List.of(RowFactory.create("a red circle", "x"));
            Dataset<Row> noPrompt = spark.createDataFrame(
                    one,
                    DataTypes.createStructType(List.of(
                            DataTypes.createStructField("text", DataTypes.StringType, true),
                            DataTypes.createStructField("status", DataTypes.StringType, true))));
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> gen.transform(noPrompt));
            assertTrue(e.getMessage().contains("'prompt'") && e.getMessage().contains("text"), e.getMessage());
            Dataset<Row> clash = noPrompt.withColumnRenamed("text", "prompt");
            e = assertThrows(IllegalArgumentException.class, () -> gen.transform(clash));
            assertTrue(e.getMessage().contains("'status'"), e.getMessage());
            e = assertThrows(
                    IllegalArgumentException.class,
                    () -> ImageGenerator.forModel(Golden.path("flux-tiny-dev").toString())
                            .maxSequenceLength(513)
                            .build(spark));
            assertTrue(e.getMessage().contains("513"), e.getMessage());
            // a bad row is an error row, the others are made
            List<Row> rows = new ArrayList<>(List.of(RowFactory.create("a red circle"), RowFactory.create("  ")));
            Dataset<Row> two = spark.createDataFrame(
                    rows,
                    DataTypes.createStructType(
                            List.of(DataTypes.createStructField("prompt", DataTypes.StringType, true))));
            List<String> status = gen.transform(two)
                    .select("status")
                    .as(org.apache.spark.sql.Encoders.STRING())
                    .collectAsList();
            assertEquals(List.of("error", "ok"), status.stream().sorted().toList());
            // JPEG rows: the bytes of a JPEG of the asked size
            Row jpeg = ImageGenerator.forModel(Golden.path("flux-tiny-dev").toString())
                    .size(32, 48)
                    .steps(1)
                    .imageFormat(ai.fluxbatch.jobs.generate.ImageFormat.JPEG, 90)
                    .build(spark)
                    .transform(two)
                    .where("status = 'ok'")
                    .first();
            java.awt.image.BufferedImage decoded =
                    javax.imageio.ImageIO.read(new java.io.ByteArrayInputStream(jpeg.getAs("image")));
            assertEquals(48, decoded.getWidth());
            assertEquals(32, decoded.getHeight());
            assertArrayEquals(
                    new String[] {"id", "prompt"},
                    java.util.Arrays.copyOf(gen.outputSchema(two.schema()).fieldNames(), 2));
        } finally {
            spark.stop();
        }
    }
}
