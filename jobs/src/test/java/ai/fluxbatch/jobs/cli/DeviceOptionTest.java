package ai.fluxbatch.jobs.cli;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import ai.fluxbatch.kernel.CudaAvailability;
import ai.fluxbatch.kernel.DeviceKind;
import ai.fluxbatch.kernel.GpuVisibility;
import ai.fluxbatch.kernel.cuda.GemmPrecision;
import ai.fluxbatch.model.Golden;
import ai.fluxbatch.model.safetensors.SafetensorsFile;
import ai.fluxbatch.model.safetensors.TensorSource;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Optional;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * {@code --device} and {@code --gemm-precision} on a machine without a GPU: auto and cpu run on the CPU and match the
 * goldens, cuda fails saying why; Spark jobs on a cluster leave the choice to each task.
 */
class DeviceOptionTest {
    @TempDir
    Path tmp;

    @BeforeEach
    void noGpuHere() {
        assumeTrue(GpuVisibility.system().detect().isEmpty(), "these checks expect a machine without a GPU");
    }

    @ParameterizedTest
    @ValueSource(strings = {"auto", "cpu", "CPU", "cpu --gemm-precision bf16", "auto --gemm-precision BF16"})
    void runsTheGoldenCaseOnTheCpu(String options) {
        Path in = Golden.path("cases", "flux-tiny-dev", "forward-1.safetensors");
        Path out = tmp.resolve("out.safetensors");
        CliRun run = transformer(in, out, ("--device " + options).split(" "));
        assertEquals(0, run.exitCode(), run.err());
        assertTrue(run.err().contains("debug transformer: device cpu ("), run.err());
        try (TensorSource actual = SafetensorsFile.open(out);
                TensorSource golden = SafetensorsFile.open(in)) {
            assertArrayEquals(golden.info("out").shape(), actual.info("out").shape());
            double err = Golden.relL2(actual.floats("out"), golden.floats("out"));
            assertTrue(err < 1e-4, "relative L2 " + err);
        }
    }

    @ParameterizedTest
    @ValueSource(strings = {"", "auto"})
    void autoIsTheDefaultAndSaysWhy(String device) {
        Path in = Golden.path("cases", "flux-tiny-dev", "forward-1.safetensors");
        CliRun run = device.isEmpty()
                ? transformer(in, tmp.resolve("out.safetensors"))
                : transformer(in, tmp.resolve("out.safetensors"), "--device", device);
        assertEquals(0, run.exitCode(), run.err());
        assertTrue(run.err().contains("debug transformer: device cpu (auto: "), run.err());
        assertTrue(
                run.err()
                        .contains("debug transformer: device cpu (auto: no NVIDIA GPU visible, using the CPU"
                                + " backend)"),
                run.err());
    }

    @ParameterizedTest
    @ValueSource(strings = {"cuda", "CUDA"})
    void cudaFailsNamingWhy(String device) {
        Path out = tmp.resolve("out.safetensors");
        CliRun run =
                transformer(Golden.path("cases", "flux-tiny-dev", "forward-1.safetensors"), out, "--device", device);
        assertEquals(1, run.exitCode(), run.err());
        assertTrue(run.err().contains("fluxbatch: error: --device cuda: no NVIDIA GPU is visible"), run.err());
        assertTrue(run.err().contains("use --device cpu or auto"), run.err());
        assertFalse(Files.exists(out));
    }

    @ParameterizedTest
    @ValueSource(strings = {"debug transformer", "generate", "calibrate", "evaluate"})
    void bogusPrecisionIsAUsageError(String command) {
        CliRun run = CliRun.of((command + " --gemm-precision fp8").split(" "));
        assertEquals(2, run.exitCode(), run.err());
        assertTrue(run.err().contains("unknown GEMM precision 'fp8': expected fp32 or bf16"), run.err());
    }

    @Test
    void defaults() {
        DeviceOption option = parsed();
        assertEquals(DeviceKind.AUTO, option.requested());
        assertEquals(GemmPrecision.FP32, option.gemmPrecision());
        option = parsed("--device", "cuda", "--gemm-precision", "bf16");
        assertEquals(DeviceKind.CUDA, option.requested());
        assertEquals(GemmPrecision.BF16, option.gemmPrecision());
    }

    @ParameterizedTest
    @ValueSource(strings = {"local", "local[*]", "local[2]"})
    void aLocalSparkJobDecidesOnTheDriver(String master) {
        StringWriter err = new StringWriter();
        parsed().checkForSpark("generate", master, new PrintWriter(err, true));
        assertEquals(
                "generate: device cpu (auto: no NVIDIA GPU visible, using the CPU backend)",
                err.toString().strip());
        assertThrows(
                IllegalArgumentException.class,
                () -> parsed("--device", "cuda")
                        .checkForSpark("generate", master, new PrintWriter(new StringWriter(), true)));
    }

    @ParameterizedTest
    @ValueSource(strings = {"spark://127.0.0.1:7077", "yarn", "k8s://https://example:443", "local-cluster[2,1,1024]"})
    void aClusterJobLeavesTheChoiceToEachTask(String master) {
        StringWriter err = new StringWriter();
        parsed().checkForSpark("calibrate", master, new PrintWriter(err, true));
        assertEquals(
                "calibrate: device auto, resolved by each task on its executor (the GPU Spark assigned it,"
                        + " else the CPU)",
                err.toString().strip());

        err = new StringWriter();
        parsed("--device", "cpu").checkForSpark("calibrate", master, new PrintWriter(err, true));
        assertEquals(
                "calibrate: device cpu (requested with --device cpu)",
                err.toString().strip());

        // the driver has no GPU, which does not matter on a cluster; what this build lacks does
        Optional<String> missing = CudaAvailability.missing();
        StringWriter cudaErr = new StringWriter();
        DeviceOption cuda = parsed("--device", "cuda");
        if (missing.isPresent()) {
            IllegalArgumentException e = assertThrows(
                    IllegalArgumentException.class,
                    () -> cuda.checkForSpark("calibrate", master, new PrintWriter(cudaErr, true)));
            assertEquals("--device cuda: " + missing.get() + "; use --device cpu or auto", e.getMessage());
        } else {
            cuda.checkForSpark("calibrate", master, new PrintWriter(cudaErr, true));
            assertTrue(
                    cudaErr.toString().contains("calibrate: device cuda, resolved by each task on its executor"),
                    cudaErr.toString());
        }
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
        assertTrue(help.contains("each task uses the GPU Spark assigned it"), help);
        assertTrue(help.contains("--gemm-precision=fp32|bf16"), help);
        assertTrue(help.contains("ignored on the CPU (default: fp32)"), help);
    }

    private static DeviceOption parsed(String... args) {
        DeviceOption option = new DeviceOption();
        new picocli.CommandLine(option).parseArgs(args);
        return option;
    }

    private static CliRun transformer(Path in, Path out, String... more) {
        String[] base = {
            "debug",
            "transformer",
            "--model",
            Golden.path("flux-tiny-dev").toString(),
            "--input",
            in.toString(),
            "--output",
            out.toString()
        };
        String[] args = java.util.Arrays.copyOf(base, base.length + more.length);
        System.arraycopy(more, 0, args, base.length, more.length);
        return CliRun.of(args);
    }
}
