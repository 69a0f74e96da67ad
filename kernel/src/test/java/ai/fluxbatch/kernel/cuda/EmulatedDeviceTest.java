package ai.fluxbatch.kernel.cuda;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/** The emulated GPU does what {@link Device}, {@link OpsKernels} and {@link TernaryLaunch} say. */
class EmulatedDeviceTest {
    private final EmulatedDevice dev = new EmulatedDevice();

    @AfterEach
    void close() {
        dev.close();
    }

    private long put(float... v) {
        long p = dev.allocate(4L * Math.max(1, v.length));
        dev.upload(p, v, 0, v.length);
        return p;
    }

    private long putInts(int... v) {
        long p = dev.allocate(4L * v.length);
        dev.upload(p, v);
        return p;
    }

    private long empty(int floats) {
        return dev.allocate(4L * floats);
    }

    private void ops(String kernel, LaunchGeometry g, KernelArgs args) {
        dev.launch(OpsKernels.MODULE, kernel, g, args);
    }

    private static void assertClose(float[] expected, float[] actual, double tol) {
        assertEquals(expected.length, actual.length, "length");
        for (int i = 0; i < expected.length; i++) {
            double err = Math.abs(expected[i] - actual[i]);
            assertTrue(
                    err <= tol * (1 + Math.abs(expected[i])),
                    "element " + i + ": expected " + expected[i] + ", got " + actual[i]);
        }
    }

    private static float[] f(double... v) {
        float[] a = new float[v.length];
        for (int i = 0; i < v.length; i++) {
            a[i] = (float) v[i];
        }
        return a;
    }

    // ---- memory ----------------------------------------------------------------------------------------------

    @Test
    void allocationsAreDistinctAlignedUninitializedAndCounted() {
        long a = dev.allocate(10), b = dev.allocate(1000);
        assertNotEquals(a, b);
        assertEquals(0, a % 256);
        assertEquals(0, b % 256);
        assertNotEquals(a >>> 32, b >>> 32);
        float[] fresh = dev.read(b, 250);
        for (float v : fresh) {
            assertEquals(EmulatedDevice.UNINITIALIZED, Float.floatToRawIntBits(v));
        }
        assertEquals(2, dev.allocations());
        assertEquals(1010, dev.liveBytes());
        assertEquals(1010, dev.peakLiveBytes());
        dev.free(a);
        assertEquals(1, dev.frees());
        assertEquals(1000, dev.liveBytes());
        assertEquals(1010, dev.peakLiveBytes());
        assertEquals(1, dev.liveAllocations());
        assertFalse(dev.isLive(a));
        assertTrue(dev.isLive(b + 996));
        assertFalse(dev.isLive(b + 1000));
        assertEquals("emulated CUDA device (heap)", dev.describe());
    }

    @Test
    void uploadAndDownloadHonourOffsets() {
        long p = empty(6);
        dev.upload(p + 8, new float[] {1, 2, 3, 4, 5}, 1, 3);
        float[] all = dev.read(p, 6);
        assertTrue(Float.isNaN(all[0]) && Float.isNaN(all[1]) && Float.isNaN(all[5]));
        assertArrayEquals(new float[] {2, 3, 4}, new float[] {all[2], all[3], all[4]});
        float[] two = new float[2];
        dev.download(p + 12, two);
        assertArrayEquals(new float[] {3, 4}, two);

        long q = putInts(7, -8, 0x7fffffff, Integer.MIN_VALUE);
        int[] ints = new int[4];
        dev.downloadInts(q, ints);
        assertArrayEquals(new int[] {7, -8, 0x7fffffff, Integer.MIN_VALUE}, ints);
        assertThrows(IndexOutOfBoundsException.class, () -> dev.upload(p, new float[3], 2, 2));
    }

    @Test
    void copyAndPitchedCopy() {
        long src = put(1, 2, 3, 4, 5, 6), dst = empty(6);
        dev.copy(dst + 4, src + 8, 12);
        float[] d = dev.read(dst, 6);
        assertArrayEquals(new float[] {3, 4, 5}, new float[] {d[1], d[2], d[3]});
        assertTrue(Float.isNaN(d[0]) && Float.isNaN(d[4]));
        assertThrows(IllegalArgumentException.class, () -> dev.copy(dst, src, 6));
        assertThrows(IllegalStateException.class, () -> dev.copy(dst + 8, src, 20));

        // three rows of two floats, source pitch 5 floats, destination pitch 3 floats
        long s2 = put(f(1, 2, 9, 9, 9, 3, 4, 9, 9, 9, 5, 6, 9, 9, 9)), d2 = empty(9);
        dev.copy2d(d2, 12, s2, 20, 8, 3);
        float[] out = dev.read(d2, 9);
        assertArrayEquals(new float[] {1, 2, 3, 4, 5, 6}, new float[] {out[0], out[1], out[3], out[4], out[6], out[7]});
        assertTrue(Float.isNaN(out[2]) && Float.isNaN(out[5]) && Float.isNaN(out[8]));
        assertThrows(IllegalArgumentException.class, () -> dev.copy2d(d2, 4, s2, 20, 8, 3));
        assertThrows(IllegalArgumentException.class, () -> dev.copy2d(d2, 12, s2, 20, 6, 3));
        // a fourth destination row is past the end: nothing is copied
        long d3 = empty(9);
        assertThrows(IllegalStateException.class, () -> dev.copy2d(d3, 12, s2, 12, 8, 4));
        assertTrue(Float.isNaN(dev.read(d3, 1)[0]));
    }

    @Test
    void useAfterFreeAndBadFreesAreCaught() {
        long p = put(1, 2, 3);
        dev.free(p);
        IllegalStateException e = assertThrows(IllegalStateException.class, () -> dev.read(p + 4, 1));
        assertTrue(e.getMessage().contains("use after free"), e.getMessage());
        assertTrue(e.getMessage().contains(Long.toHexString(p + 4)), e.getMessage());
        assertTrue(
                e.getMessage().contains("region " + (p >>> 32))
                        && e.getMessage().contains("12 bytes"),
                e.getMessage());
        assertThrows(IllegalStateException.class, () -> dev.free(p));
        assertThrows(IllegalStateException.class, () -> dev.free(77L << 32));
        long q = empty(4);
        assertThrows(IllegalStateException.class, () -> dev.free(q + 4));
        long y = empty(3);
        assertThrows(
                IllegalStateException.class,
                () -> ops(
                        OpsKernels.ADD,
                        OpsKernels.elementwise(3),
                        new KernelArgs().ptr(p).ptr(y).ptr(y).i(3)));
    }

    @Test
    void outOfBoundsAndNullAccessesAreCaught() {
        long p = empty(4);
        IllegalStateException e = assertThrows(IllegalStateException.class, () -> dev.read(p, 5));
        assertTrue(
                e.getMessage().contains("out of bounds")
                        && e.getMessage().contains("16 bytes")
                        && e.getMessage().contains("region " + (p >>> 32)),
                e.getMessage());
        assertThrows(IllegalStateException.class, () -> dev.read(p + 16, 1));
        assertThrows(IllegalStateException.class, () -> dev.upload(p + 8, new float[3], 0, 3));
        assertThrows(IllegalStateException.class, () -> dev.read(p + 2, 1));
        assertThrows(IllegalStateException.class, () -> dev.read(0, 1));
        assertThrows(IllegalStateException.class, () -> dev.read(99L << 32, 1));
        long x = put(1, 2, 3, 4, 5);
        assertThrows(
                IllegalStateException.class,
                () -> ops(
                        OpsKernels.ADD,
                        OpsKernels.elementwise(5),
                        new KernelArgs().ptr(x).ptr(x).ptr(p).i(5)));
    }

    @Test
    void capacityIsEnforced() {
        try (EmulatedDevice small = new EmulatedDevice(100)) {
            long a = small.allocate(60);
            DeviceOutOfMemoryException e = assertThrows(DeviceOutOfMemoryException.class, () -> small.allocate(41));
            assertEquals(41, e.requestedBytes());
            long b = small.allocate(40);
            assertEquals(100, small.liveBytes());
            small.free(a);
            small.allocate(60);
            small.free(b);
            assertEquals(3, small.allocations());
            assertEquals(100, small.peakLiveBytes());
        }
    }

    @Test
    void aClosedDeviceRefusesWorkButKeepsItsCounters() {
        long p = dev.allocate(8);
        dev.close();
        assertThrows(IllegalStateException.class, () -> dev.allocate(8));
        assertThrows(IllegalStateException.class, () -> dev.free(p));
        assertThrows(IllegalStateException.class, () -> dev.read(p, 1));
        assertThrows(IllegalStateException.class, dev::synchronize);
        assertEquals(8, dev.liveBytes());
        assertTrue(dev.isClosed());
        dev.close();
    }

    // ---- launch checks ---------------------------------------------------------------------------------------

    @Test
    void launchesAreCheckedAgainstTheKernelContract() {
        long a = put(1, 2), y = empty(2);
        LaunchGeometry g = OpsKernels.elementwise(2);
        IllegalArgumentException e = assertThrows(
                IllegalArgumentException.class,
                () -> ops(OpsKernels.ADD, g, new KernelArgs().ptr(a).ptr(a).ptr(y)));
        assertTrue(e.getMessage().contains(OpsKernels.ADD), e.getMessage());
        e = assertThrows(
                IllegalArgumentException.class,
                () -> ops(
                        OpsKernels.ADD, g, new KernelArgs().ptr(a).ptr(a).ptr(y).f(2)));
        assertTrue(e.getMessage().contains(OpsKernels.ADD), e.getMessage());
        e = assertThrows(
                IllegalArgumentException.class,
                () -> ops(
                        OpsKernels.ADD, g, new KernelArgs().ptr(a).ptr(0).ptr(y).i(2)));
        assertTrue(e.getMessage().contains("null"), e.getMessage());
        e = assertThrows(
                IllegalArgumentException.class,
                () -> ops(
                        OpsKernels.ADD,
                        LaunchGeometry.of(2, 256),
                        new KernelArgs().ptr(a).ptr(a).ptr(y).i(2)));
        assertTrue(e.getMessage().contains(OpsKernels.ADD), e.getMessage());
        assertThrows(
                IllegalArgumentException.class,
                () -> ops(
                        OpsKernels.LAYER_NORM,
                        OpsKernels.elementwise(2),
                        new KernelArgs().ptr(a).ptr(0).ptr(0).ptr(y).i(2).i(1).f(1e-5f)));
        assertThrows(
                IllegalArgumentException.class,
                () -> ops(
                        "fb_nonexistent",
                        g,
                        new KernelArgs().ptr(a).ptr(a).ptr(y).i(2)));
        assertThrows(
                IllegalArgumentException.class,
                () -> dev.launch(
                        "no_module",
                        OpsKernels.ADD,
                        g,
                        new KernelArgs().ptr(a).ptr(a).ptr(y).i(2)));
        assertTrue(dev.launches().isEmpty(), "rejected launches are not recorded");

        ops(OpsKernels.ADD, g, new KernelArgs().ptr(a).ptr(a).ptr(y).i(2));
        ops(OpsKernels.MUL, g, new KernelArgs().ptr(y).ptr(a).ptr(y).i(2));
        assertEquals(
                List.of(
                        new EmulatedDevice.Launch(OpsKernels.MODULE, OpsKernels.ADD, g),
                        new EmulatedDevice.Launch(OpsKernels.MODULE, OpsKernels.MUL, g)),
                dev.launches());
        assertEquals(List.of(OpsKernels.ADD, OpsKernels.MUL), dev.launchedKernels());
        assertArrayEquals(new float[] {2, 8}, dev.read(y, 2));
    }

    // ---- ops kernels -----------------------------------------------------------------------------------------

    @Test
    void addAndMul() {
        long a = put(1, 2, 3), b = put(4, 5, -6), y = empty(3);
        LaunchGeometry g = OpsKernels.elementwise(3);
        ops(OpsKernels.ADD, g, new KernelArgs().ptr(a).ptr(b).ptr(y).i(3));
        assertArrayEquals(new float[] {5, 7, -3}, dev.read(y, 3));
        ops(OpsKernels.MUL, g, new KernelArgs().ptr(a).ptr(b).ptr(y).i(3));
        assertArrayEquals(new float[] {4, 10, -18}, dev.read(y, 3));
        // in place, with pointer offsets: a[1..2] += b[0..1]
        ops(
                OpsKernels.ADD,
                OpsKernels.elementwise(2),
                new KernelArgs().ptr(a + 4).ptr(b).ptr(a + 4).i(2));
        assertArrayEquals(new float[] {1, 6, 8}, dev.read(a, 3));
    }

    @Test
    void activations() {
        double[] xs = {-3, -0.5, 0, 0.25, 1, 4};
        long x = put(f(xs)), y = empty(xs.length);
        LaunchGeometry g = OpsKernels.elementwise(xs.length);
        float[] gelu = new float[xs.length], silu = new float[xs.length], quick = new float[xs.length];
        for (int i = 0; i < xs.length; i++) {
            double v = xs[i];
            gelu[i] = (float) (0.5 * v * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (v + 0.044715 * v * v * v))));
            silu[i] = (float) (v / (1 + Math.exp(-v)));
            quick[i] = (float) (v / (1 + Math.exp(-1.702 * v)));
        }
        ops(OpsKernels.GELU_TANH, g, new KernelArgs().ptr(x).ptr(y).i(xs.length));
        assertClose(gelu, dev.read(y, xs.length), 1e-6);
        ops(OpsKernels.SILU, g, new KernelArgs().ptr(x).ptr(y).i(xs.length));
        assertClose(silu, dev.read(y, xs.length), 1e-6);
        ops(OpsKernels.QUICK_GELU, g, new KernelArgs().ptr(x).ptr(y).i(xs.length));
        assertClose(quick, dev.read(y, xs.length), 1e-6);
        assertEquals(0f, dev.read(y, 3)[2]);
    }

    @Test
    void modulateAndGatedAdd() {
        // B = 2, L = 2, C = 2
        long x = put(1, 2, 5, 6, 3, 4, 7, 8), shift = put(10, 20, 30, 40), scale = put(1, 0, -1, 0.5f);
        long y = empty(8);
        ops(
                OpsKernels.MODULATE,
                OpsKernels.elementwise(8),
                new KernelArgs().ptr(x).ptr(shift).ptr(scale).ptr(y).i(2).i(2).i(2));
        assertArrayEquals(new float[] {12, 22, 20, 26, 30, 46, 30, 52}, dev.read(y, 8));

        // B = 2, L = 2, C = 1
        long x2 = put(1, 2, 3, 4), gate = put(2, -1), v = put(10, 20, 30, 40), y2 = empty(4);
        ops(
                OpsKernels.GATED_ADD,
                OpsKernels.elementwise(4),
                new KernelArgs().ptr(x2).ptr(gate).ptr(v).ptr(y2).i(2).i(2).i(1));
        assertArrayEquals(new float[] {21, 42, -27, -36}, dev.read(y2, 4));
    }

    @Test
    void biases() {
        long y = put(0, 1, 2, 3, 4, 5), bias = put(10, 20, 30);
        ops(
                OpsKernels.ADD_BIAS_ROWS,
                OpsKernels.elementwise(6),
                new KernelArgs().ptr(y).ptr(bias).i(2).i(3));
        assertArrayEquals(new float[] {10, 21, 32, 13, 24, 35}, dev.read(y, 6));

        // B = 2, C = 2, HW = 2
        long y2 = put(0, 0, 0, 0, 0, 0, 0, 0), bias2 = put(1, 2);
        ops(
                OpsKernels.ADD_BIAS_CHANNELS,
                OpsKernels.elementwise(8),
                new KernelArgs().ptr(y2).ptr(bias2).i(2).i(2).i(2));
        assertArrayEquals(new float[] {1, 1, 2, 2, 1, 1, 2, 2}, dev.read(y2, 8));
    }

    @Test
    void rope() {
        // B = 1, L = 2, H = 2, D = 4; position 0: pair 0 rotated by 90 degrees, pair 1 doubled; position 1 swaps
        long x = put(f(1, 2, 3, 4, 5, 6, 7, 8, 1, 2, 3, 4, 5, 6, 7, 8));
        long pe = put(f(0, -1, 1, 0, 2, 0, 0, 2, 0, 1, 1, 0, 1, 0, 0, 1));
        long y = empty(16);
        ops(
                OpsKernels.ROPE,
                OpsKernels.elementwise(1 * 2 * 2 * 2),
                new KernelArgs().ptr(x).ptr(pe).ptr(y).i(1).i(2).i(2).i(4));
        assertArrayEquals(new float[] {-2, 1, 6, 8, -6, 5, 14, 16, 2, 1, 3, 4, 6, 5, 7, 8}, dev.read(y, 16));
    }

    @Test
    void embedding() {
        long table = put(1, 2, 3, 4, 5, 6), ids = putInts(2, 0, 2), y = empty(6);
        ops(
                OpsKernels.EMBEDDING,
                OpsKernels.elementwise(6),
                new KernelArgs().ptr(table).ptr(ids).ptr(y).i(3).i(2));
        assertArrayEquals(new float[] {5, 6, 1, 2, 5, 6}, dev.read(y, 6));
        long bad = putInts(3);
        assertThrows(
                IllegalStateException.class,
                () -> ops(
                        OpsKernels.EMBEDDING,
                        OpsKernels.elementwise(2),
                        new KernelArgs().ptr(table).ptr(bad).ptr(y).i(1).i(2)));
    }

    @Test
    void im2col() {
        // one 3 x 3 image, 3 x 3 kernel, stride 1, padding 1: 9 output positions
        long x = put(1, 2, 3, 4, 5, 6, 7, 8, 9), col = empty(81);
        ops(
                OpsKernels.IM2COL,
                OpsKernels.elementwise(81),
                new KernelArgs()
                        .ptr(x)
                        .ptr(col)
                        .i(1)
                        .i(3)
                        .i(3)
                        .i(3)
                        .i(3)
                        .i(1)
                        .i(1)
                        .i(1)
                        .i(3)
                        .i(0)
                        .i(9));
        float[] c = dev.read(col, 81);
        float[] tap00 = java.util.Arrays.copyOfRange(c, 0, 9), centre = java.util.Arrays.copyOfRange(c, 36, 45);
        float[] tap22 = java.util.Arrays.copyOfRange(c, 72, 81);
        assertArrayEquals(new float[] {0, 0, 0, 0, 1, 2, 0, 4, 5}, tap00);
        assertArrayEquals(new float[] {1, 2, 3, 4, 5, 6, 7, 8, 9}, centre);
        assertArrayEquals(new float[] {5, 6, 0, 8, 9, 0, 0, 0, 0}, tap22);

        // position 3 only (p0 = 3, P = 1); 2 channels, 2 x 2 kernel, stride 2, no padding on a 4 x 4 image
        float[] img = new float[32];
        for (int i = 0; i < 32; i++) {
            img[i] = i;
        }
        long x2 = put(img), col2 = empty(8);
        ops(
                OpsKernels.IM2COL,
                OpsKernels.elementwise(8),
                new KernelArgs()
                        .ptr(x2)
                        .ptr(col2)
                        .i(2)
                        .i(4)
                        .i(4)
                        .i(2)
                        .i(2)
                        .i(2)
                        .i(0)
                        .i(0)
                        .i(2)
                        .i(3)
                        .i(1));
        // Wo = 2: p = 3 is (oy 1, ox 1): input rows 2..3, columns 2..3
        assertArrayEquals(new float[] {10, 11, 14, 15, 26, 27, 30, 31}, dev.read(col2, 8));
    }

    @Test
    void upsampleNearest2x() {
        long x = put(1, 2), y = empty(8);
        ops(
                OpsKernels.UPSAMPLE_NEAREST_2X,
                OpsKernels.elementwise(8),
                new KernelArgs().ptr(x).ptr(y).i(1).i(1).i(2));
        assertArrayEquals(new float[] {1, 1, 2, 2, 1, 1, 2, 2}, dev.read(y, 8));
        long x2 = put(3, 4), y2 = empty(8);
        ops(
                OpsKernels.UPSAMPLE_NEAREST_2X,
                OpsKernels.elementwise(8),
                new KernelArgs().ptr(x2).ptr(y2).i(2).i(1).i(1));
        assertArrayEquals(new float[] {3, 3, 3, 3, 4, 4, 4, 4}, dev.read(y2, 8));
    }

    @Test
    void layerNorm() {
        float eps = 1e-5f;
        long x = put(1, 2, 3, 4, 5, 5, 5, 5), y = empty(8);
        ops(
                OpsKernels.LAYER_NORM,
                OpsKernels.rows(2),
                new KernelArgs().ptr(x).ptr(0).ptr(0).ptr(y).i(2).i(4).f(eps));
        double sd = Math.sqrt(1.25 + eps);
        assertClose(f(-1.5 / sd, -0.5 / sd, 0.5 / sd, 1.5 / sd, 0, 0, 0, 0), dev.read(y, 8), 1e-6);

        long w = put(1, 2, 1, 1), b = put(0, 0, 1, 0);
        ops(
                OpsKernels.LAYER_NORM,
                OpsKernels.rows(2),
                new KernelArgs().ptr(x).ptr(w).ptr(b).ptr(y).i(2).i(4).f(eps));
        assertClose(f(-1.5 / sd, -1 / sd, 0.5 / sd + 1, 1.5 / sd, 0, 0, 1, 0), dev.read(y, 8), 1e-6);
        assertThrows(
                IllegalArgumentException.class,
                () -> ops(
                        OpsKernels.LAYER_NORM,
                        OpsKernels.rows(2),
                        new KernelArgs().ptr(x).ptr(w).ptr(0).ptr(y).i(2).i(4).f(eps)));
        assertThrows(
                IllegalArgumentException.class,
                () -> ops(
                        OpsKernels.LAYER_NORM,
                        OpsKernels.rows(1),
                        new KernelArgs().ptr(x).ptr(w).ptr(b).ptr(y).i(2).i(4).f(eps)));
    }

    @Test
    void rmsNorm() {
        long x = put(3, 4, -1, 1), scale = put(1, 2), y = empty(4);
        ops(
                OpsKernels.RMS_NORM,
                OpsKernels.rows(2),
                new KernelArgs().ptr(x).ptr(scale).ptr(y).i(2).i(2).f(0f));
        double r = Math.sqrt(12.5);
        assertClose(f(3 / r, 8 / r, -1, 2), dev.read(y, 4), 1e-6);
    }

    @Test
    void softmaxRows() {
        // causal, Lq = 2: row 0 sees column 0, row 1 columns 0 and 1
        long s = put(1, 2, 3, 1, 2, 3);
        ops(
                OpsKernels.SOFTMAX_ROWS,
                OpsKernels.rows(2),
                new KernelArgs().ptr(s).ptr(0).i(2).i(3).i(2).i(1));
        double e1 = Math.exp(1), e2 = Math.exp(2);
        assertClose(f(1, 0, 0, e1 / (e1 + e2), e2 / (e1 + e2), 0), dev.read(s, 6), 1e-6);

        // bias, not causal; huge scores do not overflow (the max is subtracted)
        long s2 = put(0, 0, 0, 1000, 1000, 1000), bias = put(0, (float) Math.log(2), (float) Math.log(3), 0, 0, 0);
        ops(
                OpsKernels.SOFTMAX_ROWS,
                OpsKernels.rows(2),
                new KernelArgs().ptr(s2).ptr(bias).i(2).i(3).i(2).i(0));
        assertClose(f(1 / 6.0, 2 / 6.0, 3 / 6.0, 1 / 3.0, 1 / 3.0, 1 / 3.0), dev.read(s2, 6), 1e-6);
    }

    @Test
    void groupNorm() {
        float eps = 1e-5f;
        // B = 1, C = 2, HW = 2
        long x = put(1, 2, 3, 4), w = put(1, 2), b = put(0, 1), y = empty(4);
        ops(
                OpsKernels.GROUP_NORM,
                OpsKernels.rows(1),
                new KernelArgs().ptr(x).ptr(w).ptr(b).ptr(y).i(1).i(2).i(2).i(1).f(eps));
        double sd = Math.sqrt(1.25 + eps);
        assertClose(f(-1.5 / sd, -0.5 / sd, 2 * 0.5 / sd + 1, 2 * 1.5 / sd + 1), dev.read(y, 4), 1e-6);

        // B = 2, C = 2, groups = 2: each channel on its own
        long x2 = put(1, 2, 3, 4, 0, 10, 7, 7), y2 = empty(8);
        ops(
                OpsKernels.GROUP_NORM,
                OpsKernels.rows(4),
                new KernelArgs()
                        .ptr(x2)
                        .ptr(w)
                        .ptr(b)
                        .ptr(y2)
                        .i(2)
                        .i(2)
                        .i(2)
                        .i(2)
                        .f(eps));
        double s1 = Math.sqrt(0.25 + eps), s25 = Math.sqrt(25 + eps);
        assertClose(f(-0.5 / s1, 0.5 / s1, -1 / s1 + 1, 1 / s1 + 1, -5 / s25, 5 / s25, 1, 1), dev.read(y2, 8), 1e-5);
        assertThrows(
                IllegalArgumentException.class,
                () -> ops(
                        OpsKernels.GROUP_NORM,
                        OpsKernels.rows(2),
                        new KernelArgs()
                                .ptr(x2)
                                .ptr(w)
                                .ptr(b)
                                .ptr(y2)
                                .i(2)
                                .i(2)
                                .i(2)
                                .i(2)
                                .f(eps)));
    }

    @Test
    void transposeLast2() {
        long x = put(1, 2, 3, 4, 5, 6, 11, 12, 13, 14, 15, 16), y = empty(12);
        ops(
                OpsKernels.TRANSPOSE_LAST2,
                OpsKernels.transpose(2, 2, 3),
                new KernelArgs().ptr(x).ptr(y).i(2).i(3));
        assertArrayEquals(new float[] {1, 4, 2, 5, 3, 6, 11, 14, 12, 15, 13, 16}, dev.read(y, 12));
        assertThrows(
                IllegalArgumentException.class,
                () -> ops(
                        OpsKernels.TRANSPOSE_LAST2,
                        OpsKernels.transpose(2, 40, 3),
                        new KernelArgs().ptr(x).ptr(y).i(2).i(3)));
        assertThrows(
                IllegalArgumentException.class,
                () -> ops(
                        OpsKernels.TRANSPOSE_LAST2,
                        OpsKernels.transpose(1, 2, 3),
                        new KernelArgs().ptr(x).ptr(x).i(2).i(3)));
    }

    // ---- ternary ---------------------------------------------------------------------------------------------

    @ParameterizedTest
    @CsvSource({"1,3,40,true", "2,9,64,false", "20,5,33,true", "70,66,31,false"})
    void ternaryMatmul(int m, int n, int k, boolean withBias) {
        Random random = new Random(7 + m);
        int kw = (k + 31) / 32;
        int[] codes = new int[n * k];
        int[] w = new int[2 * n * kw];
        for (int o = 0; o < n; o++) {
            for (int j = 0; j < k; j++) {
                int code = random.nextInt(3) - 1;
                codes[o * k + j] = code;
                if (code == 1) {
                    w[2 * (o * kw + j / 32)] |= 1 << (j % 32);
                } else if (code == -1) {
                    w[2 * (o * kw + j / 32) + 1] |= 1 << (j % 32);
                }
            }
        }
        float[] x = new float[m * k], scale = new float[n], bias = new float[n];
        for (int i = 0; i < x.length; i++) {
            x[i] = (float) random.nextGaussian();
        }
        for (int o = 0; o < n; o++) {
            scale[o] = 0.5f + random.nextFloat();
            bias[o] = (float) random.nextGaussian();
        }
        float[] expected = new float[m * n];
        for (int r = 0; r < m; r++) {
            for (int o = 0; o < n; o++) {
                double acc = 0;
                for (int j = 0; j < k; j++) {
                    acc += x[r * k + j] * codes[o * k + j];
                }
                expected[r * n + o] = (float) (acc * scale[o] + (withBias ? bias[o] : 0));
            }
        }
        long xp = put(x), wp = putInts(w), sp = put(scale), bp = withBias ? put(bias) : 0, yp = empty(m * n);
        TernaryLaunch plan = TernaryLaunch.plan(m, n, k);
        LaunchGeometry g = new LaunchGeometry(plan.gridX(), plan.gridY(), 1, plan.blockX(), 1, 1, 0);
        KernelArgs args = new KernelArgs()
                .ptr(xp)
                .ptr(wp)
                .ptr(sp)
                .ptr(bp)
                .ptr(yp)
                .i(m)
                .i(n)
                .i(k);
        dev.launch(CudaModules.TERNARY_MATMUL, plan.kernel(), g, args);
        assertClose(expected, dev.read(yp, m * n), 1e-4);
        assertEquals(
                new EmulatedDevice.Launch(CudaModules.TERNARY_MATMUL, plan.kernel(), g),
                dev.launches().get(0));

        String other = plan.kernel().equals(TernaryLaunch.SMALL_M_KERNEL)
                ? TernaryLaunch.TILED_KERNEL
                : TernaryLaunch.SMALL_M_KERNEL;
        assertThrows(IllegalArgumentException.class, () -> dev.launch(CudaModules.TERNARY_MATMUL, other, g, args));
        assertThrows(
                IllegalArgumentException.class,
                () -> dev.launch(
                        CudaModules.TERNARY_MATMUL,
                        plan.kernel(),
                        LaunchGeometry.of(plan.gridX() + 1, plan.blockX()),
                        args));
        assertThrows(
                IllegalArgumentException.class,
                () -> dev.launch(
                        CudaModules.TERNARY_MATMUL,
                        plan.kernel(),
                        g,
                        new KernelArgs()
                                .ptr(xp)
                                .ptr(wp)
                                .ptr(sp)
                                .ptr(bp)
                                .ptr(yp)
                                .i(m)
                                .i(n)));
    }

    @Test
    void ternaryInputGradient() {
        // N = 3 outputs, K = 2 inputs: codes [[1, -1], [0, 1], [-1, -1]], scale (2, 0, -1); M = 2 rows of dy
        int[] w = {0b01, 0b10, 0b10, 0, 0, 0b11};
        long wp = putInts(w), sp = put(2, 0, -1), dyp = put(1, 5, 3, -2, 7, 0.5f), dxp = empty(4);
        LaunchGeometry g = TernaryLaunch.inputGrad(2, 2);
        dev.launch(
                CudaModules.TERNARY_MATMUL,
                TernaryLaunch.INPUT_GRAD_KERNEL,
                g,
                new KernelArgs().ptr(dyp).ptr(wp).ptr(sp).ptr(dxp).i(2).i(3).i(2));
        // row 0: dy * scale = (2, 0, -3): dx = (2 + 3, -2 + 0 + 3); row 1: (-4, 0, -0.5): (-4 + 0.5, 4 + 0.5)
        assertArrayEquals(new float[] {5, 1, -3.5f, 4.5f}, dev.read(dxp, 4));
        assertThrows(
                IllegalArgumentException.class,
                () -> dev.launch(
                        CudaModules.TERNARY_MATMUL,
                        TernaryLaunch.INPUT_GRAD_KERNEL,
                        LaunchGeometry.of(2, 256),
                        new KernelArgs()
                                .ptr(dyp)
                                .ptr(wp)
                                .ptr(sp)
                                .ptr(dxp)
                                .i(2)
                                .i(3)
                                .i(2)));
    }

    // ---- reverse mode ----------------------------------------------------------------------------------------

    @Test
    void fillAndActivationGradients() {
        long y = empty(5);
        ops(
                OpsKernels.FILL,
                OpsKernels.elementwise(5),
                new KernelArgs().ptr(y).f(-1.5f).i(5));
        assertArrayEquals(new float[] {-1.5f, -1.5f, -1.5f, -1.5f, -1.5f}, dev.read(y, 5));

        double[] xs = {-3, -0.5, 0, 0.25, 1, 4};
        double[] dys = {1, -2, 0.5, 3, -1, 2};
        long x = put(f(xs)), dy = put(f(dys)), out = empty(xs.length);
        float[] gelu = new float[xs.length], silu = new float[xs.length];
        for (int i = 0; i < xs.length; i++) {
            double v = xs[i], h = 1e-4;
            gelu[i] = (float) (dys[i] * (geluOf(v + h) - geluOf(v - h)) / (2 * h));
            double sig = 1 / (1 + Math.exp(-v));
            silu[i] = (float) (dys[i] * sig * (1 + v * (1 - sig)));
        }
        LaunchGeometry g = OpsKernels.elementwise(xs.length);
        ops(
                OpsKernels.GELU_TANH_BACKWARD,
                g,
                new KernelArgs().ptr(x).ptr(dy).ptr(out).i(xs.length));
        assertClose(gelu, dev.read(out, xs.length), 1e-5);
        ops(
                OpsKernels.SILU_BACKWARD,
                g,
                new KernelArgs().ptr(x).ptr(dy).ptr(out).i(xs.length));
        assertClose(silu, dev.read(out, xs.length), 1e-6);
    }

    private static double geluOf(double v) {
        return 0.5 * v * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (v + 0.044715 * v * v * v)));
    }

    @Test
    void perSampleProductAndRopeGradient() {
        // B = 2, L = 2, C = 1: y = (1 + v[b]) x
        long x = put(1, 2, 3, 4), v = put(2, -1), y = empty(4);
        ops(
                OpsKernels.MUL_PER_SAMPLE,
                OpsKernels.elementwise(4),
                new KernelArgs().ptr(x).ptr(v).f(1f).ptr(y).i(2).i(2).i(1));
        assertArrayEquals(new float[] {3, 6, 0, 0}, dev.read(y, 4));

        // the rope example above, backwards: pair 0 of position 0 is rotated by -90 degrees
        long dy = put(f(1, 2, 3, 4, 5, 6, 7, 8, 1, 2, 3, 4, 5, 6, 7, 8));
        long pe = put(f(0, -1, 1, 0, 2, 0, 0, 2, 0, 1, 1, 0, 1, 0, 0, 1));
        long dx = empty(16);
        ops(
                OpsKernels.ROPE_BACKWARD,
                OpsKernels.elementwise(8),
                new KernelArgs().ptr(dy).ptr(pe).ptr(dx).i(1).i(2).i(2).i(4));
        assertArrayEquals(new float[] {2, -1, 6, 8, 6, -5, 14, 16, 2, 1, 3, 4, 6, 5, 7, 8}, dev.read(dx, 16));
    }

    @Test
    void normAndSoftmaxGradients() {
        // one row: layer norm of (1, 2, 3, 6) with dy = (1, 0, 0, 0), against central differences
        double[] xs = {1, 2, 3, 6}, dys = {1, -0.5, 0, 2};
        float eps = 1e-5f;
        long x = put(f(xs)), dy = put(f(dys)), s = put(1.5f, 0.5f, 1, 2), out = empty(4);
        ops(
                OpsKernels.LAYER_NORM_BACKWARD,
                OpsKernels.rows(1),
                new KernelArgs().ptr(x).ptr(dy).ptr(out).i(1).i(4).f(eps));
        float[] want = new float[4];
        float[] wantRms = new float[4];
        double[] sc = {1.5, 0.5, 1, 2};
        for (int j = 0; j < 4; j++) {
            double h = 1e-5;
            double[] up = xs.clone(), down = xs.clone();
            up[j] += h;
            down[j] -= h;
            want[j] = (float) ((dot(dys, layerNormOf(up, eps)) - dot(dys, layerNormOf(down, eps))) / (2 * h));
            wantRms[j] = (float) ((dot(dys, rmsNormOf(up, sc, eps)) - dot(dys, rmsNormOf(down, sc, eps))) / (2 * h));
        }
        assertClose(want, dev.read(out, 4), 1e-4);
        ops(
                OpsKernels.RMS_NORM_BACKWARD,
                OpsKernels.rows(1),
                new KernelArgs().ptr(x).ptr(s).ptr(dy).ptr(out).i(1).i(4).f(eps));
        assertClose(wantRms, dev.read(out, 4), 1e-4);

        // softmax rows: p = (0.5, 0.25, 0.25), g = (1, 2, 3): sum g p = 1.75, g = p (g - 1.75)
        long p = put(0.5f, 0.25f, 0.25f), g = put(1, 2, 3);
        ops(
                OpsKernels.SOFTMAX_BACKWARD_ROWS,
                OpsKernels.rows(1),
                new KernelArgs().ptr(p).ptr(g).i(1).i(3));
        assertArrayEquals(new float[] {-0.375f, 0.0625f, 0.3125f}, dev.read(g, 3));
    }

    private static double dot(double[] a, double[] b) {
        double s = 0;
        for (int i = 0; i < a.length; i++) {
            s += a[i] * b[i];
        }
        return s;
    }

    private static double[] layerNormOf(double[] x, double eps) {
        double mean = 0, var = 0;
        for (double v : x) {
            mean += v / x.length;
        }
        for (double v : x) {
            var += (v - mean) * (v - mean) / x.length;
        }
        double[] y = new double[x.length];
        for (int i = 0; i < x.length; i++) {
            y[i] = (x[i] - mean) / Math.sqrt(var + eps);
        }
        return y;
    }

    private static double[] rmsNormOf(double[] x, double[] scale, double eps) {
        double ms = 0;
        for (double v : x) {
            ms += v * v / x.length;
        }
        double[] y = new double[x.length];
        for (int i = 0; i < x.length; i++) {
            y[i] = x[i] / Math.sqrt(ms + eps) * scale[i];
        }
        return y;
    }

    @Test
    void sumRowsInItsDocumentedOrder() {
        // B = 2, L = 10, C = 3, small integers (every partial exact) but column 0 of sample 0: rows 0, 1 and 8 hold
        // 1e8, -1e8 and 1. Rows 0 and 8 share the partial of ty = 0, where 1e8 + 1 rounds to 1e8, so the kernel's
        // sum is 0 where the exact (and the sequential) sum is 1
        int b = 2, l = 10, c = 3;
        float[] a = new float[b * l * c], v = new float[b * l * c];
        for (int i = 0; i < a.length; i++) {
            a[i] = i % 7 - 3;
            v[i] = i % 5 * 0.5f;
        }
        for (int r = 0; r < l; r++) {
            a[r * c] = 0;
            v[r * c] = 1;
        }
        a[0] = 1e8f;
        a[c] = -1e8f;
        a[8 * c] = 1f;
        long ap = put(a), vp = put(v), y = empty(b * c), yv = empty(b * c);
        ops(
                OpsKernels.SUM_ROWS,
                OpsKernels.sumRows(b, c),
                new KernelArgs().ptr(ap).ptr(0).ptr(y).i(b).i(l).i(c));
        ops(
                OpsKernels.SUM_ROWS,
                OpsKernels.sumRows(b, c),
                new KernelArgs().ptr(ap).ptr(vp).ptr(yv).i(b).i(l).i(c));
        float[] sums = dev.read(y, b * c), dots = dev.read(yv, b * c);
        assertEquals(0f, sums[0], "1e8 + 1 in the partial of rows 0, 8, then -1e8");
        assertEquals(0f, dots[0]);
        for (int s = 0; s < b; s++) {
            for (int col = 0; col < c; col++) {
                if (s == 0 && col == 0) {
                    continue;
                }
                double sum = 0, d = 0;
                for (int r = 0; r < l; r++) {
                    int i = (s * l + r) * c + col;
                    sum += a[i];
                    d += (double) a[i] * v[i];
                }
                assertEquals((float) sum, sums[s * c + col], "sum of column " + col + " of sample " + s);
                assertEquals((float) d, dots[s * c + col], "dot of column " + col + " of sample " + s);
            }
        }
        assertThrows(
                IllegalArgumentException.class,
                () -> ops(
                        OpsKernels.SUM_ROWS,
                        OpsKernels.elementwise(b * c),
                        new KernelArgs().ptr(ap).ptr(0).ptr(y).i(b).i(l).i(c)));
    }

    // ---- gemm ------------------------------------------------------------------------------------------------

    /**
     * Stores {@code rows x cols} row-major {@code logical} (what op(X) should be) column-major with leading
     * dimension {@code ld} from {@code at} of {@code into}, transposed (stored {@code cols x rows}) when {@code trans}.
     */
    private static void store(float[] logical, int rows, int cols, boolean trans, int ld, int at, float[] into) {
        int sr = trans ? cols : rows, sc = trans ? rows : cols;
        for (int c = 0; c < sc; c++) {
            for (int r = 0; r < sr; r++) {
                into[at + r + c * ld] = trans ? logical[c * cols + r] : logical[r * cols + c];
            }
        }
    }

    private static float[] random(Random random, int n) {
        float[] a = new float[n];
        for (int i = 0; i < n; i++) {
            a[i] = (float) random.nextGaussian();
        }
        return a;
    }

    @ParameterizedTest
    @CsvSource({"false,false", "false,true", "true,false", "true,true"})
    void gemmMatchesANaiveProduct(boolean transA, boolean transB) {
        int m = 3, n = 4, k = 5, batch = 2;
        float alpha = 0.5f, beta = 2f;
        Random random = new Random((transA ? 1 : 0) + (transB ? 2 : 0));
        int lda = (transA ? k : m) + 1, ldb = (transB ? n : k) + 2, ldc = m + 1;
        long strideA = (long) lda * (transA ? m : k) + 3, strideB = (long) ldb * (transB ? k : n) + 1;
        long strideC = (long) ldc * n + 2;
        float[] aStore = new float[(int) strideA * batch], bStore = new float[(int) strideB * batch];
        float[] cStore = new float[(int) strideC * batch];
        java.util.Arrays.fill(aStore, Float.NaN);
        java.util.Arrays.fill(bStore, Float.NaN);
        java.util.Arrays.fill(cStore, 99f);
        float[][] opA = new float[batch][], opB = new float[batch][], c0 = new float[batch][];
        for (int i = 0; i < batch; i++) {
            opA[i] = random(random, m * k);
            opB[i] = random(random, k * n);
            c0[i] = random(random, m * n);
            store(opA[i], m, k, transA, lda, (int) (i * strideA), aStore);
            store(opB[i], k, n, transB, ldb, (int) (i * strideB), bStore);
            store(c0[i], m, n, false, ldc, (int) (i * strideC), cStore);
        }
        long a = put(aStore), b = put(bStore), c = put(cStore);
        dev.gemm(transA, transB, m, n, k, alpha, a, lda, strideA, b, ldb, strideB, beta, c, ldc, strideC, batch);
        assertEquals(1, dev.gemms());
        float[] out = dev.read(c, cStore.length);
        for (int i = 0; i < batch; i++) {
            for (int r = 0; r < m; r++) {
                for (int col = 0; col < n; col++) {
                    double acc = 0;
                    for (int p = 0; p < k; p++) {
                        acc += (double) opA[i][r * k + p] * opB[i][p * n + col];
                    }
                    double expected = alpha * acc + beta * c0[i][r * n + col];
                    float got = out[(int) (i * strideC) + r + col * ldc];
                    assertEquals(
                            expected,
                            got,
                            1e-5 * (1 + Math.abs(expected)),
                            "batch " + i + ", C[" + r + ", " + col + "]");
                }
            }
        }
        // the padding of C is untouched
        for (int i = 0; i < batch; i++) {
            for (int col = 0; col < n; col++) {
                assertEquals(99f, out[(int) (i * strideC) + m + col * ldc]);
            }
        }
        assertEquals(99f, out[(int) strideC - 1]);
    }

    @Test
    void gemmWithBetaZeroIgnoresNaNInC() {
        // C = A B with A = [[1, 2], [3, 4]], B = [[5], [6]] (column-major A = {1, 3, 2, 4}); C uninitialized (NaN)
        long a = put(1, 3, 2, 4), b = put(5, 6), c = empty(2);
        dev.gemm(false, false, 2, 1, 2, 1f, a, 2, 0, b, 2, 0, 0f, c, 2, 0, 1);
        assertArrayEquals(new float[] {17, 39}, dev.read(c, 2));
        // k = 0: C = beta C
        dev.gemm(false, false, 2, 1, 0, 1f, a, 2, 0, b, 1, 0, 3f, c, 2, 0, 1);
        assertArrayEquals(new float[] {51, 117}, dev.read(c, 2));
    }

    @Test
    void gemmValidatesLeadingDimensionsAndBounds() {
        long a = empty(64), b = empty(64), c = empty(64);
        assertThrows(
                IllegalArgumentException.class,
                () -> dev.gemm(false, false, 4, 2, 3, 1f, a, 3, 0, b, 3, 0, 0f, c, 4, 0, 1));
        assertThrows(
                IllegalArgumentException.class,
                () -> dev.gemm(true, false, 4, 2, 3, 1f, a, 2, 0, b, 3, 0, 0f, c, 4, 0, 1));
        assertThrows(
                IllegalArgumentException.class,
                () -> dev.gemm(false, false, 4, 2, 3, 1f, a, 4, 0, b, 2, 0, 0f, c, 4, 0, 1));
        assertThrows(
                IllegalArgumentException.class,
                () -> dev.gemm(false, true, 4, 2, 3, 1f, a, 4, 0, b, 1, 0, 0f, c, 4, 0, 1));
        assertThrows(
                IllegalArgumentException.class,
                () -> dev.gemm(false, false, 4, 2, 3, 1f, a, 4, 0, b, 3, 0, 0f, c, 3, 0, 1));
        // valid, but the second batch's C is past the end of c
        assertThrows(
                IllegalStateException.class,
                () -> dev.gemm(false, false, 4, 2, 3, 1f, a, 4, 0, b, 3, 0, 0f, c, 4, 60, 2));
        dev.gemm(false, false, 4, 2, 3, 0f, a, 4, 0, b, 3, 0, 0f, c, 4, 8, 2);
        assertArrayEquals(new float[16], dev.read(c, 16));
    }

    @Test
    void bf16GemmRoundsTheInputs() {
        try (EmulatedDevice bf = new EmulatedDevice(Long.MAX_VALUE, GemmPrecision.BF16)) {
            // 1 + 2^-10 is not a bfloat16 (8 bits of mantissa): rounds to 1
            float x = 1f + 0x1p-10f;
            long a = bf.allocate(4), b = bf.allocate(4), c = bf.allocate(4);
            bf.upload(a, new float[] {x}, 0, 1);
            bf.upload(b, new float[] {3f}, 0, 1);
            bf.gemm(false, false, 1, 1, 1, 1f, a, 1, 0, b, 1, 0, 0f, c, 1, 0, 1);
            assertEquals(3f, bf.read(c, 1)[0]);
        }
    }
}
