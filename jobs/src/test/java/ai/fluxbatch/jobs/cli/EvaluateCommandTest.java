package ai.fluxbatch.jobs.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.fluxbatch.model.Golden;
import ai.fluxbatch.model.quant.QuantizedSnapshotWriter;
import ai.fluxbatch.model.snapshot.FluxSnapshot;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** {@code fluxbatch evaluate} on the golden miniature, its absmean copy and itself. */
class EvaluateCommandTest {
    @TempDir
    static Path tmp;

    private static Path golden;
    private static Path absmean;

    @BeforeAll
    static void quantize() {
        golden = Golden.path("flux-tiny-dev");
        absmean = tmp.resolve("absmean");
        QuantizedSnapshotWriter.write(FluxSnapshot.open(golden), absmean, false, (g, d, t, s) -> {});
    }

    @Test
    void reportsEveryCandidateAndWritesTheReport() throws IOException {
        Path prompts = tmp.resolve("held-out.jsonl");
        Files.writeString(
                prompts,
                "{\"prompt\": \"a blue square above a yellow triangle\"}\n{\"prompt\": \"\"}\n"
                        + "{\"prompt\": \"a green square on the right\"}\n");
        CliRun run = CliRun.of(
                "evaluate",
                "--reference",
                golden.toString(),
                "--quantized",
                absmean.toString(),
                "--quantized",
                golden.toString(),
                "--prompt",
                "a red circle on the left",
                "--prompts",
                prompts.toString(),
                "--limit",
                "2",
                "--steps",
                "2",
                "--height",
                "64",
                "--width",
                "64",
                "--batch-size",
                "1",
                "--output",
                tmp.resolve("reports/eval.json").toString());
        System.out.print(run.out());
        assertEquals(0, run.exitCode(), run.err());
        String out = run.out();
        assertTrue(
                out.contains("- problem: 2 prompts (1 bad row skipped), 2 steps, 64 x 64, guidance 3.5,"
                        + " seeds 1000..1001, batch 1"),
                out);
        assertTrue(out.contains("| absmean | absmean | none | 100.00 % |"), out);
        assertTrue(out.contains("| flux-tiny-dev | none | none | 0.00 % | 0.0000 | inf | inf | 0.0000 |"), out);
        assertTrue(out.contains("| step | t | absmean | flux-tiny-dev |") && out.contains("\n| 1 | "), out);
        assertTrue(out.contains("- machine: ") && out.contains(" cores") && out.contains("- wall time: "), out);

        JsonNode json =
                new ObjectMapper().readTree(tmp.resolve("reports/eval.json").toFile());
        assertEquals(2, json.at("/problem/prompts").asInt());
        assertEquals(1, json.at("/problem/skipped_prompts").asInt());
        assertEquals(512, json.at("/problem/max_sequence_length").asInt());
        JsonNode q = json.at("/candidates/0");
        assertEquals("absmean", q.get("quantization_method").asText());
        assertEquals(1.0, q.get("ternary_fraction").asDouble());
        assertEquals(2, q.get("step_rel_l2").size());
        assertTrue(
                q.get("step_rel_l2").get(0).asDouble() > 0
                        && q.get("final_latent_rel_l2").asDouble() > 0,
                q.toString());
        assertTrue(
                q.get("psnr_db").isDouble() && Double.isFinite(q.get("psnr_db").asDouble()), q.toString());
        assertEquals(2, q.get("image_psnr_db").size());
        JsonNode self = json.at("/candidates/1");
        assertEquals(0.0, self.get("final_latent_rel_l2").asDouble());
        assertEquals("Infinity", self.get("psnr_db").asText());
        String md = Files.readString(tmp.resolve("reports/eval.md"));
        assertTrue(md.startsWith("# fluxbatch evaluate") && md.contains("| absmean | absmean | none |"), md);
    }

    @Test
    void warnsWhenTheReferenceIsItselfQuantized() {
        CliRun run = CliRun.of(
                "evaluate",
                "--reference",
                absmean.toString(),
                "--quantized",
                absmean.toString(),
                "--prompt",
                "a cat",
                "--steps",
                "1",
                "--height",
                "16",
                "--width",
                "16");
        assertEquals(0, run.exitCode(), run.err());
        assertTrue(
                run.err()
                        .contains("warning: the reference " + absmean.toAbsolutePath() + " is itself quantized"
                                + " (absmean, 100 % ternary)"),
                run.err());
    }

    @Test
    void refusesBadCommandLines() {
        CliRun run = CliRun.of("evaluate", "--reference", golden.toString(), "--prompt", "a cat");
        assertEquals(2, run.exitCode());
        assertTrue(run.err().contains("Missing required option: '--quantized=DIR'"), run.err());

        Path missing = tmp.resolve("no-such-model");
        run = CliRun.of(
                "evaluate", "--reference", golden.toString(), "--quantized", missing.toString(), "--prompt", "a cat");
        assertEquals(2, run.exitCode());
        assertTrue(run.err().contains("--quantized " + missing + ": no such folder"), run.err());

        run = CliRun.of(
                "evaluate",
                "--reference",
                golden.toString(),
                "--quantized",
                absmean.toString(),
                "--prompt",
                "a cat",
                "--sampels",
                "3");
        assertEquals(2, run.exitCode());
        assertTrue(run.err().contains("Unknown options: '--sampels'"), run.err());

        run = CliRun.of("evaluate", "--reference", golden.toString(), "--quantized", absmean.toString());
        assertEquals(2, run.exitCode());
        assertTrue(run.err().contains("no prompts"), run.err());

        run = CliRun.of(
                "evaluate",
                "--reference",
                golden.toString(),
                "--quantized",
                absmean.toString(),
                "--prompt",
                "a cat",
                "--height",
                "30");
        assertEquals(2, run.exitCode());
        assertTrue(run.err().contains("height is 30, expected a multiple of 16"), run.err());
    }

    @Test
    void refusesACandidateOfAnotherArchitecture() {
        Path schnell = Golden.path("flux-tiny-schnell");
        CliRun run = CliRun.of(
                "evaluate",
                "--reference",
                golden.toString(),
                "--quantized",
                schnell.toString(),
                "--prompt",
                "a cat",
                "--steps",
                "1");
        assertEquals(1, run.exitCode());
        assertTrue(
                run.err().contains("candidate " + schnell)
                        && run.err()
                                .contains("the reference "
                                        + golden.toAbsolutePath().normalize()),
                run.err());
    }
}
