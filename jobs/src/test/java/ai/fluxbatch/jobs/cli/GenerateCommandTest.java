package ai.fluxbatch.jobs.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.fluxbatch.jobs.generate.Engines;
import ai.fluxbatch.model.Golden;
import ai.fluxbatch.model.image.PngDecoder;
import ai.fluxbatch.model.safetensors.SafetensorsFile;
import ai.fluxbatch.model.safetensors.TensorSource;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/** {@code fluxbatch generate} in Spark local mode: the reference's pictures, re-runs, and input checked up front. */
class GenerateCommandTest {
    @TempDir
    Path tmp;

    @ParameterizedTest
    @CsvSource({"flux-tiny-dev,e2e-1", "flux-tiny-dev,e2e-2", "flux-tiny-dev-diffusers,e2e-1"})
    void writesThePngTheReferenceWrites(String model, String caseName) throws IOException {
        try (TensorSource g = SafetensorsFile.open(Golden.path("cases", "flux-tiny-dev", caseName + ".safetensors"))) {
            Map<String, String> m = g.metadata();
            Path out = tmp.resolve("out");
            CliRun run = CliRun.of(
                    "generate",
                    "--model",
                    Golden.path(model).toString(),
                    "--prompt",
                    m.get("prompt"),
                    "--seed",
                    m.get("seed"),
                    "--height",
                    m.get("height"),
                    "--width",
                    m.get("width"),
                    "--steps",
                    m.get("steps"),
                    "--guidance",
                    m.get("guidance"),
                    "--output",
                    out.toString());
            assertEquals(0, run.exitCode(), run.err() + run.out());
            List<Path> pngs = pngs(out);
            assertEquals(1, pngs.size(), pngs.toString());
            PngDecoder.Decoded png = PngDecoder.decode(Files.readAllBytes(pngs.get(0)));
            Golden.assertPixelsClose(
                    caseName,
                    g.bytes("rgb_u8", 0, (int) g.info("rgb_u8").byteLength()),
                    png.image().rgb());
            assertEquals(m.get("prompt"), png.text().get("prompt"));
            assertEquals(m.get("seed"), png.text().get("seed"));
            assertEquals("512", png.text().get("max_sequence_length"), "the golden cases' (a dev model's) length");
            assertTrue(
                    png.text()
                            .get("parameters")
                            .contains("Seed: " + m.get("seed") + ", Size: " + m.get("width") + "x" + m.get("height")),
                    png.text().get("parameters"));
        }
    }

    @Test
    void reRunSkipsWhatExistsAndLoadsTheEngineOncePerJvm() throws IOException {
        Path out = tmp.resolve("out");
        String[] args = {
            "generate",
            "--model",
            Golden.path("flux-tiny-dev").toString(),
            "--prompt",
            "a red circle",
            "--prompt",
            "a blue square",
            "--images-per-prompt",
            "2",
            "--steps",
            "2",
            "--height",
            "32",
            "--width",
            "48",
            "--batch-size",
            "2",
            "--output",
            out.toString()
        };
        int loadsBefore = Engines.loads();
        CliRun first = CliRun.of(args);
        assertEquals(0, first.exitCode(), first.err());
        assertEquals(4, pngs(out).size());
        assertTrue(first.out().contains("4 images: 4 written, 0 skipped"), first.out());
        CliRun second = CliRun.of(args);
        assertEquals(0, second.exitCode(), second.err());
        assertTrue(second.out().contains("4 images: 0 written, 4 skipped"), second.out());
        assertTrue(Engines.loads() - loadsBefore <= 1, "engine loaded " + (Engines.loads() - loadsBefore) + " times");
        try (Stream<Path> all = Files.walk(out)) {
            assertTrue(all.noneMatch(p -> p.getFileName().toString().equals("_tmp")), "no temporary folder left");
        }
    }

    @Test
    void badInputFailsBeforeAnyWork() throws IOException {
        String model = Golden.path("flux-tiny-dev").toString();
        Path file = Files.writeString(tmp.resolve("a-file"), "x");
        assertUsage("--height is 65", "--model", model, "--prompt", "x", "--height", "65");
        assertUsage("--width is 0", "--model", model, "--prompt", "x", "--width", "0");
        assertUsage("--height is 8192", "--model", model, "--prompt", "x", "--height", "8192");
        assertUsage("--steps is 0", "--model", model, "--prompt", "x", "--steps", "0");
        assertUsage("--seed is -1", "--model", model, "--prompt", "x", "--seed", "-1");
        assertUsage("no prompts", "--model", model);
        assertUsage("is a file", "--model", model, "--prompt", "x", "--output", file.toString());
        assertUsage("Unknown options: '--colour'", "--model", model, "--prompt", "x", "--colour", "red");
        assertEquals(List.of(file), listing());
    }

    @Test
    void aModelWithAMissingComponentFailsBeforeAnyWork() throws IOException {
        Path model = tmp.resolve("model");
        for (String f : List.of(
                "flux1-dev.safetensors",
                "transformer/config.json",
                "text_encoder/config.json",
                "text_encoder/model.safetensors",
                "text_encoder_2/config.json",
                "text_encoder_2/model.safetensors",
                "tokenizer/vocab.json",
                "tokenizer/merges.txt",
                "tokenizer_2/spiece.model",
                "vae/config.json")) {
            Files.createDirectories(model.resolve(f).getParent());
            Files.copy(Golden.path("flux-tiny-dev").resolve(f), model.resolve(f));
        }
        CliRun run = CliRun.of(
                "generate",
                "--model",
                model.toString(),
                "--prompt",
                "x",
                "--output",
                tmp.resolve("out").toString());
        assertEquals(1, run.exitCode(), run.out());
        assertTrue(run.err().contains("ae.safetensors is missing"), run.err());
        assertTrue(!Files.exists(tmp.resolve("out")), "nothing written");
    }

    private void assertUsage(String expected, String... args) {
        String[] all = new String[args.length + 1];
        all[0] = "generate";
        System.arraycopy(args, 0, all, 1, args.length);
        CliRun run = CliRun.of(all);
        assertEquals(2, run.exitCode(), run.err());
        assertTrue(run.err().contains(expected), "expected '" + expected + "' in: " + run.err());
    }

    private List<Path> listing() throws IOException {
        try (Stream<Path> s = Files.list(tmp)) {
            return s.sorted().toList();
        }
    }

    private static List<Path> pngs(Path out) throws IOException {
        try (Stream<Path> s = Files.list(out.resolve("images"))) {
            return s.filter(p -> p.toString().endsWith(".png")).sorted().toList();
        }
    }
}
