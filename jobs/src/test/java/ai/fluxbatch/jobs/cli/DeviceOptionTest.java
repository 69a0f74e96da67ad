package ai.fluxbatch.jobs.cli;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.fluxbatch.model.Golden;
import ai.fluxbatch.model.safetensors.SafetensorsFile;
import ai.fluxbatch.model.safetensors.TensorSource;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/** {@code --device}: auto and cpu run on the CPU and match the goldens; cuda cannot be had in this build. */
class DeviceOptionTest {
    @TempDir
    Path tmp;

    @ParameterizedTest
    @ValueSource(strings = {"auto", "cpu", "CPU"})
    void runsTheGoldenCaseOnTheCpu(String device) {
        Path in = Golden.path("cases", "flux-tiny-dev", "forward-1.safetensors");
        Path out = tmp.resolve("out.safetensors");
        CliRun run = transformer(in, out, "--device", device);
        assertEquals(0, run.exitCode(), run.err());
        assertTrue(run.err().contains("debug transformer: device cpu ("), run.err());
        try (TensorSource actual = SafetensorsFile.open(out); TensorSource golden = SafetensorsFile.open(in)) {
            assertArrayEquals(golden.info("out").shape(), actual.info("out").shape());
            double err = Golden.relL2(actual.floats("out"), golden.floats("out"));
            assertTrue(err < 1e-4, "relative L2 " + err);
        }
    }

    @ParameterizedTest
    @ValueSource(strings = {"", "auto"})
    void autoIsTheDefaultAndSaysWhy(String device) {
        Path in = Golden.path("cases", "flux-tiny-dev", "forward-1.safetensors");
        CliRun run = device.isEmpty() ? transformer(in, tmp.resolve("out.safetensors"))
                : transformer(in, tmp.resolve("out.safetensors"), "--device", device);
        assertEquals(0, run.exitCode(), run.err());
        assertTrue(run.err().contains("debug transformer: device cpu (auto: "), run.err());
        assertTrue(run.err().contains("no NVIDIA GPU visible") || run.err().contains("no CUDA backend yet"), run.err());
    }

    @ParameterizedTest
    @ValueSource(strings = {"cuda", "CUDA"})
    void cudaFailsNamingWhy(String device) {
        Path out = tmp.resolve("out.safetensors");
        CliRun run = transformer(Golden.path("cases", "flux-tiny-dev", "forward-1.safetensors"), out, "--device", device);
        assertEquals(1, run.exitCode(), run.err());
        assertTrue(run.err().contains("fluxbatch: error: --device cuda: "), run.err());
        assertTrue(run.err().contains("this build has no CUDA backend yet (issue 8)"), run.err());
        assertFalse(Files.exists(out));
    }

    @ParameterizedTest
    @ValueSource(strings = {"debug transformer", "generate", "calibrate", "evaluate"})
    void bogusIsAUsageError(String command) {
        String[] words = (command + " --device bogus").split(" ");
        CliRun run = CliRun.of(words);
        assertEquals(2, run.exitCode(), run.err());
        assertTrue(run.err().contains("unknown device 'bogus': expected one of auto, cpu, cuda"), run.err());
    }

    @ParameterizedTest
    @ValueSource(strings = {"debug transformer", "generate", "calibrate", "evaluate"})
    void helpDescribesTheOption(String command) {
        CliRun run = CliRun.of((command + " --help").split(" "));
        assertEquals(0, run.exitCode(), run.err());
        String help = run.out().replaceAll("\\s+", " ");
        assertTrue(help.contains("--device=auto|cpu|cuda"), help);
        assertTrue(help.contains("The CUDA backend is not built yet"), help);
    }

    private static CliRun transformer(Path in, Path out, String... more) {
        String[] base = {"debug", "transformer", "--model", Golden.path("flux-tiny-dev").toString(),
            "--input", in.toString(), "--output", out.toString()};
        String[] args = java.util.Arrays.copyOf(base, base.length + more.length);
        System.arraycopy(more, 0, args, base.length, more.length);
        return CliRun.of(args);
    }
}
