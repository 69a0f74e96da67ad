package ai.fluxbatch.jobs.cli;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.fluxbatch.model.Golden;
import ai.fluxbatch.model.safetensors.DType;
import ai.fluxbatch.model.safetensors.SafetensorsFile;
import ai.fluxbatch.model.safetensors.SafetensorsWriter;
import ai.fluxbatch.model.safetensors.TensorInfo;
import ai.fluxbatch.model.safetensors.TensorSource;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.function.Predicate;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/** {@code fluxbatch debug transformer} end to end: golden parity, and every bad input failing cleanly. */
class DebugTransformerCommandTest {
    @TempDir
    Path tmp;

    @ParameterizedTest(name = "{0} {1}")
    @CsvSource({
        "flux-tiny-dev,forward-1", "flux-tiny-dev,forward-2",
        "flux-tiny-schnell,forward-1", "flux-tiny-schnell,forward-2"
    })
    void writesOutWithinToleranceOfTheReference(String model, String caseName) {
        Path in = Golden.path("cases", model, caseName + ".safetensors");
        Path out = tmp.resolve("out.safetensors");
        CliRun run = CliRun.of(
                "debug",
                "transformer",
                "--model",
                Golden.path(model).toString(),
                "--input",
                in.toString(),
                "--output",
                out.toString());
        assertEquals(0, run.exitCode(), run.err());
        try (TensorSource actual = SafetensorsFile.open(out);
                TensorSource golden = SafetensorsFile.open(in)) {
            assertEquals(DType.F32, actual.info("out").dtype());
            assertArrayEquals(golden.info("out").shape(), actual.info("out").shape());
            double err = Golden.relL2(actual.floats("out"), golden.floats("out"));
            assertTrue(err < 1e-4, "relative L2 " + err);
        }
        assertEquals(List.of(out), listing(tmp), "only the output is left in the folder");
    }

    @Test
    void runsTheShippedModelOnTheShippedExample() {
        Path root = Path.of(System.getProperty("fluxbatch.root", ".."));
        Path out = tmp.resolve("out.safetensors");
        CliRun run = CliRun.of(
                "debug",
                "transformer",
                "--model",
                root.resolve("models/flux-shapes-dev").toString(),
                "--input",
                root.resolve("conf/examples/transformer-input.safetensors").toString(),
                "--output",
                out.toString());
        assertEquals(0, run.exitCode(), run.err());
        try (TensorSource actual = SafetensorsFile.open(out)) {
            assertArrayEquals(new long[] {1, 16, 64}, actual.info("out").shape());
            for (float v : actual.floats("out")) {
                assertTrue(Float.isFinite(v));
            }
        }
    }

    @Test
    void missingModelFolder() {
        assertFails(tmp.resolve("no-such-model"), forwardCase(), "does not exist");
    }

    @Test
    void missingTransformerConfig() throws IOException {
        Path model = copyModel(name -> true);
        Files.delete(model.resolve("transformer/config.json"));
        assertFails(model, forwardCase(), "config.json is missing");
    }

    @Test
    void onlyAPickleCheckpoint() throws IOException {
        Path model = copyModel(name -> true);
        Files.move(model.resolve("flux1-dev.safetensors"), model.resolve("flux1-dev.bin"));
        assertFails(model, forwardCase(), "pickle");
    }

    @Test
    void truncatedCheckpoint() throws IOException {
        Path model = copyModel(name -> true);
        Path file = model.resolve("flux1-dev.safetensors");
        byte[] bytes = Files.readAllBytes(file);
        Files.write(file, java.util.Arrays.copyOf(bytes, bytes.length - 1000));
        assertFails(model, forwardCase(), "truncated");
    }

    @Test
    void tensorMissingFromCheckpoint() throws IOException {
        Path model = copyModel(name -> !name.equals("double_blocks.1.txt_mlp.2.weight"));
        assertFails(model, forwardCase(), "'double_blocks.1.txt_mlp.2.weight' is missing");
    }

    @Test
    void shapeDisagreesWithConfig() throws IOException {
        Path model = copyModel(name -> true);
        Path config = model.resolve("transformer/config.json");
        Files.writeString(
                config, Files.readString(config).replace("\"num_attention_heads\": 4", "\"num_attention_heads\": 8"));
        assertFails(model, forwardCase(), "num_attention_heads is 8 but the checkpoint gives 4");
    }

    @Test
    void inputFromAnotherModel() {
        Path schnellInput = Golden.path("cases", "flux-tiny-schnell", "forward-1.safetensors");
        assertFails(Golden.path("flux-tiny-dev"), schnellInput, "input tensor 'txt'");
    }

    private Path forwardCase() {
        return Golden.path("cases", "flux-tiny-dev", "forward-1.safetensors");
    }

    private void assertFails(Path model, Path input, String expectedMessage) {
        Path out = tmp.resolve("out.safetensors");
        List<Path> before = listing(tmp);
        CliRun run = CliRun.of(
                "debug",
                "transformer",
                "--model",
                model.toString(),
                "--input",
                input.toString(),
                "--output",
                out.toString());
        assertEquals(1, run.exitCode(), run.err());
        assertTrue(run.err().contains(expectedMessage), "expected '" + expectedMessage + "' in: " + run.err());
        assertEquals(before, listing(tmp), "nothing written");
    }

    /** flux-tiny-dev copied into the temporary folder, keeping only the tensors {@code keep} accepts. */
    private Path copyModel(Predicate<String> keep) throws IOException {
        Path src = Golden.path("flux-tiny-dev");
        Path dst = tmp.resolve("model");
        Files.createDirectories(dst.resolve("transformer"));
        Files.copy(src.resolve("transformer/config.json"), dst.resolve("transformer/config.json"));
        SafetensorsWriter writer = new SafetensorsWriter();
        try (TensorSource in = SafetensorsFile.open(src.resolve("flux1-dev.safetensors"))) {
            for (String name : in.names()) {
                if (keep.test(name)) {
                    TensorInfo info = in.info(name);
                    ByteBuffer data =
                            ByteBuffer.allocate((int) info.byteLength()).order(ByteOrder.LITTLE_ENDIAN);
                    data.put(in.bytes(name, 0, (int) info.byteLength())).flip();
                    writer.add(name, info.dtype(), info.shape(), data);
                }
            }
        }
        writer.write(dst.resolve("flux1-dev.safetensors"));
        return dst;
    }

    private static List<Path> listing(Path dir) {
        try (Stream<Path> s = Files.list(dir)) {
            return s.sorted().toList();
        } catch (IOException e) {
            throw new java.io.UncheckedIOException(e);
        }
    }
}
