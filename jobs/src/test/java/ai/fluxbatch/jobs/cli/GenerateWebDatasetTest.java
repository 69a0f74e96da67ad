package ai.fluxbatch.jobs.cli;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.fluxbatch.jobs.generate.ImageEncoding;
import ai.fluxbatch.jobs.generate.ShardPartition;
import ai.fluxbatch.model.Golden;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;
import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.fs.FileSystem;
import org.apache.spark.sql.SparkSession;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** {@code generate --format webdataset} and {@code --image-format jpeg} in local mode. */
class GenerateWebDatasetTest {
    private static final List<String> PROMPTS = List.of("a red circle", "a blue square", "a green triangle");

    @TempDir
    Path tmp;

    private static CliRun generate(String... args) {
        List<String> all = new ArrayList<>(List.of(
                "generate",
                "--model",
                Golden.path("flux-tiny-dev").toString(),
                "--steps",
                "1",
                "--height",
                "32",
                "--width",
                "32"));
        all.addAll(Arrays.asList(args));
        return CliRun.of(all.toArray(String[]::new));
    }

    private Path prompts() throws IOException {
        return Files.write(tmp.resolve("prompts.txt"), PROMPTS);
    }

    private static List<String> files(Path root) throws IOException {
        try (Stream<Path> s = Files.walk(root)) {
            return s.filter(Files::isRegularFile)
                    .map(p -> root.relativize(p).toString())
                    .filter(f -> !f.startsWith("metadata/") && !f.startsWith("shards/index.parquet/"))
                    .sorted()
                    .toList();
        }
    }

    private static SparkSession spark() {
        return SparkSession.builder()
                .master("local[1]")
                .config("spark.ui.enabled", "false")
                .config("spark.driver.host", "127.0.0.1")
                .getOrCreate();
    }

    /** Reads the run's two shards with a plain tar reader and checks samples and index; returns the members. */
    private static List<WebDatasetShards.Member> check(Path out) throws IOException {
        FileSystem fs = FileSystem.getLocal(new Configuration());
        String root = out.toUri().toString();
        List<WebDatasetShards.Member> members =
                WebDatasetShards.read(fs, root, List.of("shards/data-000000.tar", "shards/data-000001.tar"));
        Map<String, String> prompts = WebDatasetShards.checkSamples(members, 32);
        assertEquals(PROMPTS, List.copyOf(prompts.values()), "every image once, in task order");
        assertEquals(
                2 * 3, members.stream().filter(m -> m.shard().endsWith("0.tar")).count(), "2 per shard");
        SparkSession spark = spark();
        try {
            WebDatasetShards.checkIndex(spark, fs, root, members);
        } finally {
            spark.stop();
        }
        return members;
    }

    @Test
    void shardsHoldEveryImageTheIndexMatchesAndAReRunSkipsThem() throws IOException {
        Path out = tmp.resolve("wds");
        String[] args = {
            "--prompts", prompts().toString(),
            "--format", "webdataset",
            "--images-per-shard", "2",
            "--image-format", "jpeg",
            "--jpeg-quality", "80",
            "--output", out.toString()
        };
        CliRun run = generate(args);
        assertEquals(0, run.exitCode(), run.err() + run.out());
        assertTrue(run.out().contains("3 images: 3 written, 0 skipped"), run.out());
        assertEquals(List.of("_fluxbatch", "run.json", "shards/data-000000.tar", "shards/data-000001.tar"), files(out));
        assertTrue(Files.exists(out.resolve("shards/index.parquet/_SUCCESS")));
        check(out);
        byte[] shard0 = Files.readAllBytes(out.resolve("shards/data-000000.tar"));
        long modified0 =
                Files.getLastModifiedTime(out.resolve("shards/data-000000.tar")).toMillis();

        CliRun again = generate(args);
        assertEquals(0, again.exitCode(), again.err() + again.out());
        assertTrue(again.out().contains("3 images: 0 written, 3 skipped"), again.out());
        assertArrayEquals(shard0, Files.readAllBytes(out.resolve("shards/data-000000.tar")));
        assertEquals(
                modified0,
                Files.getLastModifiedTime(out.resolve("shards/data-000000.tar")).toMillis());
        check(out); // the index is written again, from the skipped shards
    }

    @Test
    void aShardThatDoesNotHoldItsImagesIsMadeAgain() throws IOException {
        Path out = tmp.resolve("changed");
        Path prompts = prompts();
        CliRun run = generate(
                "--prompts",
                prompts.toString(),
                "--format",
                "webdataset",
                "--images-per-shard",
                "2",
                "--image-format",
                "jpeg",
                "--output",
                out.toString());
        assertEquals(0, run.exitCode(), run.err() + run.out());
        // another prompt first: every task moves on by one, so neither shard holds what its tasks make now
        List<String> more = new ArrayList<>(List.of("a yellow star"));
        more.addAll(PROMPTS);
        Files.write(prompts, more.subList(0, 3));
        CliRun again = generate(
                "--prompts",
                prompts.toString(),
                "--format",
                "webdataset",
                "--images-per-shard",
                "2",
                "--image-format",
                "jpeg",
                "--output",
                out.toString());
        assertEquals(0, again.exitCode(), again.err() + again.out());
        assertTrue(again.out().contains("3 images: 3 written, 0 skipped"), again.out());
        List<WebDatasetShards.Member> members = WebDatasetShards.read(
                FileSystem.getLocal(new Configuration()),
                out.toUri().toString(),
                List.of("shards/data-000000.tar", "shards/data-000001.tar"));
        assertEquals(
                more.subList(0, 3),
                List.copyOf(WebDatasetShards.checkSamples(members, 32).values()));
    }

    @Test
    void aTaskThatFailsMidShardLeavesNoPartialShardAndItsRetryWritesItWhole() throws IOException {
        Path out = tmp.resolve("retried");
        List<String> args = List.of(
                "--prompts", prompts().toString(),
                "--format", "webdataset",
                "--images-per-shard", "2",
                "--image-format", "jpeg",
                "--output", out.toString());
        System.setProperty(ShardPartition.FAIL_FIRST_ATTEMPT, "true");
        try {
            List<String> once = new ArrayList<>(List.of("--master", "local[2]"));
            once.addAll(args);
            CliRun failing = generate(once.toArray(String[]::new));
            assertNotEquals(0, failing.exitCode(), "without retries the failed task fails the job");
            assertFalse(Files.exists(out.resolve("shards/data-000000.tar")), "no shard from the failed task");
            assertFalse(Files.exists(out.resolve("_tmp")), "no temporary left");

            List<String> retried = new ArrayList<>(List.of("--master", "local[2,2]"));
            retried.addAll(args);
            CliRun run = generate(retried.toArray(String[]::new));
            assertEquals(0, run.exitCode(), run.err() + run.out());
            assertTrue(run.out().contains("3 images: "), run.out());
        } finally {
            System.clearProperty(ShardPartition.FAIL_FIRST_ATTEMPT);
        }
        assertEquals(List.of("_fluxbatch", "run.json", "shards/data-000000.tar", "shards/data-000001.tar"), files(out));
        check(out);
    }

    @Test
    void jpegFilesCarryTheirParametersAndAreSkippedOnReRun() throws IOException {
        Path out = tmp.resolve("jpeg");
        String[] args = {"--prompt", "a red circle", "--seed", "7", "--image-format", "jpeg", "--output", out.toString()
        };
        CliRun run = generate(args);
        assertEquals(0, run.exitCode(), run.err() + run.out());
        List<String> images =
                files(out).stream().filter(f -> f.startsWith("images/")).toList();
        assertEquals(1, images.size(), images.toString());
        assertTrue(images.get(0).endsWith(".jpg"), images.toString());
        ImageEncoding.Jpeg jpeg = ImageEncoding.readJpeg(Files.readAllBytes(out.resolve(images.get(0))));
        assertEquals(32, jpeg.width());
        assertEquals("a red circle", jpeg.comments().get("prompt"));
        assertEquals("7", jpeg.comments().get("seed"));
        assertTrue(
                jpeg.comments().get("parameters").contains("Seed: 7, Size: 32x32"),
                jpeg.comments().toString());
        CliRun again = generate(args);
        assertTrue(again.out().contains("1 images: 0 written, 1 skipped"), again.out());
    }

    @Test
    void formatOptionsAreCheckedBeforeAnyWork() {
        String out = tmp.resolve("never").toString();
        assertRefused(
                "--jpeg-quality is 101, expected 1..100",
                "--image-format",
                "jpeg",
                "--jpeg-quality",
                "101",
                "--output",
                out);
        assertRefused(
                "--jpeg-quality is 0, expected 1..100",
                "--image-format",
                "jpeg",
                "--jpeg-quality",
                "0",
                "--output",
                out);
        assertRefused(
                "--jpeg-quality is for --image-format jpeg, and the image format is png",
                "--jpeg-quality",
                "90",
                "--output",
                out);
        assertRefused("--image-format is 'gif', expected png or jpeg", "--image-format", "gif", "--output", out);
        assertRefused("--format is 'zip', expected files or webdataset", "--format", "zip", "--output", out);
        assertRefused(
                "--images-per-shard is for --format webdataset, and the format is files",
                "--images-per-shard",
                "5",
                "--output",
                out);
        assertRefused(
                "--images-per-shard is 0, expected >= 1",
                "--format",
                "webdataset",
                "--images-per-shard",
                "0",
                "--output",
                out);
        assertRefused(
                "--layout geneval places files, and --format webdataset names each sample",
                "--format",
                "webdataset",
                "--layout",
                "geneval",
                "--output",
                out);
        assertRefused(
                "--images-per-partition is for --format files",
                "--format",
                "webdataset",
                "--images-per-partition",
                "4",
                "--output",
                out);
        assertFalse(Files.exists(tmp.resolve("never")), "nothing written");
    }

    private static void assertRefused(String message, String... args) {
        List<String> all = new ArrayList<>(List.of("--prompt", "a red circle"));
        all.addAll(Arrays.asList(args));
        CliRun run = generate(all.toArray(String[]::new));
        assertEquals(2, run.exitCode(), run.err() + run.out());
        assertTrue(run.err().contains(message), run.err());
    }
}
