package ai.fluxbatch.model.quant;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.util.Random;
import org.junit.jupiter.api.Test;

class CholeskyTest {
    @Test
    void factorTimesItsTransposeIsTheMatrix() {
        int n = 300; // above the size at which the loops go parallel
        Random r = new Random(4);
        double[] b = new double[n * n];
        for (int i = 0; i < b.length; i++) {
            b[i] = r.nextGaussian();
        }
        double[] a = new double[n * n];
        for (int i = 0; i < n; i++) {
            for (int j = 0; j < n; j++) {
                double v = i == j ? n : 0;
                for (int k = 0; k < n; k++) {
                    v += b[i * n + k] * b[j * n + k];
                }
                a[i * n + j] = v;
            }
        }
        double[] l = Cholesky.lower(a, n);
        for (int i = 0; i < n; i++) {
            for (int j = 0; j < n; j++) {
                double llt = 0;
                for (int k = 0; k < n; k++) {
                    llt += l[i * n + k] * l[j * n + k];
                }
                assertEquals(a[i * n + j], llt, 1e-9 * n, "L L^T at " + i + "," + j);
                if (j > i) {
                    assertEquals(0, l[i * n + j]);
                }
            }
        }
    }

    @Test
    void aMatrixThatIsNotPositiveDefiniteIsRefused() {
        assertThrows(ArithmeticException.class, () -> Cholesky.lower(new double[] {1, 2, 2, 1}, 2));
    }
}
