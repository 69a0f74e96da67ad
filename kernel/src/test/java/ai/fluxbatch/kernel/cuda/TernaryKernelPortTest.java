package ai.fluxbatch.kernel.cuda;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.fluxbatch.kernel.Tensor;
import ai.fluxbatch.kernel.TestData;
import ai.fluxbatch.kernel.cpu.CpuBackend;
import java.util.Random;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/**
 * The Java port of the CUDA kernels, reading the GPU layout, against the CPU backend's ternary linear on the same
 * interchange-packed weights: pins the layout semantics and the kernels' arithmetic without a GPU.
 */
class TernaryKernelPortTest {
    private static final CpuBackend CPU = new CpuBackend(1);
    private final Random random = new Random(80);

    @AfterAll
    static void close() {
        CPU.close();
    }

    private float[] randn(int n) {
        float[] a = new float[n];
        for (int i = 0; i < n; i++) {
            a[i] = (float) random.nextGaussian();
        }
        return a;
    }

    private float[] cpu(float[] x, byte[] packed, float[] scale, float[] bias, int m, int n, int k) {
        Tensor w = CPU.uploadTernary(packed, n, k, scale);
        Tensor b = bias == null ? null : CPU.upload(bias, n);
        return CPU.download(CPU.ternaryLinear(CPU.upload(x, m, k), w, b));
    }

    private static void assertClose(float[] expected, float[] actual, double tol) {
        assertEquals(expected.length, actual.length, "length");
        double worst = 0;
        for (int i = 0; i < expected.length; i++) {
            worst = Math.max(worst, Math.abs(expected[i] - actual[i]) / (1 + Math.abs(expected[i])));
        }
        assertTrue(worst < tol, "max relative error " + worst + " >= " + tol);
    }

    @ParameterizedTest
    @CsvSource({
        "1,1,1,true",
        "1,5,7,false",
        "1,16,32,true",
        "1,17,33,true",
        "2,9,1000,true",
        "3,64,130,false",
        "16,31,65,true",
        "16,8,3072,true",
        "17,20,100,true",
        "17,65,31,false",
        "64,64,64,true",
        "100,70,257,true",
        "130,129,17,false"
    })
    void portMatchesCpuBackend(int m, int n, int k, boolean withBias) {
        byte[] codes = GpuTernaryLayoutTest.randomCodes(random, n, k);
        byte[] packed = TestData.hfPack(codes, n, k);
        float[] x = randn(m * k), scale = randn(n), bias = withBias ? randn(n) : null;
        for (int i = 0; i < n; i++) {
            scale[i] = Math.abs(scale[i]) * 0.05f + 1e-3f;
        }
        int[] w = GpuTernaryLayout.fromHfPacked(packed, n, k);
        float[] expected = cpu(x, packed, scale, bias, m, n, k);
        float[] port = KernelPort.run(x, w, scale, bias, m, n, k);
        assertClose(expected, port, 1e-5);
        // both kernels compute the same thing; the tiled one in the CPU backend's order, to the bit
        assertClose(expected, KernelPort.smallM(x, w, scale, bias, m, n, k), 1e-5);
        assertArrayEquals(expected, KernelPort.tiled(x, w, scale, bias, m, n, k));
    }
}
