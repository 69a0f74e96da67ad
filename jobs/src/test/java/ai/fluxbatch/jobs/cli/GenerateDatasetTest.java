package ai.fluxbatch.jobs.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.fluxbatch.jobs.generate.Engines;
import ai.fluxbatch.model.Golden;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The dataset side of generate: error rows, the metadata table, re-runs after an interruption, benchmark layouts. */
class GenerateDatasetTest {
    private static final ObjectMapper JSON = new ObjectMapper();

    @TempDir
    Path tmp;

    private CliRun generate(String... args) {
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

    static List<JsonNode> metadata(Path out) throws IOException {
        List<JsonNode> rows = new ArrayList<>();
        try (Stream<Path> files = Files.list(out.resolve("metadata/jsonl"))) {
            for (Path f : files.filter(p -> p.toString().endsWith(".json")).toList()) {
                for (String line : Files.readAllLines(f)) {
                    rows.add(JSON.readTree(line));
                }
            }
        }
        return rows;
    }

    @Test
    void badRowsBecomeErrorRowsAndTheJobGoesOn() throws IOException {
        Path prompts = Files.writeString(
                tmp.resolve("p.jsonl"),
                String.join(
                                "\n",
                                "{\"prompt\": \"a red circle\", \"style\": \"flat\"}",
                                "{\"prompt\": \"a blue square\", \"seed\": \"twelve\"}",
                                "{\"prompt\": \"\"}",
                                "{\"prompt\": \"a green triangle\", \"seed\": 5}")
                        + "\n");
        Path out = tmp.resolve("out");
        int loadsBefore = Engines.loads();
        CliRun run = generate("--prompts", prompts.toString(), "--output", out.toString());
        assertEquals(0, run.exitCode(), run.err());
        assertTrue(run.out().contains("4 images: 2 written, 0 skipped (already there), 2 failed"), run.out());
        // once in this run (earlier tests in this JVM may have loaded it, and the bounded cache evicted it since)
        assertTrue(Engines.loads() - loadsBefore <= 1, "engine loaded " + (Engines.loads() - loadsBefore) + " times");
        List<JsonNode> rows = metadata(out);
        assertEquals(
                List.of("ok", "error", "error", "ok"),
                rows.stream().map(r -> r.get("status").asText()).toList());
        assertEquals("seed 'twelve' is not an integer", rows.get(1).get("error").asText());
        assertEquals("empty prompt", rows.get(2).get("error").asText());
        assertEquals(5, rows.get(3).get("seed").asLong(), "the seed column wins");
        assertEquals("flat", rows.get(0).get("fields").get("style").asText());
        assertEquals(64, rows.get(0).get("png_sha256").asText().length());
        assertEquals(
                rows.get(0).get("engine_loads").asInt(),
                rows.get(3).get("engine_loads").asInt());
        assertTrue(rows.get(0).get("engine_loads").asInt() >= 1);
        assertEquals(512, rows.get(0).get("max_sequence_length").asInt(), "a dev model's own T5 length");
        assertTrue(Files.exists(out.resolve("metadata/parquet")));

        CliRun strict = generate("--prompts", prompts.toString(), "--output", out.toString(), "--fail-on-error");
        assertEquals(1, strict.exitCode(), strict.out());
    }

    @Test
    void aReRunAfterAnInterruptionMakesEachImageExactlyOnce() throws IOException {
        Path out = tmp.resolve("out");
        String[] args = {
            "--prompts",
            Golden.dir().resolveSibling("prompts").resolve("shapes/eval.txt").toString(),
            "--limit",
            "6",
            "--output",
            out.toString(),
            "--images-per-partition",
            "2"
        };
        assertEquals(0, generate(args).exitCode());
        List<Path> pngs = pngs(out);
        assertEquals(6, pngs.size());
        // an interrupted run leaves some images missing and one cut short
        Files.delete(pngs.get(0));
        byte[] whole = Files.readAllBytes(pngs.get(1));
        Files.write(pngs.get(1), Arrays.copyOf(whole, whole.length / 2));
        CliRun again = generate(args);
        assertEquals(0, again.exitCode(), again.err());
        assertTrue(again.out().contains("6 images: 2 written, 4 skipped"), again.out());
        assertEquals(6, pngs(out).size());
        assertEquals(whole.length, Files.size(pngs.get(1)), "the cut image was made again, whole");
        assertEquals(6, metadata(out).size(), "the table lists every image of the run, skipped ones too");
    }

    @Test
    void genevalLayout() throws IOException {
        Path out = tmp.resolve("geneval");
        CliRun run = generate(
                "--prompts",
                Golden.dir()
                        .resolveSibling("prompts")
                        .resolve("geneval/evaluation_metadata.jsonl")
                        .toString(),
                "--limit",
                "2",
                "--images-per-prompt",
                "2",
                "--layout",
                "geneval",
                "--output",
                out.toString());
        assertEquals(0, run.exitCode(), run.err());
        for (String p : List.of(
                "00000/metadata.jsonl",
                "00000/samples/00000.png",
                "00000/samples/00001.png",
                "00001/metadata.jsonl",
                "00001/samples/00001.png")) {
            assertTrue(Files.isRegularFile(out.resolve(p)), p);
        }
        JsonNode meta = JSON.readTree(Files.readString(out.resolve("00001/metadata.jsonl")));
        assertEquals("a photo of a cow", meta.get("prompt").asText());
        assertEquals("single_object", meta.get("tag").asText());
    }

    @Test
    void t2iCompbenchLayout() {
        Path out = tmp.resolve("t2i");
        CliRun run = generate(
                "--prompts",
                Golden.dir()
                        .resolveSibling("prompts")
                        .resolve("t2i-compbench/color_val.txt")
                        .toString(),
                "--limit",
                "1",
                "--layout",
                "t2i-compbench",
                "--output",
                out.toString());
        assertEquals(0, run.exitCode(), run.err());
        assertTrue(Files.isRegularFile(out.resolve("color/samples/a green bench and a blue bowl_000000.png")));
    }

    @Test
    void malformedDatasetFailsBeforeAnyWork() throws IOException {
        Path bad = Files.writeString(tmp.resolve("bad.jsonl"), "{\"prompt\": \"ok\"}\nnot json\n");
        CliRun run = generate(
                "--prompts", bad.toString(), "--output", tmp.resolve("o").toString());
        assertEquals(1, run.exitCode());
        assertTrue(run.err().contains("bad.jsonl line 2 is not valid JSON"), run.err());
        assertTrue(!Files.exists(tmp.resolve("o/images")), "no image work started");
    }

    private static List<Path> pngs(Path out) throws IOException {
        try (Stream<Path> s = Files.list(out.resolve("images"))) {
            return s.filter(p -> p.toString().endsWith(".png")).sorted().toList();
        }
    }
}
