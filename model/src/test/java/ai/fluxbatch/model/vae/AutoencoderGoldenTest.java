package ai.fluxbatch.model.vae;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.fluxbatch.kernel.Backend;
import ai.fluxbatch.kernel.Tensor;
import ai.fluxbatch.kernel.cpu.CpuBackend;
import ai.fluxbatch.model.Golden;
import ai.fluxbatch.model.TestBackends;
import ai.fluxbatch.model.safetensors.SafetensorsFile;
import java.nio.ByteBuffer;
import java.util.Random;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * The autoencoder of flux-tiny-dev against the reference outputs in cases/flux-tiny-dev/vae.safetensors; decode and
 * encode also with each of the CPU backend's dense-product paths forced (its convolutions' im2col products).
 */
class AutoencoderGoldenTest {
    private static CpuBackend cpu;
    private static Autoencoder tiny;
    private static SafetensorsFile golden;

    @BeforeAll
    static void load() {
        cpu = new CpuBackend();
        tiny = Autoencoder.load(Golden.path("flux-tiny-dev"), cpu);
        golden = SafetensorsFile.open(Golden.path("cases", "flux-tiny-dev", "vae.safetensors"));
    }

    @AfterAll
    static void close() {
        golden.close();
        cpu.close();
    }

    @Test
    void configComesFromTheTensorsAndConfigJson() {
        AutoencoderConfig c = tiny.config();
        assertArrayEquals(new int[] {32, 32, 64, 64}, c.blockOutChannels());
        assertEquals(32, c.baseChannels());
        assertEquals(1, c.resBlocks());
        assertEquals(16, c.latentChannels());
        assertEquals(3, c.inChannels());
        assertEquals(3, c.outChannels());
        assertEquals(32, c.groups());
        assertEquals(8, c.downscale());
        assertEquals(0.3611, c.scalingFactor(), 1e-12);
        assertEquals(0.1159, c.shiftFactor(), 1e-12);
    }

    @Test
    void decodeMatchesReference() {
        Tensor z = cpu.upload(golden.floats("z"), golden.info("z").intShape());
        Tensor image = tiny.decode(z);
        assertArrayEquals(golden.info("image").intShape(), image.shape());
        float[] actual = cpu.download(image);
        double err = Golden.relL2(actual, golden.floats("image"));
        System.out.printf("vae decode: rel L2 %.3e%n", err);
        assertTrue(err < 1e-4, "decode rel L2 " + err);

        int[] rgbShape = golden.info("rgb_u8").intShape();
        assertArrayEquals(new int[] {2, 32, 48, 3}, rgbShape);
        byte[] rgb = ImageQuantizer.toRgbU8(cpu, image);
        int n = rgb.length;
        ByteBuffer expected = golden.bytes("rgb_u8", 0, n);
        int equal = 0, withinOne = 0, worst = 0;
        for (int i = 0; i < n; i++) {
            int d = Math.abs((rgb[i] & 0xff) - (expected.get(i) & 0xff));
            equal += d == 0 ? 1 : 0;
            withinOne += d <= 1 ? 1 : 0;
            worst = Math.max(worst, d);
        }
        System.out.printf(
                "vae rgb_u8: %d of %d equal, %d within 1 (%.4f%%), max difference %d%n",
                equal, n, withinOne, 100.0 * withinOne / n, worst);
        assertTrue(withinOne >= 0.99 * n, withinOne + " of " + n + " within 1");
        assertTrue(worst <= 3, "max difference " + worst);
    }

    @ParameterizedTest(name = "{0}")
    @ValueSource(strings = {TestBackends.CPU_VECTOR_API, TestBackends.CPU_OPENBLAS})
    void decodeAndEncodeMatchTheReferenceOnEachDenseProductPath(String backendName) {
        try (Backend backend = TestBackends.open(backendName)) {
            Autoencoder vae = Autoencoder.load(Golden.path("flux-tiny-dev"), backend);
            Tensor image = vae.decode(
                    backend.upload(golden.floats("z"), golden.info("z").intShape()));
            double decodeErr = Golden.relL2(backend.download(image), golden.floats("image"));
            Tensor latent = vae.encode(backend.upload(
                    golden.floats("encode_in"), golden.info("encode_in").intShape()));
            double encodeErr = Golden.relL2(backend.download(latent), golden.floats("encode_mean"));
            System.out.printf("%s vae decode rel L2 %.3e, encode %.3e%n", backendName, decodeErr, encodeErr);
            assertTrue(decodeErr < 1e-4, backendName + " decode rel L2 " + decodeErr);
            assertTrue(encodeErr < 1e-4, backendName + " encode rel L2 " + encodeErr);
        }
    }

    /** The same weights in the diffusers layout (vae/diffusion_pytorch_model.safetensors, diffusers' names). */
    @Test
    void diffusersLayoutDecodesAndEncodesAsTheReference() {
        Autoencoder vae = Autoencoder.load(Golden.path("flux-tiny-dev-diffusers"), cpu);
        assertArrayEquals(tiny.config().blockOutChannels(), vae.config().blockOutChannels());
        Tensor image =
                vae.decode(cpu.upload(golden.floats("z"), golden.info("z").intShape()));
        double decodeErr = Golden.relL2(cpu.download(image), golden.floats("image"));
        Tensor latent = vae.encode(
                cpu.upload(golden.floats("encode_in"), golden.info("encode_in").intShape()));
        double encodeErr = Golden.relL2(cpu.download(latent), golden.floats("encode_mean"));
        System.out.printf("diffusers layout: vae decode rel L2 %.3e, encode %.3e%n", decodeErr, encodeErr);
        assertTrue(decodeErr < 1e-4, "decode rel L2 " + decodeErr);
        assertTrue(encodeErr < 1e-4, "encode rel L2 " + encodeErr);
        byte[] rgb = ImageQuantizer.toRgbU8(cpu, image);
        ByteBuffer expected = golden.bytes("rgb_u8", 0, rgb.length);
        int withinOne = 0, worst = 0;
        for (int i = 0; i < rgb.length; i++) {
            int d = Math.abs((rgb[i] & 0xff) - (expected.get(i) & 0xff));
            withinOne += d <= 1 ? 1 : 0;
            worst = Math.max(worst, d);
        }
        assertTrue(withinOne >= 0.99 * rgb.length, withinOne + " of " + rgb.length + " within 1");
        assertTrue(worst <= 3, "max difference " + worst);
    }

    @Test
    void quantizingTheReferenceImageGivesTheReferenceBytes() {
        float[] image = golden.floats("image");
        byte[] rgb = ImageQuantizer.toRgbU8(image, 2, 32, 48);
        ByteBuffer expected = golden.bytes("rgb_u8", 0, rgb.length);
        int equal = 0, worst = 0;
        for (int i = 0; i < rgb.length; i++) {
            int d = Math.abs((rgb[i] & 0xff) - (expected.get(i) & 0xff));
            equal += d == 0 ? 1 : 0;
            worst = Math.max(worst, d);
        }
        System.out.printf(
                "reference image quantized: %d of %d bytes equal, max difference %d%n", equal, rgb.length, worst);
        assertTrue(worst <= 1, "max difference " + worst);
        assertTrue(equal >= 0.999 * rgb.length, equal + " of " + rgb.length + " equal");
    }

    @Test
    void encodeMatchesReference() {
        Tensor in =
                cpu.upload(golden.floats("encode_in"), golden.info("encode_in").intShape());
        Tensor latent = tiny.encode(in);
        assertArrayEquals(golden.info("encode_mean").intShape(), latent.shape());
        double err = Golden.relL2(cpu.download(latent), golden.floats("encode_mean"));
        System.out.printf("vae encode: rel L2 %.3e%n", err);
        assertTrue(err < 1e-4, "encode rel L2 " + err);
    }

    @Test
    void shapesModelLoadsWithItsOwnScalingAndDecodes() {
        Autoencoder shapes = Autoencoder.load(Golden.path("flux-shapes-dev"), cpu);
        assertEquals(1.4047, shapes.config().scalingFactor(), 1e-12);
        assertEquals(0.0274, shapes.config().shiftFactor(), 1e-12);
        Random random = new Random(3);
        float[] z = new float[16 * 8 * 8];
        for (int i = 0; i < z.length; i++) {
            z[i] = (float) random.nextGaussian();
        }
        Tensor image = shapes.decode(cpu.upload(z, 1, 16, 8, 8));
        assertArrayEquals(new int[] {1, 3, 64, 64}, image.shape());
        float[] pixels = cpu.download(image);
        double sumSq = 0;
        for (float v : pixels) {
            assertTrue(Float.isFinite(v), "non-finite pixel " + v);
            sumSq += v * v;
        }
        assertTrue(sumSq > 0, "all-zero image");
        Tensor latent = shapes.encode(image);
        assertArrayEquals(new int[] {1, 16, 8, 8}, latent.shape());
        for (float v : cpu.download(latent)) {
            assertTrue(Float.isFinite(v), "non-finite latent " + v);
        }
    }
}
