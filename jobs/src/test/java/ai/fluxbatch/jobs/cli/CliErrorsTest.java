package ai.fluxbatch.jobs.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.fluxbatch.model.Golden;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.stream.Stream;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.RowFactory;
import org.apache.spark.sql.SparkSession;
import org.apache.spark.sql.types.DataTypes;
import org.apache.spark.sql.types.StructType;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Bad values are usage errors (exit 2) naming the option and the limit; failures are one line, exit 1. */
class CliErrorsTest {
    private static final String MAX = Long.toString(Long.MAX_VALUE);

    @TempDir
    Path tmp;

    private final String model = Golden.path("flux-tiny-dev").toString();

    @Test
    void outOfRangeValuesAreUsageErrorsNamingTheOptionAndTheLimit() throws IOException {
        String in =
                Golden.path("cases", "flux-tiny-dev", "forward-1.safetensors").toString();
        String out = tmp.resolve("out.safetensors").toString();
        Path promptsFile = Files.writeString(tmp.resolve("p.json"), "[\"a cat\"]");
        String[] transformer = {"debug", "transformer", "--model", model, "--input", in, "--output", out};
        assertUsageError("--threads is 0, expected 1..1024", concat(transformer, "--threads", "0"));
        assertUsageError("--threads is 100000, expected 1..1024", concat(transformer, "--threads", "100000"));
        assertUsageError(
                "--steps is 1000000000, expected 1..10000",
                "debug",
                "schedule",
                "--model",
                model,
                "--steps",
                "1000000000",
                "--seq-len",
                "16");
        assertUsageError(
                "--t5-max-length is 0, expected 1..65536",
                "debug",
                "tokenize",
                "--model",
                model,
                "--prompts-file",
                promptsFile.toString(),
                "--t5-max-length",
                "0");
        assertUsageError(
                "--axes is [1, 2], expected three positive even numbers",
                "debug",
                "synth-checkpoint",
                "--layout",
                "absent.json",
                "--output",
                tmp.resolve("s").toString(),
                "--axes",
                "1,2");
        String[] generate = {
            "generate",
            "--model",
            model,
            "--prompt",
            "x",
            "--steps",
            "1",
            "--output",
            tmp.resolve("g").toString()
        };
        assertUsageError(
                "--images-per-prompt is 1000000, expected 1..10000",
                concat(generate, "--images-per-prompt", "1000000"));
        assertUsageError(
                "--seed " + MAX + " with --images-per-prompt 2 needs seeds up to " + MAX + " + 1",
                concat(generate, "--seed", MAX, "--images-per-prompt", "2"));
        assertUsageError(
                "expected --seed <= " + (Long.MAX_VALUE - 1),
                "evaluate",
                "--reference",
                model,
                "--quantized",
                model,
                "--prompt",
                "a",
                "--prompt",
                "b",
                "--steps",
                "1",
                "--seed",
                MAX);
        assertFalse(Files.exists(tmp.resolve("g")), "generate started");
    }

    @Test
    void calibrateRefusesSeedsPastTheLargest() {
        assertUsageError(
                "--seed " + MAX + " with 2 prompts",
                "calibrate",
                "--model",
                model,
                "--prompt",
                "a",
                "--prompt",
                "b",
                "--steps",
                "1",
                "--seed",
                MAX,
                "--output",
                tmp.resolve("s.safetensors").toString());
    }

    @Test
    void aSparkFailureIsOneLineNamingTheFile() throws IOException {
        Path parquet = tmp.resolve("p.parquet");
        SparkSession spark = SparkSession.builder()
                .master("local[1]")
                .config("spark.ui.enabled", "false")
                .getOrCreate();
        try {
            List<Row> rows = List.of(RowFactory.create("a red circle"), RowFactory.create("a blue square"));
            spark.createDataFrame(rows, new StructType().add("prompt", DataTypes.StringType))
                    .coalesce(1)
                    .write()
                    .parquet(parquet.toString());
        } finally {
            spark.stop();
        }
        Path part;
        try (Stream<Path> s = Files.list(parquet)) {
            part = s.filter(p -> p.getFileName().toString().endsWith(".parquet"))
                    .findFirst()
                    .orElseThrow();
        }
        byte[] whole = Files.readAllBytes(part);
        Path truncated = Files.write(tmp.resolve("truncated.parquet"), Arrays.copyOf(whole, whole.length / 2));
        CliRun run = CliRun.of(
                "generate",
                "--model",
                model,
                "--prompts",
                truncated.toString(),
                "--steps",
                "1",
                "--height",
                "32",
                "--width",
                "32",
                "--output",
                tmp.resolve("out").toString());
        assertEquals(1, run.exitCode(), run.err());
        List<String> errors = run.err()
                .lines()
                .filter(l -> l.startsWith("fluxbatch: error: "))
                .toList();
        assertEquals(1, errors.size(), run.err());
        assertTrue(
                errors.get(0).startsWith("fluxbatch: error: cannot read Parquet file file:" + truncated)
                        && errors.get(0).contains("file:" + truncated + " is not a Parquet file"),
                run.err());
        assertFalse(errors.get(0).contains("Job aborted"), run.err());
        assertFalse(run.err().contains("\tat "), "a stack trace: " + run.err());
    }

    @Test
    void theStackTraceIsPrintedOnlyWhenAskedFor() throws IOException {
        Path notJson = Files.writeString(tmp.resolve("p.json"), "{");
        String[] args = {"debug", "tokenize", "--model", model, "--prompts-file", notJson.toString()};
        CliRun run = CliRun.of(args);
        assertEquals(1, run.exitCode());
        assertFalse(run.err().contains("\tat "), run.err());
        System.setProperty("fluxbatch.debug", "true");
        try {
            run = CliRun.of(args);
        } finally {
            System.clearProperty("fluxbatch.debug");
        }
        assertEquals(1, run.exitCode());
        assertTrue(run.err().contains("\tat ") && run.err().contains("fluxbatch: error: "), run.err());
    }

    private static void assertUsageError(String expected, String... args) {
        CliRun run = CliRun.of(args);
        assertEquals(2, run.exitCode(), String.join(" ", args) + ": " + run.err());
        assertTrue(run.err().contains(expected), "expected '" + expected + "' in: " + run.err());
    }

    private static String[] concat(String[] a, String... b) {
        String[] all = Arrays.copyOf(a, a.length + b.length);
        System.arraycopy(b, 0, all, a.length, b.length);
        return all;
    }
}
