package ai.fluxbatch.jobs.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.fluxbatch.jobs.generate.FaultyFileSystem;
import ai.fluxbatch.model.Golden;
import ai.fluxbatch.model.image.PngDecoder;
import com.fasterxml.jackson.databind.JsonNode;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Where generate writes: only under --output, into folders it made, and what it does when the output fails. */
class GenerateOutputTest {
    private static final String IMPL = "spark.hadoop." + FaultyFileSystem.IMPL_KEY;

    @TempDir
    Path tmp;

    @AfterEach
    void reset() {
        FaultyFileSystem.reset();
        System.clearProperty(IMPL);
    }

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

    /** Runs on the {@link FaultyFileSystem}: the output is {@code faulty://} + the local path. */
    private static CliRun generateOnFaultyFs(String... args) {
        System.setProperty(IMPL, FaultyFileSystem.class.getName());
        return generate(args);
    }

    private List<Path> filesUnder(Path p) throws IOException {
        try (Stream<Path> s = Files.walk(p)) {
            return s.filter(Files::isRegularFile).sorted().toList();
        }
    }

    @Test
    void aFileUriOutputWithAnEscapeKeepsImagesMarkerAndMetadataInOneFolder() throws IOException {
        Path dir = Files.createDirectories(tmp.resolve("esc"));
        CliRun run = generate("--prompt", "a red circle", "--layout", "geneval", "--output", dir.toUri() + "a%20b");
        assertEquals(0, run.exitCode(), run.err());
        Path out = dir.resolve("a b");
        List<String> files = filesUnder(dir).stream()
                .map(p -> out.relativize(p).toString())
                .filter(f -> !f.startsWith("metadata/") || f.equals("metadata/jsonl/_SUCCESS"))
                .toList();
        assertEquals(
                List.of(
                        "00000/metadata.jsonl",
                        "00000/samples/00000.png",
                        "_fluxbatch",
                        "metadata/jsonl/_SUCCESS",
                        "run.json"),
                files,
                "everything in the folder the URI names, no .crc files");
        assertTrue(Files.exists(out.resolve("metadata/parquet/_SUCCESS")));
    }

    @Test
    void t2iCompbenchNamesFromTheDataStayUnderTheOutput() throws IOException {
        Path prompts = Files.createDirectories(tmp.resolve("prompts"));
        List<String> color =
                Files.readAllLines(Golden.dir().resolveSibling("prompts").resolve("t2i-compbench/color_val.txt"));
        Files.writeString(prompts.resolve("color_val.txt"), color.get(294) + "\n"); // "... reads 11:44."
        Files.writeString(
                prompts.resolve("x.jsonl"),
                String.join(
                                "\n",
                                "{\"prompt\": \"a\", \"category\": \"../../../escaped\"}",
                                "{\"prompt\": \"red/circle\", \"category\": \"/abs\"}",
                                "{\"prompt\": \"red circle\", \"category\": \"/abs\"}",
                                "{\"prompt\": \"b\", \"category\": \"file:/x\"}",
                                "{\"prompt\": \"c\", \"category\": \"a:b\"}")
                        + "\n");
        Path out = tmp.resolve("a/b/c/out");
        CliRun run = generate("--prompts", prompts.toString(), "--layout", "t2i-compbench", "--output", out.toString());
        assertEquals(0, run.exitCode(), run.err());
        assertTrue(run.out().contains("6 images: 6 written, 0 skipped (already there), 0 failed"), run.out());
        for (String p : List.of(
                "color/samples/The white and yellow clock with a red roof reads 11%3A44._000000.png",
                "%2E.%2F..%2F..%2Fescaped/samples/a_000000.png",
                "%2Fabs/samples/red%2Fcircle_000000.png",
                "%2Fabs/samples/red circle_000000.png",
                "file%3A%2Fx/samples/b_000000.png",
                "a%3Ab/samples/c_000000.png")) {
            assertTrue(Files.isRegularFile(out.resolve(p)), p);
        }
        List<Path> outside = filesUnder(tmp).stream()
                .filter(p -> !p.startsWith(out) && !p.startsWith(prompts))
                .toList();
        assertEquals(List.of(), outside, "written outside --output");
    }

    @Test
    void theSeedColumnMakesDistinctImagesAndARepeatedRowIsMadeOnce() throws IOException {
        Path prompts = Files.writeString(
                tmp.resolve("p.jsonl"),
                String.join(
                                "\n",
                                "{\"prompt\": \"a red circle\", \"seed\": 1}",
                                "{\"prompt\": \"a red circle\", \"seed\": 2}",
                                "{\"prompt\": \"a red circle\", \"seed\": 1}")
                        + "\n");
        Path out = tmp.resolve("out");
        CliRun run = generate("--prompts", prompts.toString(), "--output", out.toString());
        assertEquals(0, run.exitCode(), run.err());
        assertTrue(
                run.err()
                        .contains("generate: 1 rows repeat an earlier row (same source, prompt and seed), so their"
                                + " images are made and listed once: p.jsonl row 2 (as row 0)"),
                run.err());
        assertTrue(run.out().contains("2 images: 2 written"), run.out());
        List<JsonNode> rows = GenerateDatasetTest.metadata(out);
        assertEquals(
                List.of(1L, 2L), rows.stream().map(r -> r.get("seed").asLong()).toList());
        assertEquals(2, rows.stream().map(r -> r.get("id").asText()).distinct().count(), rows.toString());
        assertEquals(2, filesUnder(out.resolve("images")).size());
    }

    @Test
    void aFullDiskFailsWithOneMessageKeepsTheMetadataAndLeavesNoTemporary() throws IOException {
        Path prompts = Files.writeString(tmp.resolve("p.txt"), "a red circle\na blue square\na green triangle\n");
        Path out = tmp.resolve("out");
        String uri = FaultyFileSystem.uri(out);
        FaultyFileSystem.pngLimit = 1; // room for one image
        CliRun run = generateOnFaultyFs("--prompts", prompts.toString(), "--output", uri);
        assertEquals(1, run.exitCode(), run.err() + run.out());
        List<String> errors =
                run.err().lines().filter(l -> l.startsWith("fluxbatch: error:")).toList();
        assertEquals(
                List.of("fluxbatch: error: cannot write " + uri + ": No space left on device (1 of 3 images"
                        + " written; the metadata table of the run is in " + uri + "/metadata/)"),
                errors,
                run.err());
        assertFalse(run.err().contains("\tat "), "a stack trace: " + run.err());
        assertTrue(run.err().contains("(1 written, 0 skipped, 2 failed)"), "progress: " + run.err());
        List<JsonNode> rows = GenerateDatasetTest.metadata(out);
        assertEquals(
                List.of("ok", "error", "error"),
                rows.stream().map(r -> r.get("status").asText()).toList());
        assertTrue(rows.get(1).get("error").asText().endsWith("No space left on device"), rows.toString());
        assertFalse(Files.exists(out.resolve("_tmp")), "temporary folder left");
        assertEquals(1, filesUnder(out.resolve("images")).size());
    }

    @Test
    void aDiskTooFullForTheMetadataStillFailsWithOneMessage() throws IOException {
        Path prompts = Files.writeString(tmp.resolve("p.txt"), "a red circle\na blue square\n");
        Path out = tmp.resolve("out");
        String uri = FaultyFileSystem.uri(out);
        FaultyFileSystem.pngLimit = 1;
        FaultyFileSystem.fillsUp = true;
        CliRun run = generateOnFaultyFs("--prompts", prompts.toString(), "--output", uri);
        assertEquals(1, run.exitCode(), run.err() + run.out());
        List<String> errors =
                run.err().lines().filter(l -> l.startsWith("fluxbatch: error:")).toList();
        assertEquals(1, errors.size(), run.err());
        String expected = "fluxbatch: error: cannot write " + uri + ": No space left on device (1 of 2 images"
                + " written; the metadata table could not be written either: No space left on device; its rows are in ";
        assertTrue(errors.get(0).startsWith(expected) && errors.get(0).endsWith(".jsonl)"), errors.get(0));
        Path kept =
                Path.of(errors.get(0).substring(expected.length(), errors.get(0).length() - 1));
        try {
            List<String> rows = Files.readAllLines(kept);
            assertEquals(2, rows.size(), "the record of what was written is not lost: " + rows);
            assertTrue(
                    rows.get(0).contains("\"status\":\"ok\"") && rows.get(1).contains("\"status\":\"error\""),
                    rows.toString());
        } finally {
            Files.deleteIfExists(kept);
        }
        assertFalse(run.err().contains("\tat "), "a stack trace: " + run.err());
        assertFalse(Files.exists(out.resolve("_tmp")), "temporary folder left");
    }

    @Test
    void aCorruptImageIsMadeAgainAndReplaced() throws IOException {
        Path out = tmp.resolve("out");
        FaultyFileSystem.renameKeepsExisting = true; // as HDFS: a rename does not replace an existing file
        String[] args = {"--prompt", "a red circle", "--output", FaultyFileSystem.uri(out)};
        assertEquals(0, generateOnFaultyFs(args).exitCode());
        Path png = filesUnder(out.resolve("images")).get(0);
        byte[] good = Files.readAllBytes(png);
        byte[] zeros = new byte[good.length]; // a body of zeros that still ends in an intact IEND chunk
        System.arraycopy(good, good.length - 12, zeros, zeros.length - 12, 12);
        Files.write(png, zeros);
        CliRun again = generateOnFaultyFs(args);
        assertEquals(0, again.exitCode(), again.err());
        assertTrue(again.out().contains("1 images: 1 written, 0 skipped"), again.out());
        assertEquals(
                "a red circle",
                PngDecoder.decode(Files.readAllBytes(png)).text().get("prompt"));
    }

    @Test
    void aFolderFluxbatchDidNotMakeIsRefusedUntouched() throws IOException {
        Path home = Files.createDirectories(tmp.resolve("home"));
        Path thesis = Files.writeString(home.resolve("thesis.tex"), "years of work");
        Files.createDirectories(home.resolve("images"));
        Path picture = Files.writeString(home.resolve("images/holiday.png"), "not ours");
        for (List<String> extra : List.of(List.<String>of(), List.of("--overwrite"))) {
            List<String> args = new ArrayList<>(List.of("--prompt", "a red circle", "--output", home.toString()));
            args.addAll(extra);
            CliRun run = generate(args.toArray(String[]::new));
            assertEquals(2, run.exitCode(), run.err());
            assertTrue(run.err().contains("--output " + home + " is a folder that fluxbatch did not make"), run.err());
            assertFalse(run.err().contains("prompts x"), "image work started: " + run.err());
        }
        assertEquals(List.of(picture, thesis), filesUnder(home));

        for (String blank : List.of("", " ")) {
            CliRun run = generate("--prompt", "x", "--output", blank);
            assertEquals(2, run.exitCode(), run.err());
            assertTrue(run.err().contains("--output is empty, expected a folder or URI"), run.err());
        }
    }
}
