package ai.fluxbatch.model.eval;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import org.junit.jupiter.api.Test;

class PixelErrorTest {
    @Test
    void psnrOverAllPixelsAndPerImage() {
        PixelError e = new PixelError();
        // image 0 identical, image 1 off by 5 in every value: MSE 25 there, 12.5 over both
        e.add(new byte[] {10, 20, 30, 45, 55, 65}, new byte[] {10, 20, 30, 40, 50, 60}, 2);
        assertEquals(10 * Math.log10(255.0 * 255 / 12.5), e.psnr(), 1e-12);
        assertArrayEquals(
                new double[] {Double.POSITIVE_INFINITY, 10 * Math.log10(255.0 * 255 / 25)}, e.imagePsnrs(), 1e-12);
        assertEquals(Double.POSITIVE_INFINITY, e.meanImagePsnr());
    }

    @Test
    void bytesAreUnsigned() {
        PixelError e = new PixelError();
        e.add(new byte[] {(byte) 255}, new byte[] {0}, 1);
        assertEquals(0.0, e.psnr(), 1e-12);
    }

    @Test
    void relativeErrorSumsBeforeTheRatio() {
        RelativeError r = new RelativeError();
        r.add(new float[] {1, 0}, new float[] {0, 0});
        r.add(new float[] {3}, new float[] {4});
        assertEquals(Math.sqrt(1 + 1) / Math.sqrt(16), r.value(), 1e-15);
        assertEquals(0.0, new RelativeError().value());
    }
}
