package ai.fluxbatch.model.distill;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.LinkedHashMap;
import java.util.Map;
import org.junit.jupiter.api.Test;

/** Adam with bias correction on scales and biases, and its state across a checkpoint. */
class AdamTest {
    private static TrainableParameters params() {
        Map<String, LayerParameters> m = new LinkedHashMap<>();
        m.put("double_blocks.0.img_attn.qkv", new LayerParameters(new float[] {1f, 2f, -0.5f}, new float[] {0f, 0.1f, 3f
        }));
        m.put("single_blocks.0.linear2", new LayerParameters(new float[] {0.25f}, new float[] {-1f}));
        return new TrainableParameters(m);
    }

    /** Gradient sums over {@code samples} samples whose mean is {@code mean} for every value. */
    private static GradientSums sums(TrainableParameters p, double mean, long samples) {
        Map<String, double[]> s = new LinkedHashMap<>(), b = new LinkedHashMap<>();
        p.layers().forEach((k, v) -> {
            double[] g = new double[v.channels()];
            java.util.Arrays.fill(g, mean * samples);
            s.put(k, g);
            b.put(k, g.clone());
        });
        return new GradientSums(s, b, 1.0 * samples, samples);
    }

    @Test
    void aConstantGradientMovesEachValueByTheLearningRatePerStep() {
        // with bias correction, m_hat = g and v_hat = g^2 under a constant g: each step moves lr * g / (|g| + eps)
        double lr = 1e-3;
        Adam adam = new Adam(lr, Trainable.ALL);
        TrainableParameters p0 = params(), p = p0;
        for (int i = 0; i < 3; i++) {
            p = adam.step(p, sums(p, 0.5, 4));
        }
        assertEquals(3, adam.state().steps());
        for (String layer : p0.layers().keySet()) {
            for (int c = 0; c < p0.layer(layer).channels(); c++) {
                assertEquals(p0.layer(layer).scale()[c] - 3 * lr, p.layer(layer).scale()[c], 1e-6, layer);
                assertEquals(p0.layer(layer).bias()[c] - 3 * lr, p.layer(layer).bias()[c], 1e-6, layer);
            }
        }
        // the first step of a negative gradient moves up by lr: g / (|g| + eps) = -1 + 2e-8
        TrainableParameters up = new Adam(lr, Trainable.ALL).step(p0, sums(p0, -2.0, 1));
        assertEquals(2.001, up.layer("double_blocks.0.img_attn.qkv").scale()[1], 5e-7);
    }

    @Test
    void leavesWhatItDoesNotTrainExactlyAsItWas() {
        TrainableParameters p0 = params();
        TrainableParameters scalesOnly = new Adam(2e-3, new Trainable(true, false)).step(p0, sums(p0, 1, 2));
        TrainableParameters biasesOnly = new Adam(2e-3, new Trainable(false, true)).step(p0, sums(p0, 1, 2));
        for (String layer : p0.layers().keySet()) {
            assertArrayEquals(p0.layer(layer).bias(), scalesOnly.layer(layer).bias(), layer);
            assertArrayEquals(p0.layer(layer).scale(), biasesOnly.layer(layer).scale(), layer);
            assertTrue(p0.layer(layer).scale()[0] != scalesOnly.layer(layer).scale()[0], layer);
            assertTrue(p0.layer(layer).bias()[0] != biasesOnly.layer(layer).bias()[0], layer);
        }
        assertArrayEquals(
                new float[] {1f, 2f, -0.5f},
                p0.layer("double_blocks.0.img_attn.qkv").scale(),
                "unchanged");
    }

    @Test
    void continuingFromItsStateRepeatsAnUninterruptedRunBitForBit() {
        double[] means = {0.3, -1.2, 0.01, 5, -0.7, 0.2};
        Adam straight = new Adam(2e-3, Trainable.ALL);
        TrainableParameters a = params();
        for (double g : means) {
            a = straight.step(a, sums(a, g, 3));
        }
        Adam first = new Adam(2e-3, Trainable.ALL);
        TrainableParameters b = params();
        for (int i = 0; i < 4; i++) {
            b = first.step(b, sums(b, means[i], 3));
        }
        Adam second = new Adam(2e-3, Trainable.ALL, first.state());
        for (int i = 4; i < means.length; i++) {
            b = second.step(b, sums(b, means[i], 3));
        }
        for (String layer : a.layers().keySet()) {
            assertArrayEquals(a.layer(layer).scale(), b.layer(layer).scale(), layer);
            assertArrayEquals(a.layer(layer).bias(), b.layer(layer).bias(), layer);
        }
    }

    @Test
    void refusesMissingGradientsAndBadLearningRates() {
        TrainableParameters p = params();
        GradientSums partial = new GradientSums(
                Map.of("double_blocks.0.img_attn.qkv", new double[3]),
                Map.of("double_blocks.0.img_attn.qkv", new double[3]),
                0,
                1);
        IllegalArgumentException e =
                assertThrows(IllegalArgumentException.class, () -> new Adam(1e-3, Trainable.ALL).step(p, partial));
        assertTrue(e.getMessage().contains("single_blocks.0.linear2"), e.getMessage());
        assertThrows(IllegalArgumentException.class, () -> new Adam(0, Trainable.ALL));
        assertThrows(IllegalArgumentException.class, () -> new Adam(Double.NaN, Trainable.ALL));
        assertThrows(IllegalArgumentException.class, () -> new Adam(Double.POSITIVE_INFINITY, Trainable.ALL));
    }

    @Test
    void trainableListsParse() {
        assertEquals(Trainable.ALL, Trainable.parse("scales,biases"));
        assertEquals(Trainable.ALL, Trainable.parse("biases, scales"));
        assertEquals(new Trainable(true, false), Trainable.parse("scales"));
        assertEquals("biases", Trainable.parse("biases").toString());
        for (String bad : new String[] {"", "weights", "scales,scales", "scales,", "scales,weights"}) {
            assertThrows(IllegalArgumentException.class, () -> Trainable.parse(bad), bad);
        }
    }
}
