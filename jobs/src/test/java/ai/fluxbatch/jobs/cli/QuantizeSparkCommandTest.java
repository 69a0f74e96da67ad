package ai.fluxbatch.jobs.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.fluxbatch.jobs.quantize.QuantizeJob;
import ai.fluxbatch.model.Golden;
import ai.fluxbatch.model.calib.CalibrationFile;
import ai.fluxbatch.model.calib.CalibrationStats;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code fluxbatch quantize --master local[N]}: the blocks spread over Spark tasks, one shard each, indexed by the
 * driver. The sharded checkpoint reads back as the one-file checkpoint of a one-process run (same tensors, bytes and
 * metadata), a retried task leaves the same output, a failed job none, and bad options are refused before any work.
 */
class QuantizeSparkCommandTest {
    @TempDir
    static Path shared;

    private static Path stats;
    private static Path oneProcessGptq;

    @TempDir
    Path tmp;

    @BeforeAll
    static void quantizeInOneProcess() {
        stats = QuantizedOutputs.gramStatistics(shared.resolve("gram.safetensors"));
        oneProcessGptq = shared.resolve("one-process-gptq");
        CliRun run = CliRun.of(
                "quantize",
                "--model",
                Golden.path("flux-tiny-dev").toString(),
                "--calibration",
                stats.toString(),
                "--output",
                oneProcessGptq.toString());
        assertEquals(0, run.exitCode(), run.err());
    }

    @Test
    void gptqSpreadOverTwoTasksGivesTheOneProcessTensorsAndMetadata() throws IOException {
        Path out = tmp.resolve("spread");
        CliRun run = CliRun.of(
                "quantize",
                "--master",
                "local[2]",
                "--model",
                Golden.path("flux-tiny-dev").toString(),
                "--calibration",
                stats.toString(),
                "--output",
                out.toString());
        assertEquals(0, run.exitCode(), run.err());
        assertTrue(run.err().contains("5 shards (one per block)"), run.err());
        QuantizedOutputs.assertSameTransformer(oneProcessGptq, out);
        List<String> expected = new java.util.ArrayList<>(QuantizedOutputs.files(oneProcessGptq));
        expected.remove("flux1-dev.safetensors");
        expected.add("flux1-dev.safetensors.index.json");
        for (int i = 1; i <= 5; i++) {
            expected.add(String.format("flux1-dev-%05d-of-00005.safetensors", i));
        }
        expected.sort(null);
        assertEquals(expected, QuantizedOutputs.files(out), "the shards and the index instead of the one file");
        String index = Files.readString(out.resolve("flux1-dev.safetensors.index.json"));
        assertTrue(
                index.contains("\"double_blocks.0.img_attn.qkv.weight\" : \"flux1-dev-00001-of-00005.safetensors\""),
                index);
        assertFalse(index.contains("total_size"), "only the checkpoint's own metadata: " + index);
        try (Stream<Path> siblings = Files.list(tmp)) {
            assertEquals(List.of(out), siblings.toList(), "no staging folder left beside the output");
        }
        assertTrue(run.err().contains("quantize: left out: flux1-dev.safetensors (the full-precision transformer)"));
        assertEquals(
                -1,
                Files.mismatch(
                        oneProcessGptq.resolve("transformer/config.json"), out.resolve("transformer/config.json")),
                "the same quantization_config from both paths");
        assertEquals(
                "gptq", QuantizedOutputs.quantizationConfig(out).path("method").asText());
        for (Path snapshot : List.of(oneProcessGptq, out)) {
            QuantizedOutputs.Card card = QuantizedOutputs.Card.of(snapshot);
            assertEquals("fluxbatch", card.frontMatter().path("library_name").asText());
            assertTrue(card.body().contains("- `gptq`: "), card.body());
            assertTrue(card.body().contains("- statistics: `gram.safetensors` (sha256:"), card.body());
            assertTrue(card.body().contains("- recorded on: `flux-tiny-dev`"), card.body());
        }
        String spreadCard = QuantizedOutputs.Card.of(out).body();
        assertTrue(
                spreadCard.contains("| 1.58-bit (this snapshot) | 6 files |"),
                "the shards and their index counted: " + spreadCard);
    }

    /**
     * A diffusers source keeps its layout when spread: shards {@code transformer/diffusion_pytorch_model-*} under
     * diffusers' names, indexed by those names, and the same tensors, read under the reference names, as the
     * one-process gptq run on the original layout (the two hold the same weights).
     */
    @Test
    void gptqSpreadOverADiffusersSourceWritesDiffusersShardsWithTheOriginalLayoutsTensors() throws IOException {
        Path out = tmp.resolve("spread-diffusers");
        CliRun run = CliRun.of(
                "quantize",
                "--master",
                "local[2]",
                "--model",
                Golden.path("flux-tiny-dev-diffusers").toString(),
                "--calibration",
                stats.toString(),
                "--output",
                out.toString());
        assertEquals(0, run.exitCode(), run.err());
        List<String> files = QuantizedOutputs.files(out);
        assertTrue(files.contains("transformer/diffusion_pytorch_model.safetensors.index.json"), files.toString());
        assertTrue(files.contains("transformer/diffusion_pytorch_model-00001-of-00005.safetensors"), files.toString());
        assertFalse(files.stream().anyMatch(f -> f.startsWith("flux1-")), files.toString());
        String index = Files.readString(out.resolve("transformer/diffusion_pytorch_model.safetensors.index.json"));
        assertTrue(
                index.contains("\"transformer_blocks.0.attn.to_q.weight\" : \"diffusion_pytorch_model-00001-of-00005"
                        + ".safetensors\""),
                index);
        assertTrue(index.contains("\"transformer_blocks.0.attn.to_q.weight_scale\""), index);
        assertFalse(index.contains("double_blocks"), index);
        QuantizedOutputs.assertSameTensorsUnderReferenceNames(oneProcessGptq, out);
    }

    @Test
    void aRetriedTaskLeavesTheCleanOutputAndAFailedJobLeavesNothing() throws IOException {
        Path clean = tmp.resolve("clean");
        String model = Golden.path("flux-tiny-dev").toString();
        String layers = "single_blocks\\..*"; // the double blocks are copied as they are
        assertEquals(
                0,
                CliRun.of("quantize", "--model", model, "--layers", layers, "--output", clean.toString())
                        .exitCode());
        Path failed = tmp.resolve("failed"), retried = tmp.resolve("retried");
        System.setProperty(QuantizeJob.FAIL_FIRST_ATTEMPT, "true");
        try {
            CliRun run = CliRun.of(
                    "quantize",
                    "--master",
                    "local[2]",
                    "--model",
                    model,
                    "--layers",
                    layers,
                    "--output",
                    failed.toString());
            assertNotEquals(0, run.exitCode(), "the hook fails a task, and local[2] does not retry it");
            assertTrue(run.err().contains("fails on purpose"), run.err());
            run = CliRun.of(
                    "quantize",
                    "--master",
                    "local[2,2]",
                    "--model",
                    model,
                    "--layers",
                    layers,
                    "--output",
                    retried.toString());
            assertEquals(0, run.exitCode(), run.err());
        } finally {
            System.clearProperty(QuantizeJob.FAIL_FIRST_ATTEMPT);
        }
        try (Stream<Path> s = Files.list(tmp)) {
            assertEquals(
                    List.of(clean, retried),
                    s.sorted().toList(),
                    "no output and no staging folder from the failed job");
        }
        QuantizedOutputs.assertSameTransformer(clean, retried);
        assertTrue(
                QuantizedOutputs.files(retried).stream().noneMatch(f -> f.contains(".tmp")),
                "the half shard the failed attempt left is gone: " + QuantizedOutputs.files(retried));
    }

    @Test
    void refusesABadMasterAnExistingOutputAndStatisticsThatDoNotFitBeforeAnyTask() throws IOException {
        String model = Golden.path("flux-tiny-dev").toString();
        Path out = tmp.resolve("out");
        CliRun run = CliRun.of("quantize", "--master", "bogus://x", "--model", model, "--output", out.toString());
        assertEquals(2, run.exitCode(), run.err());
        assertTrue(run.err().contains("--master bogus://x: Could not parse Master URL"), run.err());

        Path exists = Files.createDirectories(tmp.resolve("exists"));
        run = CliRun.of("quantize", "--master", "local[2]", "--model", model, "--output", exists.toString());
        assertEquals(1, run.exitCode(), run.err());
        assertTrue(run.err().contains("output folder " + exists + " exists"), run.err());
        assertFalse(run.err().contains("shards"), "refused before the job: " + run.err());
        try (Stream<Path> s = Files.list(exists)) {
            assertEquals(0, s.count(), "the existing folder is left as it was");
        }

        Path halfStats = tmp.resolve("double-only.safetensors");
        CalibrationStats doubles = new CalibrationStats();
        CalibrationFile.read(stats).stats().layers().forEach((l, s) -> {
            if (l.startsWith("double_blocks.")) {
                doubles.put(l, s);
            }
        });
        CalibrationFile.write(doubles, Map.of(), halfStats);
        run = CliRun.of(
                "quantize",
                "--master",
                "local[2]",
                "--model",
                model,
                "--calibration",
                halfStats.toString(),
                "--output",
                out.toString());
        assertEquals(1, run.exitCode(), run.err());
        assertTrue(run.err().contains("nothing for layer single_blocks.0"), run.err());
        assertFalse(run.err().contains("shards"), "refused before the job: " + run.err());
        try (Stream<Path> s = Files.list(tmp)) {
            assertEquals(List.of(halfStats, exists), s.sorted().toList(), "nothing written");
        }
    }
}
