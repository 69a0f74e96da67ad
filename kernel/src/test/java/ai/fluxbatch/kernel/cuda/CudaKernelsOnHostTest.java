package ai.fluxbatch.kernel.cuda;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.lang.reflect.Field;
import java.lang.reflect.Modifier;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;

/**
 * The CUDA kernels ({@code src/main/cuda/*.cu}) run on the CPU: {@code src/test/cuda-host/kernels_on_host.cpp}
 * includes them after {@code cuda_host.h}, an emulation of the CUDA built-ins (one OS thread per CUDA thread, blocks
 * one at a time, {@code __syncthreads} and warp shuffles as real barriers), and checks every kernel against
 * double-precision references written from {@link OpsKernels}' and {@link TernaryLaunch}'s documented semantics,
 * launched with the geometry they prescribe. This test compiles it with g++ (skipped, visibly, where there is none),
 * runs it, and requires a passing line for every kernel those two classes name, so a kernel added later without a
 * host check fails here.
 */
class CudaKernelsOnHostTest {
    private static final long COMPILE_TIMEOUT_S = 180;
    private static final long RUN_TIMEOUT_S = 120;

    @Test
    void everyKernelMatchesItsReferenceOnTheHost() throws Exception {
        Path gpp = HostTools.onPath("g++");
        Assumptions.assumeTrue(gpp != null, "g++ not found: the CUDA kernels' host emulation cannot be compiled");

        Path src = Path.of("src", "test", "cuda-host").toAbsolutePath();
        assertTrue(
                Files.isRegularFile(src.resolve("kernels_on_host.cpp")),
                "no kernels_on_host.cpp in " + src + " (the test runs in the kernel module's folder)");
        Path out = HostTools.buildDir().resolve("cuda-host");
        Files.createDirectories(out);
        Path bin = out.resolve("kernels_on_host");
        Files.deleteIfExists(bin);

        Run compile = run(
                src,
                out.resolve("compile.log"),
                COMPILE_TIMEOUT_S,
                gpp.toString(),
                "-std=c++20",
                "-O1",
                "-pthread",
                "-o",
                bin.toString(),
                "kernels_on_host.cpp");
        assertFalse(compile.timedOut, "g++ ran past " + COMPILE_TIMEOUT_S + " s:\n" + compile.output);
        assertEquals(0, compile.exitCode, "g++ failed on the CUDA kernels' host emulation:\n" + compile.output);

        Run run = run(src, out.resolve("kernels_on_host.log"), RUN_TIMEOUT_S, bin.toString());
        assertFalse(run.timedOut, "kernels_on_host ran past " + RUN_TIMEOUT_S + " s (a deadlock?):\n" + run.output);
        assertEquals(0, run.exitCode, "kernels_on_host failed (exit " + run.exitCode + "):\n" + run.output);

        List<String> kernels = kernelNames();
        List<String> unchecked = new ArrayList<>();
        for (String k : kernels) {
            if (!Pattern.compile("(?m)^ok\\s+" + Pattern.quote(k) + "\\s")
                    .matcher(run.output)
                    .find()) {
                unchecked.add(k);
            }
        }
        assertTrue(
                unchecked.isEmpty(),
                "kernels_on_host.cpp checks no " + unchecked
                        + ": add a host check for every kernel OpsKernels and TernaryLaunch name\n" + run.output);
        String[] lines = run.output.strip().split("\n");
        System.out.println("CudaKernelsOnHostTest: " + kernels.size() + " kernels; " + lines[lines.length - 1]);
    }

    /** Every kernel of {@link OpsKernels} (its public static final String fields but MODULE) and the ternary ones. */
    static List<String> kernelNames() throws IllegalAccessException {
        List<String> names = new ArrayList<>();
        for (Field f : OpsKernels.class.getDeclaredFields()) {
            int mod = f.getModifiers();
            if (Modifier.isPublic(mod)
                    && Modifier.isStatic(mod)
                    && Modifier.isFinal(mod)
                    && f.getType() == String.class
                    && !f.getName().equals("MODULE")) {
                names.add((String) f.get(null));
            }
        }
        assertFalse(names.isEmpty(), "OpsKernels names no kernel (reflection found no String constants)");
        names.add(TernaryLaunch.SMALL_M_KERNEL);
        names.add(TernaryLaunch.TILED_KERNEL);
        names.add(TernaryLaunch.INPUT_GRAD_KERNEL);
        return names;
    }

    private record Run(int exitCode, boolean timedOut, String output) {}

    /** Runs a command in dir, stdout and stderr together into log; kills it (and its children) after timeoutS. */
    private static Run run(Path dir, Path log, long timeoutS, String... command)
            throws IOException, InterruptedException {
        Process p = new ProcessBuilder(command)
                .directory(dir.toFile())
                .redirectErrorStream(true)
                .redirectOutput(log.toFile())
                .start();
        boolean done = p.waitFor(timeoutS, TimeUnit.SECONDS);
        if (!done) {
            p.descendants().forEach(ProcessHandle::destroyForcibly);
            p.destroyForcibly();
            p.waitFor(10, TimeUnit.SECONDS);
        }
        String output = new String(Files.readAllBytes(log), StandardCharsets.UTF_8);
        return new Run(done ? p.exitValue() : -1, !done, output);
    }
}
