package ai.fluxbatch.kernel.cuda;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.File;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.stream.Stream;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The real device. Without a GPU (no /dev/nvidiactl) {@link CudaDriverDevice#open} must fail with a message that
 * says what is missing; with one, a tiny end-to-end run: copies, the ternary kernel (from the fatbin and through
 * NVRTC) and cuBLAS GEMMs against hand-computed results. bench/gpu/run-on-gpu.sh runs this class on a GPU machine.
 */
class CudaDriverDeviceTest {
    /** A GPU is here, or the run says there must be one (-Dfluxbatch.requireGpu=true: then nothing is skipped). */
    private static final boolean GPU =
            new File("/dev/nvidiactl").exists() || Boolean.getBoolean("fluxbatch.requireGpu");

    private static final String NO_GPU = "no NVIDIA GPU here (/dev/nvidiactl is absent): the CUDA device is not run";

    @TempDir
    Path cacheDir;

    // ---- without a GPU ---------------------------------------------------------------------------------------------

    @Test
    void openWithoutTheDriverSaysWhatIsMissing() {
        Assumptions.assumeFalse(
                GPU,
                "a GPU is present (/dev/nvidiactl) or required (-Dfluxbatch.requireGpu): the"
                        + " no-driver failure is not seen here");
        for (int attempt = 0; attempt < 2; attempt++) { // the second one meets a class that failed to initialise
            IllegalStateException e = assertThrows(
                    IllegalStateException.class, () -> CudaDriverDevice.open(0, GemmPrecision.FP32, cacheDir));
            String m = e.getMessage();
            assertTrue(m.contains("libcuda.so.1"), "attempt " + attempt + ": " + m);
            assertTrue(m.contains("NVIDIA driver"), m);
            assertTrue(m.contains("libcublas.so.13") && m.contains("libnvrtc.so.13"), "says what else is needed: " + m);
            assertTrue(m.startsWith("CUDA is not "), m);
        }
    }

    @Test
    void openRejectsANegativeOrdinalBeforeLoadingAnything() {
        IllegalArgumentException e = assertThrows(
                IllegalArgumentException.class, () -> CudaDriverDevice.open(-1, GemmPrecision.FP32, cacheDir));
        assertTrue(e.getMessage().contains("-1"), e.getMessage());
    }

    @Test
    void diagnosisNamesTheMissingLibrary() {
        UnsatisfiedLinkError cublas = new UnsatisfiedLinkError("no jnicublas in java.library.path: /usr/lib");
        cublas.initCause(new UnsatisfiedLinkError("/root/.javacpp/cache/cuda-13.1-9.19-1.5.13-linux-x86_64.jar/org/"
                + "bytedeco/cuda/linux-x86_64/libjnicublas.so: libcublasLt.so.13: cannot open shared object file: No"
                + " such file or directory"));
        String d = CudaLibraries.diagnose(cublas);
        assertTrue(d.startsWith("libcublasLt.so.13 is missing"), d);
        assertTrue(d.contains("LD_LIBRARY_PATH"), d);

        UnsatisfiedLinkError driver = new UnsatisfiedLinkError(
                "/tmp/libjnicudart.so: libcuda.so.1: cannot open" + " shared object file: No such file or directory");
        assertTrue(CudaLibraries.diagnose(driver).contains("NVIDIA driver"), CudaLibraries.diagnose(driver));

        NoClassDefFoundError noJars = new NoClassDefFoundError("org/bytedeco/cuda/global/cudart");
        assertTrue(CudaLibraries.diagnose(noJars).contains("class path"), CudaLibraries.diagnose(noJars));

        assertEquals(
                null,
                CudaLibraries.diagnose(
                        new NoClassDefFoundError("Could not initialize class org.bytedeco.cuda.global.nvrtc")),
                "a second attempt does not say");
        IllegalStateException later = CudaLibraries.unavailable(
                "org.example.Never",
                "a binding",
                new NoClassDefFoundError("Could not initialize class org.example.Never"));
        assertTrue(later.getMessage().contains("org.example.Never failed to load earlier"), later.getMessage());
        assertTrue(later.getMessage().contains("libcuda.so.1"), "still says what is needed: " + later.getMessage());
    }

    @Test
    void sourcesShipForNvrtc() {
        assertEquals(OpsKernels.MODULE, CudaModules.OPS);
        byte[] source = CudaModules.source(CudaModules.TERNARY_MATMUL)
                .orElseThrow(() -> new AssertionError(
                        "resource " + CudaModules.sourcePath(CudaModules.TERNARY_MATMUL) + " absent"));
        String text = new String(source, StandardCharsets.UTF_8);
        assertTrue(text.contains(TernaryLaunch.SMALL_M_KERNEL) && text.contains(TernaryLaunch.TILED_KERNEL));
        assertTrue(text.contains("#ifdef __CUDACC_RTC__"), "NVRTC has no <stdint.h>: the include must be guarded");
        assertTrue(CudaModules.source("no_such_module").isEmpty());
    }

    // ---- with a GPU ------------------------------------------------------------------------------------------------

    /** Ternary codes for {@code [out, in]}: a fixed pattern of -1, 0, +1. */
    private static int[][] codes(int out, int in) {
        int[][] c = new int[out][in];
        for (int o = 0; o < out; o++) {
            for (int k = 0; k < in; k++) {
                c[o][k] = (o * 7 + k * 3 + (k * k) % 5) % 3 - 1;
            }
        }
        return c;
    }

    /** The Hugging Face interchange packing of {@code codes}: byte [r][k], bits 2i..2i+1 = code + 1 of row i R + r. */
    private static byte[] hfPacked(int[][] codes, int in) {
        int out = codes.length;
        int rows = (out + 3) / 4;
        byte[] packed = new byte[rows * in];
        for (int o = 0; o < 4 * rows; o++) {
            int r = o % rows;
            int shift = 2 * (o / rows);
            for (int k = 0; k < in; k++) {
                int field = o < out ? codes[o][k] + 1 : 1;
                packed[r * in + k] |= (byte) (field << shift);
            }
        }
        return packed;
    }

    /** y = x W^T scale + bias for one row of x, by hand; integers, so exact in float. */
    private static float[] ternaryByHand(float[] x, int[][] codes, float[] scale, float[] bias) {
        float[] y = new float[codes.length];
        for (int o = 0; o < codes.length; o++) {
            float acc = 0;
            for (int k = 0; k < x.length; k++) {
                acc += x[k] * codes[o][k];
            }
            y[o] = acc * scale[o] + bias[o];
        }
        return y;
    }

    private static float[] runTernary(CudaDriverDevice device, int out, int in) {
        int[][] codes = codes(out, in);
        int[] w = GpuTernaryLayout.fromHfPacked(hfPacked(codes, in), out, in);
        for (int o = 0; o < out; o++) {
            for (int k = 0; k < in; k++) {
                assertEquals(codes[o][k], GpuTernaryLayout.code(w, in, o, k));
            }
        }
        float[] x = new float[in];
        for (int k = 0; k < in; k++) {
            x[k] = k % 7 - 3;
        }
        float[] scale = new float[out];
        float[] bias = new float[out];
        for (int o = 0; o < out; o++) {
            scale[o] = 0.5f * (o + 1);
            bias[o] = o - 1;
        }
        long dx = device.allocate(4L * in);
        long dw = device.allocate(4L * w.length);
        long ds = device.allocate(4L * out);
        long db = device.allocate(4L * out);
        long dy = device.allocate(4L * out);
        try {
            device.upload(dx, x, 0, in);
            device.upload(dw, w);
            device.upload(ds, scale, 0, out);
            device.upload(db, bias, 0, out);
            TernaryLaunch plan = TernaryLaunch.plan(1, out, in);
            assertEquals(TernaryLaunch.SMALL_M_KERNEL, plan.kernel());
            device.launch(
                    CudaModules.TERNARY_MATMUL,
                    plan.kernel(),
                    new LaunchGeometry(plan.gridX(), plan.gridY(), 1, plan.blockX(), 1, 1, plan.dynamicSharedBytes()),
                    new KernelArgs()
                            .ptr(dx)
                            .ptr(dw)
                            .ptr(ds)
                            .ptr(db)
                            .ptr(dy)
                            .i(1)
                            .i(out)
                            .i(in));
            float[] y = new float[out];
            device.download(dy, y);
            assertArrayEquals(ternaryByHand(x, codes, scale, bias), y, 0f);
            return y;
        } finally {
            for (long p : new long[] {dx, dw, ds, db, dy}) {
                device.free(p);
            }
        }
    }

    @Test
    void endToEndOnTheGpu() {
        Assumptions.assumeTrue(GPU, NO_GPU);
        try (CudaDriverDevice device = CudaDriverDevice.open(0, GemmPrecision.FP32, cacheDir)) {
            String d = device.describe();
            assertTrue(d.matches(".+ \\(sm_\\d+, \\d+\\.\\d GiB, CUDA device 0\\)"), d);
            System.out.println("CudaDriverDeviceTest: " + d);

            // copies: upload, device-to-device, pitched, download
            float[] src = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12};
            long a = device.allocate(4L * src.length);
            long b = device.allocate(4L * src.length);
            try {
                device.upload(a, src, 0, src.length);
                device.copy(b, a, 4L * src.length);
                float[] back = new float[src.length];
                device.download(b, back);
                assertArrayEquals(src, back, 0f);
                // 3 rows of 2 floats, from pitch 4 floats to pitch 2 floats: columns 1..2 of a 3 x 4 matrix
                device.copy2d(b, 8, a + 4, 16, 8, 3);
                float[] packed = new float[6];
                device.download(b, packed);
                assertArrayEquals(new float[] {2, 3, 6, 7, 10, 11}, packed, 0f);
                device.upload(a, src, 6, 3); // a sub-range of the array
                float[] head = new float[3];
                device.download(a, head);
                assertArrayEquals(new float[] {7, 8, 9}, head, 0f);
            } finally {
                device.free(a);
                device.free(b);
            }

            // the ternary matmul from the fatbin (or NVRTC where the fatbin has no code for this GPU)
            runTernary(device, 3, 32);
            runTernary(device, 20, 77); // padding of the last chunk, more than one block of outputs

            // the device has no room for a petabyte, and says how much it has
            DeviceOutOfMemoryException oom =
                    assertThrows(DeviceOutOfMemoryException.class, () -> device.allocate(1L << 50));
            assertTrue(oom.getMessage().contains("free of"), oom.getMessage());
            assertEquals(1L << 50, oom.requestedBytes());

            // a launch whose arguments do not match the kernel (where the driver tells the parameters)
            int[] sizes = device.parameterSizes(CudaModules.TERNARY_MATMUL, TernaryLaunch.SMALL_M_KERNEL);
            System.out.println("CudaDriverDeviceTest: " + TernaryLaunch.SMALL_M_KERNEL + " parameter sizes "
                    + java.util.Arrays.toString(sizes));
            if (sizes != null) {
                assertArrayEquals(new int[] {8, 8, 8, 8, 8, 4, 4, 4}, sizes);
                assertThrows(
                        IllegalArgumentException.class,
                        () -> device.launch(
                                CudaModules.TERNARY_MATMUL,
                                TernaryLaunch.SMALL_M_KERNEL,
                                LaunchGeometry.of(1, 256),
                                new KernelArgs().ptr(0).i(1)));
            }
            device.synchronize();
        }
    }

    @Test
    void nvrtcFallbackCompilesCachesAndRuns() throws IOException {
        Assumptions.assumeTrue(GPU, NO_GPU);
        float[] first;
        try (CudaDriverDevice device = CudaDriverDevice.open(0, GemmPrecision.FP32, cacheDir)) {
            device.useNvrtcOnly();
            first = runTernary(device, 5, 64);
        }
        List<Path> entries;
        try (Stream<Path> files = Files.list(cacheDir)) {
            entries = files.toList();
        }
        assertEquals(1, entries.size(), "one CUBIN cached: " + entries);
        assertTrue(
                entries.get(0).getFileName().toString().startsWith(CudaModules.TERNARY_MATMUL + "-sm_"),
                entries.toString());
        long modified = Files.getLastModifiedTime(entries.get(0)).toMillis();
        try (CudaDriverDevice device = CudaDriverDevice.open(0, GemmPrecision.FP32, cacheDir)) {
            device.useNvrtcOnly();
            assertArrayEquals(first, runTernary(device, 5, 64), 0f);
        }
        assertEquals(
                modified, Files.getLastModifiedTime(entries.get(0)).toMillis(), "the second device read the cache");
    }

    @Test
    void gemmMatchesAHandProduct() {
        Assumptions.assumeTrue(GPU, NO_GPU);
        // column-major: A 2 x 4, B 4 x 3, C = A B 2 x 3
        float[] aColumns = {1, 5, 2, 6, 3, 7, 4, 8}; // A = [[1 2 3 4], [5 6 7 8]]
        float[] bColumns = {1, 0, 1, 2, 0, 1, 1, 0, 2, 1, 0, 1}; // B = [[1 0 2], [0 1 1], [1 1 0], [2 0 1]]
        float[] expected = {12, 28, 5, 13, 8, 24}; // C = [[12 5 8], [28 13 24]]
        for (GemmPrecision precision : GemmPrecision.values()) { // small integers: exact in bfloat16 too
            try (CudaDriverDevice device = CudaDriverDevice.open(0, precision, cacheDir)) {
                long a = device.allocate(4L * 2 * aColumns.length);
                long b = device.allocate(4L * 2 * bColumns.length);
                long c = device.allocate(4L * 2 * expected.length);
                try {
                    device.upload(a, aColumns, 0, aColumns.length);
                    device.upload(b, bColumns, 0, bColumns.length);
                    float[] ones = new float[expected.length];
                    java.util.Arrays.fill(ones, 1f);
                    device.upload(c, ones, 0, ones.length);
                    device.gemm(false, false, 2, 3, 4, 1f, a, 2, 0, b, 4, 0, 0f, c, 2, 0, 1);
                    float[] got = new float[expected.length];
                    device.download(c, got);
                    assertArrayEquals(expected, got, 0f, precision + ": beta 0 overwrites C");

                    // C^T = B^T A^T (3 x 2), twice in a batch of 2 with the second A doubled, alpha 2, beta 1
                    float[] doubled = aColumns.clone();
                    for (int i = 0; i < doubled.length; i++) {
                        doubled[i] *= 2;
                    }
                    device.upload(a + 4L * aColumns.length, doubled, 0, doubled.length);
                    device.upload(b + 4L * bColumns.length, bColumns, 0, bColumns.length);
                    float[] init = new float[2 * expected.length];
                    java.util.Arrays.fill(init, 1f);
                    device.upload(c, init, 0, init.length);
                    device.gemm(
                            true,
                            true,
                            3,
                            2,
                            4,
                            2f,
                            b,
                            4,
                            bColumns.length,
                            a,
                            2,
                            aColumns.length,
                            1f,
                            c,
                            3,
                            expected.length,
                            2);
                    float[] batch = new float[init.length];
                    device.download(c, batch);
                    for (int i = 0; i < 2; i++) {
                        for (int r = 0; r < 3; r++) {
                            for (int col = 0; col < 2; col++) {
                                float want = 2f * (i + 1) * expected[r * 2 + col] + 1f; // C^T[r][col] = C[col][r]
                                assertEquals(
                                        want,
                                        batch[i * expected.length + col * 3 + r],
                                        0f,
                                        precision + " batch " + i + " [" + r + "][" + col + "]");
                            }
                        }
                    }
                } finally {
                    device.free(a);
                    device.free(b);
                    device.free(c);
                }
            }
        }
    }

    @Test
    void closeIsIdempotentAndAClosedDeviceRefusesWork() {
        Assumptions.assumeTrue(GPU, NO_GPU);
        CudaDriverDevice device = CudaDriverDevice.open(0, GemmPrecision.FP32, cacheDir);
        long p = device.allocate(256);
        device.close();
        device.close();
        assertThrows(IllegalStateException.class, () -> device.allocate(256));
        device.free(p); // after close: a no-op, the allocation went with the context
        assertFalse(device.toString().isEmpty());
    }
}
