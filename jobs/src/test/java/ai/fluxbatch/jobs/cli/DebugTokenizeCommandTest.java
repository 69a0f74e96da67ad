package ai.fluxbatch.jobs.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.fluxbatch.model.Golden;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** {@code fluxbatch debug tokenize}: exact golden ids through the command line, and bad input. */
class DebugTokenizeCommandTest {
    private static final ObjectMapper JSON = new ObjectMapper();

    @TempDir
    Path tmp;

    @Test
    void printsTheGoldenIdsForEveryPrompt() throws IOException {
        JsonNode golden =
                JSON.readTree(Golden.path("cases", "tokenizer-golden.json").toFile());
        Path prompts = tmp.resolve("prompts.json");
        JSON.writeValue(prompts.toFile(), golden.get("prompts"));
        CliRun run = CliRun.of(
                "debug",
                "tokenize",
                "--model",
                Golden.path("flux-tiny-dev").toString(),
                "--prompts-file",
                prompts.toString(),
                "--t5-max-length",
                golden.get("t5_max_length").asText());
        assertEquals(0, run.exitCode(), run.err());
        JsonNode out = JSON.readTree(run.out());
        assertEquals(golden.get("prompts").size(), out.get("clip_input_ids").size());
        for (int i = 0; i < golden.get("prompts").size(); i++) {
            String prompt = golden.get("prompts").get(i).asText();
            assertEquals(
                    golden.get("clip_input_ids").get(i),
                    out.get("clip_input_ids").get(i),
                    "CLIP ids of " + prompt);
            assertEquals(
                    golden.get("t5_input_ids").get(i), out.get("t5_input_ids").get(i), "T5 ids of " + prompt);
        }
    }

    @Test
    void defaultT5LengthIs512ForDev() throws IOException {
        Path prompts = Files.writeString(tmp.resolve("p.json"), "[\"a red circle\"]");
        CliRun run = CliRun.of(
                "debug",
                "tokenize",
                "--model",
                Golden.path("flux-tiny-dev").toString(),
                "--prompts-file",
                prompts.toString());
        assertEquals(0, run.exitCode(), run.err());
        assertEquals(512, JSON.readTree(run.out()).get("t5_input_ids").get(0).size());
    }

    @Test
    void promptsFileMustBeAListOfStrings() throws IOException {
        Path notList = Files.writeString(tmp.resolve("obj.json"), "{\"prompt\": \"x\"}");
        assertFails(notList, "expected a JSON list of prompt strings");
        Path notString = Files.writeString(tmp.resolve("num.json"), "[\"ok\", 3]");
        assertFails(notString, "entry 1 is 3, expected a string");
        Path broken = Files.writeString(tmp.resolve("broken.json"), "[\"ok\"");
        assertFails(broken, "is not valid JSON");
        assertFails(tmp.resolve("absent.json"), "absent.json is missing");
    }

    @Test
    void missingVocabularyIsNamed() throws IOException {
        Path model = tmp.resolve("model");
        Files.createDirectories(model.resolve("tokenizer"));
        Files.createDirectories(model.resolve("tokenizer_2"));
        Files.copy(Golden.path("flux-tiny-dev", "tokenizer", "merges.txt"), model.resolve("tokenizer/merges.txt"));
        Files.copy(
                Golden.path("flux-tiny-dev", "tokenizer_2", "spiece.model"), model.resolve("tokenizer_2/spiece.model"));
        Path prompts = Files.writeString(tmp.resolve("p.json"), "[\"a\"]");
        CliRun run = CliRun.of(
                "debug",
                "tokenize",
                "--model",
                model.toString(),
                "--prompts-file",
                prompts.toString(),
                "--t5-max-length",
                "8");
        assertEquals(1, run.exitCode(), run.err());
        assertTrue(run.err().contains("vocab.json"), run.err());
    }

    private void assertFails(Path prompts, String expected) {
        CliRun run = CliRun.of(
                "debug",
                "tokenize",
                "--model",
                Golden.path("flux-tiny-dev").toString(),
                "--prompts-file",
                prompts.toString(),
                "--t5-max-length",
                "8");
        assertEquals(1, run.exitCode(), run.err());
        assertTrue(run.err().contains(expected), "expected '" + expected + "' in: " + run.err());
    }
}
