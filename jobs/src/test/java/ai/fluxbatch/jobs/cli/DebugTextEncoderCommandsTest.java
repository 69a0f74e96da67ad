package ai.fluxbatch.jobs.cli;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.fluxbatch.model.Golden;
import ai.fluxbatch.model.safetensors.SafetensorsFile;
import ai.fluxbatch.model.safetensors.SafetensorsWriter;
import ai.fluxbatch.model.safetensors.TensorSource;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** {@code fluxbatch debug t5} and {@code debug clip}: golden parity through the command line, and bad input. */
class DebugTextEncoderCommandsTest {
    @TempDir
    Path tmp;

    private CliRun run(String command, Path model, Path input, Path output) {
        return CliRun.of(
                "debug",
                command,
                "--model",
                model.toString(),
                "--input",
                input.toString(),
                "--output",
                output.toString());
    }

    @Test
    void t5WritesEveryHiddenStateWithinTolerance() {
        Path golden = Golden.path("cases", "flux-tiny-dev", "t5.safetensors");
        Path out = tmp.resolve("t5.safetensors");
        CliRun r = run("t5", Golden.path("flux-tiny-dev"), golden, out);
        assertEquals(0, r.exitCode(), r.err());
        assertMatches(out, golden, "last_hidden_state", "long_last_hidden_state");
    }

    @Test
    void clipWritesHiddenStateAndPooledOutputWithinTolerance() {
        Path golden = Golden.path("cases", "flux-tiny-dev", "clip.safetensors");
        Path out = tmp.resolve("clip.safetensors");
        CliRun r = run("clip", Golden.path("flux-tiny-dev"), golden, out);
        assertEquals(0, r.exitCode(), r.err());
        assertMatches(out, golden, "last_hidden_state", "pooler_output");
    }

    private static void assertMatches(Path actualFile, Path goldenFile, String... names) {
        try (TensorSource actual = SafetensorsFile.open(actualFile);
                TensorSource golden = SafetensorsFile.open(goldenFile)) {
            for (String name : names) {
                assertArrayEquals(golden.info(name).shape(), actual.info(name).shape(), name);
                double err = Golden.relL2(actual.floats(name), golden.floats(name));
                assertTrue(err < 1e-4, name + " relative L2 " + err);
            }
        }
    }

    @Test
    void idsOutsideTheVocabularyAreRejectedByName() {
        Path input = tmp.resolve("ids.safetensors");
        new SafetensorsWriter()
                .addI64("input_ids", new long[] {1, 3}, new long[] {5, 1600, 1})
                .write(input);
        assertFails(
                "t5",
                Golden.path("flux-tiny-dev"),
                input,
                "'input_ids'",
                "id 1600 at [0, 1] is outside the vocabulary");
    }

    @Test
    void inputWithoutIdsIsRejected() {
        Path input = tmp.resolve("none.safetensors");
        new SafetensorsWriter()
                .addI64("tokens", new long[] {1, 1}, new long[] {5})
                .write(input);
        assertFails("clip", Golden.path("flux-tiny-dev"), input, "no tensor named '*input_ids'");
    }

    @Test
    void configThatDisagreesWithTheWeights() throws IOException {
        Path model = tmp.resolve("model");
        Path encoder = Files.createDirectories(model.resolve("text_encoder_2"));
        Files.copy(
                Golden.path("flux-tiny-dev", "text_encoder_2", "model.safetensors"),
                encoder.resolve("model.safetensors"));
        Files.writeString(
                encoder.resolve("config.json"),
                Files.readString(Golden.path("flux-tiny-dev", "text_encoder_2", "config.json"))
                        .replace("\"d_ff\": 64", "\"d_ff\": 128"));
        assertFails(
                "t5",
                model,
                Golden.path("cases", "flux-tiny-dev", "t5.safetensors"),
                "d_ff is 128 but the checkpoint gives 64");
    }

    @Test
    void missingTextEncoderFolder() throws IOException {
        Path model = Files.createDirectories(tmp.resolve("empty-model"));
        assertFails(
                "clip", model, Golden.path("cases", "flux-tiny-dev", "clip.safetensors"), "text_encoder is missing");
    }

    private void assertFails(String command, Path model, Path input, String... expected) {
        Path out = tmp.resolve("out.safetensors");
        List<Path> before = listing();
        CliRun r = run(command, model, input, out);
        assertEquals(1, r.exitCode(), r.err());
        for (String e : expected) {
            assertTrue(r.err().contains(e), "expected '" + e + "' in: " + r.err());
        }
        assertEquals(before, listing(), "nothing written");
    }

    private List<Path> listing() {
        try (Stream<Path> s = Files.list(tmp)) {
            return s.sorted().toList();
        } catch (IOException e) {
            throw new java.io.UncheckedIOException(e);
        }
    }
}
