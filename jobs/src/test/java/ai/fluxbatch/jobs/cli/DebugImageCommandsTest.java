package ai.fluxbatch.jobs.cli;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.fluxbatch.model.Golden;
import ai.fluxbatch.model.safetensors.SafetensorsFile;
import ai.fluxbatch.model.safetensors.TensorSource;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.nio.ByteBuffer;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** {@code debug vae-decode}, {@code vae-encode}, {@code noise} and {@code schedule} against the golden data. */
class DebugImageCommandsTest {
    @TempDir
    Path tmp;

    private final Path vaeCase = Golden.path("cases", "flux-tiny-dev", "vae.safetensors");

    @Test
    void vaeDecodeAndEncode() {
        Path decoded = tmp.resolve("decoded.safetensors");
        CliRun run = CliRun.of(
                "debug",
                "vae-decode",
                "--model",
                Golden.path("flux-tiny-dev").toString(),
                "--input",
                vaeCase.toString(),
                "--output",
                decoded.toString());
        assertEquals(0, run.exitCode(), run.err());
        Path encoded = tmp.resolve("encoded.safetensors");
        run = CliRun.of(
                "debug",
                "vae-encode",
                "--model",
                Golden.path("flux-tiny-dev").toString(),
                "--input",
                vaeCase.toString(),
                "--output",
                encoded.toString());
        assertEquals(0, run.exitCode(), run.err());
        try (TensorSource g = SafetensorsFile.open(vaeCase);
                TensorSource d = SafetensorsFile.open(decoded);
                TensorSource e = SafetensorsFile.open(encoded)) {
            assertArrayEquals(g.info("image").shape(), d.info("image").shape());
            assertTrue(Golden.relL2(d.floats("image"), g.floats("image")) < 1e-4);
            assertTrue(Golden.relL2(e.floats("encode_mean"), g.floats("encode_mean")) < 1e-4);
        }
    }

    @Test
    void vaeDecodeNamesAMissingInput() {
        CliRun run = CliRun.of(
                "debug",
                "vae-decode",
                "--model",
                Golden.path("flux-tiny-dev").toString(),
                "--input",
                Golden.path("cases", "flux-tiny-dev", "t5.safetensors").toString(),
                "--output",
                tmp.resolve("o.safetensors").toString());
        assertEquals(1, run.exitCode());
        assertTrue(run.err().contains("input tensor 'z' is missing"), run.err());
    }

    @Test
    void noiseIsBitExact() {
        Path out = tmp.resolve("noise.safetensors");
        CliRun run = CliRun.of(
                "debug", "noise", "--seed", "1234567", "--height", "48", "--width", "80", "--output", out.toString());
        assertEquals(0, run.exitCode(), run.err());
        try (TensorSource g = SafetensorsFile.open(Golden.path("cases", "noise.safetensors"));
                TensorSource n = SafetensorsFile.open(out)) {
            String name = "seed1234567_h48_w80_bf16";
            int bytes = (int) g.info(name).byteLength();
            assertEquals(ByteBuffer.wrap(bytes(g, name, bytes)), ByteBuffer.wrap(bytes(n, "noise_bf16", bytes)));
            assertTrue(Golden.relL2(n.floats("noise_f32"), g.floats("seed1234567_h48_w80_f32")) < 1e-6);
        }
    }

    private static byte[] bytes(TensorSource s, String name, int n) {
        byte[] b = new byte[n];
        s.bytes(name, 0, n).get(b);
        return b;
    }

    @Test
    void scheduleMatchesTheReference() throws Exception {
        JsonNode golden = new ObjectMapper()
                .readTree(Golden.path("cases", "schedules.json").toFile());
        for (String[] c : new String[][] {{"4", "1024", "True"}, {"4", "256", "False"}}) {
            CliRun run = c[2].equals("True")
                    ? CliRun.of(
                            "debug",
                            "schedule",
                            "--model",
                            Golden.path("flux-tiny-dev").toString(),
                            "--steps",
                            c[0],
                            "--seq-len",
                            c[1])
                    : CliRun.of(
                            "debug",
                            "schedule",
                            "--model",
                            Golden.path("flux-tiny-dev").toString(),
                            "--steps",
                            c[0],
                            "--seq-len",
                            c[1],
                            "--no-shift");
            assertEquals(0, run.exitCode(), run.err());
            JsonNode actual = new ObjectMapper().readTree(run.out());
            JsonNode expected = golden.get("steps=" + c[0] + ",seq=" + c[1] + ",shift=" + c[2]);
            assertEquals(expected.size(), actual.size());
            for (int i = 0; i < actual.size(); i++) {
                assertTrue(Math.abs(actual.get(i).asDouble() - expected.get(i).asDouble()) < 1e-6);
            }
        }
    }

    @Test
    void scheduleRejectsZeroSteps() {
        CliRun run = CliRun.of(
                "debug",
                "schedule",
                "--model",
                Golden.path("flux-tiny-dev").toString(),
                "--steps",
                "0",
                "--seq-len",
                "16");
        assertEquals(2, run.exitCode());
        assertTrue(run.err().contains("--steps is 0"), run.err());
    }
}
