package ai.fluxbatch.kernel.cpu;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

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
            VectorMath.exp(FloatVector.fromArray(FloatVector.SPECIES_PREFERRED, x, 0)).intoArray(y, 0);
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
        VectorMath.exp(FloatVector.fromArray(FloatVector.SPECIES_PREFERRED, x, 0)).intoArray(y, 0);
        assertTrue(y[0] >= 0 && y[0] < 1e-37f, "exp(-200) = " + y[0]);
        VectorMath.tanh(FloatVector.fromArray(FloatVector.SPECIES_PREFERRED, x, 0)).intoArray(y, 0);
        assertEquals(-1f, y[0]);
        java.util.Arrays.fill(x, 200f);
        VectorMath.tanh(FloatVector.fromArray(FloatVector.SPECIES_PREFERRED, x, 0)).intoArray(y, 0);
        assertEquals(1f, y[0]);
    }
}
