package ai.fluxbatch.kernel.cuda;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.File;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.FileTime;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * {@link CudaDriverDevice} and {@link CudaBackend} through JavaCPP's real JNI libraries, on FAKE CUDA libraries that
 * run on the CPU ({@code src/test/fake-cuda}): a libcuda.so.1 driver whose kernels are the host build of
 * {@code src/main/cuda/*.cu} (with the emulation of {@code src/test/cuda-host/cuda_host.h}), a libcublas.so.13 whose
 * GEMM is a reference loop, and a libnvrtc.so.13 that makes CUBINs the fake driver loads. This checks what no other
 * test without a GPU can: the JNI marshalling of every driver, cuBLAS and NVRTC call (output handles, size_t
 * pointers, the CUDA_MEMCPY2D descriptor, kernelParams slots, versioned symbols), error codes and their messages,
 * stream ordering of the staging buffers, and the NVRTC fallback with its disk cache.
 *
 * <p>The fakes are compiled with g++ into {@code <build dir>/fake-cuda} and put first on LD_LIBRARY_PATH of child
 * JVMs running {@link CudaDriverDeviceOnFakeDriverMain}; the real libcudart.so.13 (which JavaCPP's libjnicudart.so
 * links) comes from {@code /usr/local/cuda/lib64}, and the fake driver compiles against the real
 * {@code /usr/local/cuda/include/cuda.h} (so its symbols and structures are exactly the ones the JNI code calls).
 * Skipped, visibly, without g++ or those two files. The fake driver's log (one per run, in
 * {@code <build dir>/fake-cuda-runs}) must show no FAULT (a data race on a staging buffer, a copy or GEMM past an
 * allocation, a kernel given a pointer outside every allocation...) except the one the oom run provokes.
 */
class CudaDriverDeviceOnFakeDriverTest {
    private static final long COMPILE_TIMEOUT_S = 240;
    private static final long RUN_TIMEOUT_S = 300;
    private static final Path CUDA = Path.of("/usr/local/cuda");
    private static final Path CUDART = CUDA.resolve("lib64").resolve("libcudart.so.13");
    private static final Path CUDA_H = CUDA.resolve("include").resolve("cuda.h");
    private static final String MAIN = CudaDriverDeviceOnFakeDriverMain.class.getName();

    private static Path gpp;
    private static Path fakeDir;
    private static Path runs;

    @BeforeAll
    static void buildTheFakes() throws Exception {
        gpp = HostTools.onPath("g++");
        Assumptions.assumeTrue(gpp != null, "g++ not found: the fake CUDA libraries cannot be compiled");
        Assumptions.assumeTrue(
                Files.isRegularFile(CUDART),
                CUDART + " not found: JavaCPP's libjnicudart.so links"
                        + " the real CUDA runtime, which the fake driver does not replace");
        Assumptions.assumeTrue(
                Files.isRegularFile(CUDA_H),
                CUDA_H + " not found: the fake driver compiles against" + " the real driver API header");
        Path src = Path.of("src", "test", "fake-cuda").toAbsolutePath();
        assertTrue(
                Files.isRegularFile(src.resolve("fake_libcuda.cpp")),
                "no fake_libcuda.cpp in " + src + " (the test runs in the kernel module's folder)");
        Path hostDir = Path.of("src", "test", "cuda-host").toAbsolutePath();
        Path cudaDir = Path.of("src", "main", "cuda").toAbsolutePath();
        fakeDir = HostTools.buildDir().resolve("fake-cuda");
        runs = HostTools.buildDir().resolve("fake-cuda-runs");
        Files.createDirectories(fakeDir);
        deleteTree(runs);
        Files.createDirectories(runs);

        List<Path> inputs = new ArrayList<>();
        for (Path dir : new Path[] {src, hostDir, cudaDir}) {
            try (Stream<Path> s = Files.list(dir)) {
                s.filter(Files::isRegularFile).forEach(inputs::add);
            }
        }
        FileTime newestInput = FileTime.fromMillis(0);
        for (Path p : inputs) {
            FileTime t = Files.getLastModifiedTime(p);
            if (t.compareTo(newestInput) > 0) {
                newestInput = t;
            }
        }
        String[] common = {
            gpp.toString(), "-std=c++20", "-O1", "-pthread", "-shared", "-fPIC", "-Wall", "-Wno-unknown-pragmas"
        };
        Map<String, List<String>> first = new LinkedHashMap<>();
        first.put(
                "libcuda.so.1",
                args(
                        common,
                        "-I" + CUDA.resolve("include"),
                        "-I" + hostDir,
                        "-I" + cudaDir,
                        "-o",
                        "libcuda.so.1",
                        "-Wl,-soname,libcuda.so.1",
                        src.resolve("fake_libcuda.cpp").toString(),
                        src.resolve("fake_kernels.cpp").toString()));
        first.put(
                "libcublasLt.so.13",
                args(
                        common,
                        "-o",
                        "libcublasLt.so.13",
                        "-Wl,-soname,libcublasLt.so.13",
                        "-Wl,--version-script=" + src.resolve("libcublasLt.map"),
                        src.resolve("fake_cublasLt.cpp").toString()));
        first.put(
                "libnvrtc.so.13",
                args(
                        common,
                        "-o",
                        "libnvrtc.so.13",
                        "-Wl,-soname,libnvrtc.so.13",
                        "-Wl,--version-script=" + src.resolve("libnvrtc.map"),
                        src.resolve("fake_nvrtc.cpp").toString()));
        Map<String, List<String>> second = new LinkedHashMap<>();
        second.put(
                "libcublas.so.13",
                args(
                        common,
                        "-o",
                        "libcublas.so.13",
                        "-Wl,-soname,libcublas.so.13",
                        "-Wl,--version-script=" + src.resolve("libcublas.map"),
                        src.resolve("fake_cublas.cpp").toString(),
                        "-L" + fakeDir,
                        "-l:libcuda.so.1",
                        "-Wl,-rpath,$ORIGIN"));
        compile(first, newestInput);
        compile(second, newestInput);
    }

    private static List<String> args(String[] common, String... more) {
        List<String> a = new ArrayList<>(List.of(common));
        a.addAll(List.of(more));
        return a;
    }

    /** Compiles the libraries not newer than every input, in parallel. */
    private static void compile(Map<String, List<String>> libraries, FileTime newestInput) throws Exception {
        Map<String, Process> running = new LinkedHashMap<>();
        for (Map.Entry<String, List<String>> e : libraries.entrySet()) {
            Path lib = fakeDir.resolve(e.getKey());
            if (Files.isRegularFile(lib) && Files.getLastModifiedTime(lib).compareTo(newestInput) > 0) {
                continue;
            }
            Files.deleteIfExists(lib);
            running.put(
                    e.getKey(),
                    new ProcessBuilder(e.getValue())
                            .directory(fakeDir.toFile())
                            .redirectErrorStream(true)
                            .redirectOutput(fakeDir.resolve(e.getKey() + ".log").toFile())
                            .start());
        }
        for (Map.Entry<String, Process> e : running.entrySet()) {
            Process p = e.getValue();
            boolean done = p.waitFor(COMPILE_TIMEOUT_S, TimeUnit.SECONDS);
            if (!done) {
                p.destroyForcibly();
            }
            String log = Files.readString(fakeDir.resolve(e.getKey() + ".log"));
            assertTrue(done, "g++ ran past " + COMPILE_TIMEOUT_S + " s on " + e.getKey() + ":\n" + log);
            assertEquals(0, p.exitValue(), "g++ failed on the fake " + e.getKey() + ":\n" + log);
        }
    }

    @Test
    void everyOperationMatchesTheCpuBackend() throws Exception {
        Run r = child("ops", Map.of());
        assertEquals(0, r.exitCode, "the child failed (exit " + r.exitCode + "):\n" + r);
        assertTrue(r.faults().isEmpty(), "the fake driver saw FAULTs:\n" + r);
        System.out.println("CudaDriverDeviceOnFakeDriverTest ops: " + r.lastLine());
    }

    @Test
    void flashAttentionMatchesTheCpuBackendAtTheModelsShapes() throws Exception {
        Run r = child("attention", Map.of());
        assertEquals(0, r.exitCode, "the child failed (exit " + r.exitCode + "):\n" + r);
        assertTrue(r.faults().isEmpty(), "the fake driver saw FAULTs:\n" + r);
        System.out.println("CudaDriverDeviceOnFakeDriverTest attention: " + r.lastLine());
    }

    @Test
    void outOfMemoryAndAFaultSurfaceAsExceptions() throws Exception {
        Run r = child("oom", Map.of("FAKE_CUDA_CAPACITY", "8M", "FAKE_CUBLAS_CREATE_FAIL_AT", "2"));
        assertEquals(0, r.exitCode, "the child failed (exit " + r.exitCode + "):\n" + r);
        List<String> faults = r.faults();
        assertTrue(
                faults.size() == 1 && faults.get(0).contains("is not inside a live device allocation"),
                "expected exactly the provoked FAULT:\n" + r);
        System.out.println("CudaDriverDeviceOnFakeDriverTest oom: " + r.lastLine());
    }

    @Test
    void nvrtcFallbackCompilesOnceThenHitsTheCache() throws Exception {
        Map<String, String> noFatbin = Map.of("FAKE_CUDA_NO_FATBIN", "1");
        Run cold = child("nvrtc", noFatbin, "nvrtc-cold", "nvrtc-cache");
        assertEquals(0, cold.exitCode, "the child failed (exit " + cold.exitCode + "):\n" + cold);
        assertTrue(cold.faults().isEmpty(), "the fake driver saw FAULTs:\n" + cold);
        assertEquals(2, cold.logCount("nvrtc-compile"), "NVRTC compiles of the first run (one per module):\n" + cold);
        Run warm = child("nvrtc", noFatbin, "nvrtc-warm", "nvrtc-cache");
        assertEquals(0, warm.exitCode, "the child failed (exit " + warm.exitCode + "):\n" + warm);
        assertTrue(warm.faults().isEmpty(), "the fake driver saw FAULTs:\n" + warm);
        assertEquals(0, warm.logCount("nvrtc-compile"), "the second run compiled instead of using the cache:\n" + warm);
        assertEquals(2, warm.logCount("module loaded kind=cubin"), "CUBINs loaded from the cache:\n" + warm);
        Run stale = child("nvrtc", noFatbin, "nvrtc-stale", "nvrtc-cache-stale", "stale");
        assertEquals(0, stale.exitCode, "the child failed (exit " + stale.exitCode + "):\n" + stale);
        assertTrue(stale.faults().isEmpty(), "the fake driver saw FAULTs:\n" + stale);
        assertEquals(2, stale.logCount("nvrtc-compile"), "stale CUBINs compiled anew:\n" + stale);
        System.out.println("CudaDriverDeviceOnFakeDriverTest nvrtc: " + cold.lastLine() + "; " + warm.lastLine() + "; "
                + stale.lastLine());
    }

    @Test
    void withoutADeviceOrWithoutCublasOpenSaysWhy() throws Exception {
        Path onlyDriver = runs.resolve("only-libcuda");
        Files.createDirectories(onlyDriver);
        Files.createSymbolicLink(onlyDriver.resolve("libcuda.so.1"), fakeDir.resolve("libcuda.so.1"));
        Run r = child(
                "nolibs",
                Map.of(
                        "FAKE_CUDA_INIT_RESULT",
                        "100",
                        "LD_LIBRARY_PATH",
                        onlyDriver + File.pathSeparator + CUDART.getParent()));
        assertEquals(0, r.exitCode, "the child failed (exit " + r.exitCode + "):\n" + r);
        assertTrue(r.faults().isEmpty(), "the fake driver saw FAULTs:\n" + r);
        System.out.println("CudaDriverDeviceOnFakeDriverTest nolibs: " + r.lastLine());
    }

    // ---- the child JVM -------------------------------------------------------------------------------------------

    private record Run(String name, int exitCode, String output, List<String> log) {
        List<String> faults() {
            return log.stream().filter(l -> l.startsWith("FAULT")).toList();
        }

        long logCount(String prefix) {
            return log.stream().filter(l -> l.startsWith(prefix)).count();
        }

        String lastLine() {
            String[] lines = output.strip().split("\n");
            return lines[lines.length - 1];
        }

        @Override
        public String toString() {
            List<String> interesting = log.stream()
                    .filter(l -> l.startsWith("FAULT")
                            || l.startsWith("error")
                            || l.startsWith("context")
                            || l.startsWith("module")
                            || l.startsWith("nvrtc"))
                    .limit(60)
                    .toList();
            return "---- " + name + " output ----\n" + output + "\n---- fake driver log (FAULT, error, context, module,"
                    + " nvrtc lines; " + log.size() + " lines in all) ----\n" + String.join("\n", interesting);
        }
    }

    private Run child(String mode, Map<String, String> env) throws Exception {
        return child(mode, env, mode, "nvrtc-cache-" + mode);
    }

    private Run child(String mode, Map<String, String> env, String name, String cacheName, String... more)
            throws Exception {
        String java = ProcessHandle.current()
                .info()
                .command()
                .orElse(Path.of(System.getProperty("java.home"), "bin", "java").toString());
        String classPath = System.getProperty("java.class.path");
        Path out = runs.resolve(name + ".out");
        Path log = runs.resolve(name + ".log");
        Files.deleteIfExists(log);
        List<String> command = new ArrayList<>(List.of(
                java,
                "--add-modules=jdk.incubator.vector",
                "-Xmx2g",
                "-Dorg.bytedeco.javacpp.cachedir=" + HostTools.buildDir().resolve("javacpp-cache"),
                "-D" + NvrtcCache.DIR_PROPERTY + "=" + runs.resolve(cacheName),
                "-cp",
                classPath,
                MAIN,
                mode));
        command.addAll(List.of(more));
        ProcessBuilder pb =
                new ProcessBuilder(command).redirectErrorStream(true).redirectOutput(out.toFile());
        Map<String, String> e = pb.environment();
        e.put("LD_LIBRARY_PATH", fakeDir + File.pathSeparator + CUDART.getParent());
        e.put("FAKE_CUDA_LOG", log.toString());
        e.put("FAKE_CUDA_STREAM_DELAY_US", "20"); // the streams lag the host a little more, as a GPU does
        e.put("FAKE_NVRTC_CXX", gpp.toString());
        e.put(
                "FAKE_NVRTC_CUDA_HOST_H",
                Path.of("src", "test", "cuda-host", "cuda_host.h")
                        .toAbsolutePath()
                        .toString());
        e.remove("CUDA_VISIBLE_DEVICES");
        e.putAll(env);
        Process p = pb.start();
        boolean done = p.waitFor(RUN_TIMEOUT_S, TimeUnit.SECONDS);
        if (!done) {
            p.descendants().forEach(ProcessHandle::destroyForcibly);
            p.destroyForcibly();
            p.waitFor(10, TimeUnit.SECONDS);
        }
        String output = Files.readString(out, StandardCharsets.UTF_8);
        List<String> lines = Files.exists(log) ? Files.readAllLines(log, StandardCharsets.UTF_8) : List.of();
        Run r = new Run(name, done ? p.exitValue() : -1, output, lines);
        assertFalse(!done, "the child JVM (" + mode + ") ran past " + RUN_TIMEOUT_S + " s (a deadlock?):\n" + r);
        return r;
    }

    // ---- helpers -------------------------------------------------------------------------------------------------

    private static void deleteTree(Path dir) throws IOException {
        if (!Files.exists(dir)) {
            return;
        }
        try (Stream<Path> s = Files.walk(dir)) {
            for (Path p : s.sorted(Comparator.reverseOrder()).toList()) {
                Files.delete(p);
            }
        }
    }
}
