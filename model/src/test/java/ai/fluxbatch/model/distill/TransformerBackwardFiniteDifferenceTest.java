package ai.fluxbatch.model.distill;

import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.fluxbatch.kernel.cpu.CpuBackend;
import ai.fluxbatch.model.Golden;
import ai.fluxbatch.model.flux.FluxInputs;
import ai.fluxbatch.model.flux.FluxInputsReader;
import ai.fluxbatch.model.flux.FluxTransformer;
import ai.fluxbatch.model.flux.FluxTransformers;
import ai.fluxbatch.model.flux.TernaryLinear;
import ai.fluxbatch.model.quant.QuantizedSnapshotWriter;
import ai.fluxbatch.model.safetensors.SafetensorsFile;
import ai.fluxbatch.model.safetensors.TensorSource;
import ai.fluxbatch.model.snapshot.FluxSnapshot;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The whole transformer backward against central differences of the loss: a few scale and bias channels of layers
 * in every kind of position (first and last double block, both streams, single blocks, modulation), nudged one at a
 * time on the CPU backend. Independent of the golden gradients: it checks the chain of backward ops as composed.
 */
class TransformerBackwardFiniteDifferenceTest {
    @TempDir
    Path tmp;

    @Test
    void scaleAndBiasGradientsMatchCentralDifferences() throws Exception {
        Path q = tmp.resolve("q");
        QuantizedSnapshotWriter.write(FluxSnapshot.open(Golden.path("flux-tiny-dev")), q, false, (g, d, t, s) -> {});
        try (CpuBackend backend = new CpuBackend();
                TensorSource forward =
                        SafetensorsFile.open(Golden.path("cases", "flux-tiny-dev", "forward-1.safetensors"))) {
            FluxTransformer teacher = FluxTransformers.load(FluxSnapshot.open(Golden.path("flux-tiny-dev")), backend);
            FluxTransformer student = FluxTransformers.load(FluxSnapshot.open(q), backend);
            FluxInputs in = FluxInputsReader.read(forward, teacher.config());
            float[] target = DistillationLoss.target(backend, teacher, in);
            DistillationLoss.Result r = DistillationLoss.compute(backend, student, in, target);
            TrainableParameters p = TeacherStudent.initialParameters(FluxSnapshot.open(q), student);
            List<String> layers = List.of(
                    "double_blocks.0.img_attn.qkv",
                    "double_blocks.0.txt_mlp.0",
                    "double_blocks.1.img_mod.lin",
                    "double_blocks.1.txt_attn.proj",
                    "single_blocks.0.linear1",
                    "single_blocks.1.linear2",
                    "single_blocks.1.modulation.lin");
            int checked = 0;
            for (String layer : layers) {
                float[] scale = p.layer(layer).scale(), bias = p.layer(layer).bias();
                for (int c : new int[] {0, scale.length / 2 + 1, scale.length - 1}) {
                    double hs = 1e-2 * Math.abs(scale[c]);
                    double fdScale = (loss(backend, student, p, layer, c, hs, 0, in, target)
                                    - loss(backend, student, p, layer, c, -hs, 0, in, target))
                            / (2 * hs);
                    double hb = 1e-2;
                    double fdBias = (loss(backend, student, p, layer, c, 0, hb, in, target)
                                    - loss(backend, student, p, layer, c, 0, -hb, in, target))
                            / (2 * hb);
                    check(layer + ".weight_scale[" + c + "]", r.scale().get(layer)[c], fdScale, r);
                    check(layer + ".bias[" + c + "]", r.bias().get(layer)[c], fdBias, r);
                    checked++;
                }
            }
            assertTrue(checked == 3 * layers.size());
        }
    }

    /** Differences agree to 2 % of the value, or to an absolute floor set by the float32 loss's rounding. */
    private static void check(String what, double analytic, double fd, DistillationLoss.Result r) {
        double floor = 2e-5;
        System.out.printf("%s: backward %.6g, central difference %.6g%n", what, analytic, fd);
        assertTrue(
                Math.abs(analytic - fd) <= 0.02 * Math.abs(fd) + floor, what + ": backward " + analytic + " vs " + fd);
    }

    private static double loss(
            CpuBackend backend,
            FluxTransformer student,
            TrainableParameters p,
            String layer,
            int channel,
            double dScale,
            double dBias,
            FluxInputs in,
            float[] target) {
        float[] scale = p.layer(layer).scale().clone(),
                bias = p.layer(layer).bias().clone();
        scale[channel] += (float) dScale;
        bias[channel] += (float) dBias;
        FluxTransformer nudged = student.withBlockLinears((name, linear) -> name.equals(layer)
                ? new TernaryLinear(
                        backend.withTernaryScale(((TernaryLinear) linear).weight(), scale),
                        backend.upload(bias, bias.length))
                : linear);
        float[] out = DistillationLoss.target(backend, nudged, in);
        double sum = 0;
        for (int i = 0; i < out.length; i++) {
            double d = (double) out[i] - target[i];
            sum += d * d;
        }
        return sum / out.length;
    }
}
