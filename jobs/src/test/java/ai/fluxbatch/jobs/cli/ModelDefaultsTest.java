package ai.fluxbatch.jobs.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.fluxbatch.model.Golden;
import ai.fluxbatch.model.image.PngDecoder;
import ai.fluxbatch.model.pipeline.GenerationParams;
import ai.fluxbatch.model.snapshot.FluxSnapshot;
import com.fasterxml.jackson.databind.JsonNode;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.stream.Stream;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;
import picocli.CommandLine;

/**
 * Height, width, steps and T5 length from the model when not given: the option logic on full-size synthetic FLUX.1
 * snapshots (all-zero sparse files from {@code debug synth-checkpoint --zeros}; nothing runs them) and the shipped
 * miniature, explicit values winning, bad values refused before any work, and the T5 length carried into a run's
 * images and metadata.
 */
class ModelDefaultsTest {
    @TempDir
    static Path shared;

    private static Path dev;
    private static Path schnell;

    @TempDir
    Path tmp;

    @BeforeAll
    static void synthesize() {
        dev = synthesize("flux1-dev-layout.json", "dev");
        schnell = synthesize("flux1-schnell-layout.json", "schnell");
    }

    private static Path synthesize(String layout, String name) {
        Path out = shared.resolve(name);
        CliRun run = CliRun.of(
                "debug",
                "synth-checkpoint",
                "--zeros",
                "--layout",
                Golden.path(layout).toString(),
                "--output",
                out.toString());
        assertEquals(0, run.exitCode(), run.err());
        return out;
    }

    @Test
    void synthCheckpointZerosTakeNoSeed() {
        CliRun run = CliRun.of(
                "debug",
                "synth-checkpoint",
                "--zeros",
                "--seed",
                "3",
                "--layout",
                Golden.path("flux1-dev-layout.json").toString(),
                "--output",
                tmp.resolve("s").toString());
        assertEquals(2, run.exitCode(), run.err());
        assertTrue(run.err().contains("--seed and --zeros"), run.err());
        assertFalse(Files.exists(tmp.resolve("s")));
    }

    private static Path shipped() {
        return Path.of(System.getProperty("fluxbatch.root", "..")).resolve("models/flux-shapes-dev");
    }

    /** generate's options parsed from {@code args} (after --model and one --prompt), as the command sees them. */
    private record Parsed(GenerateCommand command, CommandLine cli, FluxSnapshot snapshot) {
        GenerationParams params() {
            return command.image.params(cli, snapshot);
        }

        int length() {
            return command.image.maxSequenceLength(cli, snapshot);
        }

        String describe() {
            return command.image.describe(params(), length());
        }
    }

    private static Parsed generate(Path model, String... args) {
        GenerateCommand command = new GenerateCommand();
        CommandLine cli = new CommandLine(command);
        String[] all = new String[args.length + 4];
        all[0] = "--model";
        all[1] = model.toString();
        all[2] = "--prompt";
        all[3] = "x";
        System.arraycopy(args, 0, all, 4, args.length);
        cli.parseArgs(all);
        return new Parsed(command, cli, FluxSnapshot.open(model));
    }

    @Test
    void aFullSizeDevSnapshotDefaultsTo1024With50StepsAnd512Tokens() {
        Parsed p = generate(dev);
        assertEquals(new GenerationParams(1024, 1024, 50, 3.5f), p.params());
        assertEquals(512, p.length());
        assertEquals(
                "1024 x 1024 (the model's sample size), 50 steps (the model's), guidance 3.5, T5 length 512 (the"
                        + " model's)",
                p.describe());
    }

    @Test
    void aFullSizeSchnellSnapshotDefaultsTo1024With4StepsAnd256Tokens() {
        Parsed p = generate(schnell);
        assertEquals(new GenerationParams(1024, 1024, 4, 3.5f), p.params());
        assertEquals(256, p.length());
    }

    @Test
    void theShippedMiniatureDefaultsTo64() {
        Parsed p = generate(shipped());
        assertEquals(new GenerationParams(64, 64, 50, 3.5f), p.params());
        assertEquals(512, p.length());
    }

    @Test
    void explicitValuesWin() {
        Parsed p = generate(dev, "--height", "512", "--width", "768", "--steps", "3", "--max-sequence-length", "128");
        assertEquals(new GenerationParams(512, 768, 3, 3.5f), p.params());
        assertEquals(128, p.length());
        assertEquals("512 x 768, 3 steps, guidance 3.5, T5 length 128", p.describe());

        Parsed widthOnly = generate(schnell, "--width", "256", "--max-sequence-length", "512");
        assertEquals(new GenerationParams(1024, 256, 4, 3.5f), widthOnly.params());
        assertEquals(512, widthOnly.length(), "as much as dev's for schnell too, as diffusers allows");
        assertTrue(
                widthOnly.describe().startsWith("1024 x 256 (height: the model's sample size), 4 steps (the model's)"));
        assertEquals(
                new GenerationParams(32, 1024, 50, 3.5f),
                generate(shipped(), "--height", "32", "--width", "1024").params(),
                "the shipped miniature at another size");
    }

    @ParameterizedTest
    @ValueSource(strings = {"0", "513", "-4"})
    void aLengthOutside1To512IsAUsageErrorNamingTheOptionAndTheRange(String length) {
        Parsed p = generate(dev, "--max-sequence-length", length);
        CommandLine.ParameterException e = assertThrows(CommandLine.ParameterException.class, p::length);
        assertTrue(
                e.getMessage().startsWith("--max-sequence-length is " + length + ", expected 1..512"), e.getMessage());
        if (length.equals("513")) {
            assertTrue(e.getMessage().contains("FLUX.1 was trained with 512 T5 tokens at most"), e.getMessage());
        }
    }

    @Test
    void aDefaultSizeThatIsNoImageSizeIsAUsageErrorSayingWhereItComesFrom() throws IOException {
        Path odd = tmp.resolve("odd");
        Files.createDirectories(odd.resolve("transformer"));
        Files.createDirectories(odd.resolve("vae"));
        Files.writeString(odd.resolve("transformer/config.json"), "{\"sample_size\": 9}");
        Files.writeString(odd.resolve("vae/config.json"), "{\"block_out_channels\": [1, 2, 3, 4]}");
        Parsed p = generate(odd, "--width", "64");
        CommandLine.ParameterException e = assertThrows(CommandLine.ParameterException.class, p::params);
        assertTrue(
                e.getMessage()
                        .startsWith("--height is not given, and the model's sample size 72 (sample_size 9 x VAE scale"
                                + " factor 8, from " + odd.resolve("transformer/config.json")),
                e.getMessage());
        assertTrue(e.getMessage().endsWith("pass --height and --width"), e.getMessage());
        assertEquals(
                new GenerationParams(48, 64, 2, 3.5f),
                generate(odd, "--height", "48", "--width", "64", "--steps", "2").params(),
                "given sizes need no default");
    }

    @Test
    void generateOnTheFullSizeLayoutSaysItsDefaultsBeforeItLooksForTheTextEncoders() {
        Path out = tmp.resolve("out");
        CliRun run = CliRun.of("generate", "--model", dev.toString(), "--prompt", "x", "--output", out.toString());
        assertEquals(1, run.exitCode(), run.err());
        assertTrue(
                run.err()
                        .contains("generate: 1024 x 1024 (the model's sample size), 50 steps (the model's), guidance"
                                + " 3.5, T5 length 512 (the model's)"),
                run.err());
        assertTrue(run.err().contains("text_encoder"), run.err());
        assertFalse(Files.exists(out), "nothing written");
    }

    @Test
    void everyCommandRefusesABadLengthBeforeAnyWork() throws IOException {
        String tiny = Golden.path("flux-tiny-dev").toString();
        String[][] commands = {
            {"generate", "--model", tiny, "--output", tmp.resolve("g").toString()},
            {
                "calibrate",
                "--model",
                tiny,
                "--output",
                tmp.resolve("c.safetensors").toString()
            },
            {"evaluate", "--reference", tiny, "--quantized", tiny},
            {
                "distill",
                "--model",
                tiny,
                "--quantized",
                tiny,
                "--output",
                tmp.resolve("d").toString()
            }
        };
        for (String[] command : commands) {
            for (String length : List.of("0", "513")) {
                String[] args = Stream.concat(
                                Stream.of(command), Stream.of("--prompt", "x", "--max-sequence-length", length))
                        .toArray(String[]::new);
                CliRun run = CliRun.of(args);
                assertEquals(2, run.exitCode(), command[0] + ": " + run.err());
                assertTrue(
                        run.err().contains("--max-sequence-length is " + length + ", expected 1..512"),
                        command[0] + ": " + run.err());
            }
        }
        assertEquals(List.of(), listing(tmp), "nothing written");
    }

    @Test
    void generateRecordsTheLengthInTheImageAndTheMetadata() throws IOException {
        Path out = tmp.resolve("out");
        CliRun run = CliRun.of(
                "generate",
                "--model",
                shipped().toString(),
                "--prompt",
                "a red circle",
                "--steps",
                "1",
                "--max-sequence-length",
                "128",
                "--output",
                out.toString());
        assertEquals(0, run.exitCode(), run.err());
        assertTrue(
                run.err()
                        .contains("generate: 64 x 64 (the model's sample size), 1 step, guidance 3.5, T5 length 128"
                                + System.lineSeparator()),
                run.err());
        PngDecoder.Decoded png = PngDecoder.decode(Files.readAllBytes(onlyPng(out)));
        assertEquals(64, png.image().width(), "the shipped miniature's own size");
        assertEquals(64, png.image().height());
        assertEquals("128", png.text().get("max_sequence_length"));
        List<JsonNode> rows = GenerateDatasetTest.metadata(out);
        assertEquals(1, rows.size());
        assertEquals(128, rows.get(0).get("max_sequence_length").asInt());
        assertEquals(64, rows.get(0).get("height").asInt());
        assertEquals(64, rows.get(0).get("width").asInt());
    }

    private static Path onlyPng(Path out) throws IOException {
        try (Stream<Path> s = Files.list(out.resolve("images"))) {
            List<Path> pngs = s.filter(p -> p.toString().endsWith(".png")).toList();
            assertEquals(1, pngs.size(), pngs.toString());
            return pngs.get(0);
        }
    }

    private static List<Path> listing(Path dir) throws IOException {
        try (Stream<Path> s = Files.list(dir)) {
            return s.sorted().toList();
        }
    }
}
