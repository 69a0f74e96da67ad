package ai.fluxbatch.model.pipeline;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.fluxbatch.model.Golden;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The README's promise that the same seed gives the same image bit for bit, cold or warm: the golden case e2e-1 on
 * the CPU backend gives the same bits (1) in this JVM, after whatever tests ran before, (2) here again once C2 has
 * compiled the hot kernels, and (3) in a fresh JVM limited to C1, which runs the Vector API's Java fallbacks as the
 * interpreter does, with another thread count. Floating-point reductions whose order depends on the JIT tier (the
 * Vector API's reduceLanes), Math intrinsics, or scalar tails that round otherwise than the vector path all fail it.
 */
class CpuDeterminismTest {
    /** Enough runs for C2 to compile the kernels (checked with -XX:+PrintCompilation: level 4 within 2 runs). */
    private static final int WARM_RUNS = 6;

    private static final long CHILD_TIMEOUT_S = 300;

    @TempDir
    Path tmp;

    @Test
    void sameBitsAfterOtherTestsAfterWarmingAndInAFreshC1Jvm() throws Exception {
        Path childOut = tmp.resolve("child.bin");
        Path childLog = tmp.resolve("child.log");
        Process child = startChild(childOut, childLog); // runs while this JVM warms up
        int threads = Runtime.getRuntime().availableProcessors();
        float[] first;
        float[] warmed;
        try (GoldenCaseRun run = new GoldenCaseRun(threads)) {
            first = run.run();
            warmed = first;
            for (int i = 0; i < WARM_RUNS; i++) {
                warmed = run.run();
            }
        }
        assertSameBits("after " + WARM_RUNS + " more runs in this JVM", first, warmed);
        boolean done = child.waitFor(CHILD_TIMEOUT_S, TimeUnit.SECONDS);
        if (!done) {
            child.destroyForcibly();
        }
        String log = Files.exists(childLog) ? Files.readString(childLog, StandardCharsets.UTF_8) : "";
        assertTrue(done, "the C1 child JVM ran past " + CHILD_TIMEOUT_S + " s:\n" + log);
        assertEquals(0, child.exitValue(), "the C1 child JVM failed:\n" + log);
        assertSameBits(
                "in a fresh JVM under -XX:TieredStopAtLevel=1 with " + childThreads(threads) + " threads",
                first,
                GoldenCaseRun.read(childOut));
    }

    private static int childThreads(int threads) {
        return threads == 1 ? 3 : 1;
    }

    private static Process startChild(Path out, Path log) throws Exception {
        String java = ProcessHandle.current()
                .info()
                .command()
                .orElse(Path.of(System.getProperty("java.home"), "bin", "java").toString());
        List<String> command = new ArrayList<>(List.of(
                java,
                "--add-modules=jdk.incubator.vector",
                "-Xmx2g",
                "-XX:TieredStopAtLevel=1",
                "-Dfluxbatch.golden=" + Golden.dir().toAbsolutePath(),
                // the same dense products as this JVM (FLUXBATCH_BLAS, the environment, is inherited)
                "-Dfluxbatch.blas="
                        + System.getProperty("fluxbatch.blas", System.getenv().getOrDefault("FLUXBATCH_BLAS", "")),
                "-cp",
                System.getProperty("java.class.path"),
                GoldenCaseRun.class.getName(),
                out.toString(),
                Integer.toString(childThreads(Runtime.getRuntime().availableProcessors()))));
        return new ProcessBuilder(command)
                .redirectErrorStream(true)
                .redirectOutput(log.toFile())
                .start();
    }

    private static void assertSameBits(String when, float[] expected, float[] actual) {
        assertEquals(expected.length, actual.length, GoldenCaseRun.CASE + " " + when + ": output length");
        int differ = 0;
        int firstAt = -1;
        for (int i = 0; i < expected.length; i++) {
            if (Float.floatToRawIntBits(expected[i]) != Float.floatToRawIntBits(actual[i])) {
                differ++;
                firstAt = firstAt < 0 ? i : firstAt;
            }
        }
        System.out.printf("CpuDeterminismTest %s: %d of %d floats differ%n", when, differ, expected.length);
        assertEquals(
                0,
                differ,
                GoldenCaseRun.CASE + " " + when + ": " + differ + " of " + expected.length
                        + " floats differ from the first run in this JVM, the first at " + firstAt
                        + (firstAt < 0 ? "" : " (" + actual[firstAt] + " vs " + expected[firstAt] + ")"));
    }
}
