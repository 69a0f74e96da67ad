package ai.fluxbatch.kernel.cpu;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.fluxbatch.kernel.Tensor;
import ai.fluxbatch.kernel.TestData;
import java.util.Random;
import jdk.incubator.vector.FloatVector;
import org.junit.jupiter.api.Test;

class VectorMathTest {
    private static final int LANES = FloatVector.SPECIES_PREFERRED.length();

    @Test
    void expIsWithin3UlpOfMathExpOverTheFloatRange() {
        float[] x = new float[LANES];
        float[] y = new float[LANES];
        double worst = 0;
        for (float v = -87f; v < 88f; v += 0.0137f) {
            for (int i = 0; i < LANES; i++) {
                x[i] = v + i * 1e-3f;
            }
            VectorMath.exp(FloatVector.fromArray(FloatVector.SPECIES_PREFERRED, x, 0))
                    .intoArray(y, 0);
            for (int i = 0; i < LANES; i++) {
                double exact = Math.exp(x[i]);
                worst = Math.max(worst, Math.abs(y[i] - exact) / Math.ulp((float) exact));
            }
        }
        assertTrue(worst <= 3, "worst error " + worst + " ulp");
    }

    @Test
    void expAndTanhSaturate() {
        float[] x = new float[LANES];
        float[] y = new float[LANES];
        java.util.Arrays.fill(x, -200f);
        VectorMath.exp(FloatVector.fromArray(FloatVector.SPECIES_PREFERRED, x, 0))
                .intoArray(y, 0);
        assertTrue(y[0] >= 0 && y[0] < 1e-37f, "exp(-200) = " + y[0]);
        VectorMath.tanh(FloatVector.fromArray(FloatVector.SPECIES_PREFERRED, x, 0))
                .intoArray(y, 0);
        assertEquals(-1f, y[0]);
        java.util.Arrays.fill(x, 200f);
        VectorMath.tanh(FloatVector.fromArray(FloatVector.SPECIES_PREFERRED, x, 0))
                .intoArray(y, 0);
        assertEquals(1f, y[0]);
    }

    @Test
    void scalarExpAndTanhAreTheVectorLanesBitForBit() {
        float[] x = new float[LANES];
        float[] e = new float[LANES];
        float[] t = new float[LANES];
        for (float v = -100f; v < 100f; v += 0.00731f) {
            for (int i = 0; i < LANES; i++) {
                x[i] = v + i * 1.1e-4f;
            }
            VectorMath.exp(FloatVector.fromArray(FloatVector.SPECIES_PREFERRED, x, 0))
                    .intoArray(e, 0);
            VectorMath.tanh(FloatVector.fromArray(FloatVector.SPECIES_PREFERRED, x, 0))
                    .intoArray(t, 0);
            for (int i = 0; i < LANES; i++) {
                assertEquals(
                        Float.floatToRawIntBits(e[i]),
                        Float.floatToRawIntBits(VectorMath.exp(x[i])),
                        "exp(" + x[i] + ")");
                assertEquals(
                        Float.floatToRawIntBits(t[i]),
                        Float.floatToRawIntBits(VectorMath.tanh(x[i])),
                        "tanh(" + x[i] + ")");
            }
        }
    }

    @Test
    void sumLanesAddsInItsDocumentedPairwiseOrder() {
        Random random = new Random(3);
        float[] lanes = new float[LANES];
        for (int rep = 0; rep < 1000; rep++) {
            for (int i = 0; i < LANES; i++) {
                lanes[i] = (float) (random.nextGaussian() * Math.exp(random.nextGaussian() * 8));
            }
            float[] t = lanes.clone();
            for (int half = LANES / 2; half >= 1; half /= 2) { // lane i + lane i + half, halving
                for (int i = 0; i < half; i++) {
                    t[i] += t[i + half];
                }
            }
            float got = VectorMath.sumLanes(FloatVector.fromArray(FloatVector.SPECIES_PREFERRED, lanes, 0));
            assertEquals(
                    Float.floatToRawIntBits(t[0]),
                    Float.floatToRawIntBits(got),
                    "lanes " + java.util.Arrays.toString(lanes));
        }
    }

    /**
     * The element-wise activations give each element the same value whether it falls in a vector or in a scalar
     * tail, so the result does not depend on how the backend splits the work among its threads.
     */
    @Test
    void activationsDoNotDependOnTheThreadCount() {
        float[] x = TestData.randn(new Random(5), 3 * 32768 + 5);
        for (int i = 0; i < x.length; i += 7) {
            x[i] *= 12f; // reach the saturated ends of exp and tanh too
        }
        try (CpuBackend one = new CpuBackend(1);
                CpuBackend three = new CpuBackend(3)) {
            Tensor a = one.upload(x, x.length), b = three.upload(x, x.length);
            assertArrayEquals(one.download(one.gelu(a)), three.download(three.gelu(b)), "gelu");
            assertArrayEquals(one.download(one.silu(a)), three.download(three.silu(b)), "silu");
            assertArrayEquals(one.download(one.quickGelu(a)), three.download(three.quickGelu(b)), "quickGelu");
        }
    }
}
