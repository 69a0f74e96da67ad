package ai.fluxbatch.jobs.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.fluxbatch.jobs.generate.ShardPartition;
import ai.fluxbatch.model.Golden;
import java.io.IOException;
import java.net.URI;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.apache.hadoop.fs.FileSystem;
import org.apache.hadoop.fs.LocatedFileStatus;
import org.apache.hadoop.fs.RemoteIterator;
import org.apache.spark.sql.SparkSession;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code fluxbatch generate --format webdataset --output s3a://...} against a real S3-compatible server
 * ({@link LocalS3}), where a shard is created at its key with overwrite off and aborted unless complete.
 */
class S3WebDatasetTest {
    private static final List<String> PROMPTS = List.of("a red circle", "a blue square", "a green triangle");

    @TempDir
    static Path tmp;

    private static LocalS3 s3;

    @BeforeAll
    static void startS3Proxy() throws Exception {
        s3 = LocalS3.start(tmp);
        s3.createBuckets("shards");
    }

    @AfterAll
    static void stopS3Proxy() throws Exception {
        try {
            FileSystem.get(URI.create("s3a://shards/"), LocalS3.conf(s3.s3aSettings()))
                    .close();
        } finally {
            if (s3 != null) {
                s3.close();
            }
        }
    }

    private static CliRun generate(String master, String output, Path prompts) {
        return CliRun.with(
                LocalS3.sparkProperties(s3.s3aSettings()),
                "generate",
                "--model",
                Golden.path("flux-tiny-dev").toString(),
                "--steps",
                "1",
                "--height",
                "32",
                "--width",
                "32",
                "--master",
                master,
                "--prompts",
                prompts.toString(),
                "--format",
                "webdataset",
                "--images-per-shard",
                "2",
                "--image-format",
                "jpeg",
                "--output",
                output);
    }

    @Test
    void shardsOnS3AreWholeAfterARetriedTaskIndexedAndSkippedOnReRun() throws IOException {
        Path prompts = Files.write(tmp.resolve("prompts.txt"), PROMPTS);
        String root = "s3a://shards/run/";
        FileSystem fs = FileSystem.get(URI.create(root), LocalS3.conf(s3.s3aSettings()));
        System.setProperty(ShardPartition.FAIL_FIRST_ATTEMPT, "true");
        try {
            CliRun failing = generate("local[2]", root, prompts);
            assertNotEquals(0, failing.exitCode(), "without retries the failed task fails the job");
            assertFalse(
                    list(fs, root).contains(root + "shards/data-000000.tar"),
                    "no object from the task that failed mid-shard: " + list(fs, root));
            CliRun run = generate("local[2,2]", root, prompts);
            assertEquals(0, run.exitCode(), run.err() + run.out());
        } finally {
            System.clearProperty(ShardPartition.FAIL_FIRST_ATTEMPT);
        }
        List<String> keys = list(fs, root);
        assertEquals(
                List.of(
                        root + "_fluxbatch",
                        root + "run.json",
                        root + "shards/data-000000.tar",
                        root + "shards/data-000001.tar"),
                keys.stream()
                        .filter(k -> !k.contains("/metadata/") && !k.contains("/shards/index.parquet/"))
                        .toList(),
                "no temporaries, no partial shards: " + keys);
        assertTrue(keys.contains(root + "shards/index.parquet/_SUCCESS"), keys.toString());

        List<WebDatasetShards.Member> members =
                WebDatasetShards.read(fs, root, List.of("shards/data-000000.tar", "shards/data-000001.tar"));
        assertEquals(
                PROMPTS, List.copyOf(WebDatasetShards.checkSamples(members, 32).values()));
        SparkSession.Builder builder = SparkSession.builder()
                .master("local[1]")
                .config("spark.ui.enabled", "false")
                .config("spark.driver.host", "127.0.0.1");
        Map<String, String> props = new LinkedHashMap<>(LocalS3.sparkProperties(s3.s3aSettings()));
        props.forEach(builder::config);
        SparkSession spark = builder.getOrCreate();
        try {
            WebDatasetShards.checkIndex(spark, fs, root, members);
        } finally {
            spark.stop();
        }

        CliRun again = generate("local[2]", root, prompts);
        assertEquals(0, again.exitCode(), again.err() + again.out());
        assertTrue(again.out().contains("3 images: 0 written, 3 skipped"), again.out());
    }

    private static List<String> list(FileSystem fs, String root) throws IOException {
        List<String> keys = new ArrayList<>();
        try {
            RemoteIterator<LocatedFileStatus> it = fs.listFiles(new org.apache.hadoop.fs.Path(root), true);
            while (it.hasNext()) {
                keys.add(it.next().getPath().toString());
            }
        } catch (java.io.FileNotFoundException e) {
            return keys;
        }
        keys.sort(null);
        return keys;
    }
}
