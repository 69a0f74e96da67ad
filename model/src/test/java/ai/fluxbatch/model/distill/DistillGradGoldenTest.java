package ai.fluxbatch.model.distill;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.fluxbatch.kernel.Backend;
import ai.fluxbatch.model.Golden;
import ai.fluxbatch.model.TestBackends;
import ai.fluxbatch.model.flux.FluxInputs;
import ai.fluxbatch.model.flux.FluxInputsReader;
import ai.fluxbatch.model.flux.FluxTransformer;
import ai.fluxbatch.model.flux.FluxTransformers;
import ai.fluxbatch.model.quant.QuantizeProgress;
import ai.fluxbatch.model.quant.QuantizedSnapshotWriter;
import ai.fluxbatch.model.safetensors.SafetensorsFile;
import ai.fluxbatch.model.safetensors.TensorSource;
import ai.fluxbatch.model.snapshot.FluxSnapshot;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * Self-distillation gradients against the reference's autograd in float64: the absmean student of each tiny model
 * against its full-precision teacher on the inputs of forward-1 / forward-2; the loss and every block linear layer's
 * scale and bias gradient within 1e-4 relative L2 (golden README); case 1 of flux-tiny-dev also with each of the CPU
 * backend's dense-product paths forced.
 */
class DistillGradGoldenTest {
    private static final QuantizeProgress QUIET = (g, d, t, s) -> {};

    @TempDir
    static Path tmp;

    static List<Arguments> cases() {
        List<Arguments> cases = new ArrayList<>(TestBackends.cases(
                TestBackends.names(), List.of("flux-tiny-dev", "flux-tiny-schnell"), List.of("1", "2")));
        cases.addAll(TestBackends.cases(TestBackends.DENSE_PATHS, List.of("flux-tiny-dev"), List.of("1")));
        return cases;
    }

    private static synchronized Path student(String model) {
        Path out = tmp.resolve(model + "-absmean");
        if (!Files.exists(out)) {
            QuantizedSnapshotWriter.write(FluxSnapshot.open(Golden.path(model)), out, false, QUIET);
        }
        return out;
    }

    @ParameterizedTest(name = "{0} {1} distill-grad-{2}")
    @MethodSource("cases")
    void matchesReference(String backendName, String model, String index) {
        double tolerance = TestBackends.tolerance(backendName);
        try (Backend backend = TestBackends.open(backendName);
                TensorSource golden =
                        SafetensorsFile.open(Golden.path("cases", model, "distill-grad-" + index + ".safetensors"));
                TensorSource forward =
                        SafetensorsFile.open(Golden.path("cases", model, "forward-" + index + ".safetensors"))) {
            FluxTransformer teacher = FluxTransformers.load(FluxSnapshot.open(Golden.path(model)), backend);
            FluxTransformer student = FluxTransformers.load(FluxSnapshot.open(student(model)), backend);
            FluxInputs inputs = FluxInputsReader.read(forward, teacher.config());
            DistillationLoss.Result r = DistillationLoss.compute(
                    backend, student, inputs, DistillationLoss.target(backend, teacher, inputs));

            double expectedLoss = golden.floats("loss")[0];
            double lossErr = Math.abs(r.loss() - expectedLoss) / Math.abs(expectedLoss);
            System.out.printf(
                    "%s %s distill-grad-%s loss %.9g (reference %.9g, relative %.2g)%n",
                    backendName, model, index, r.loss(), expectedLoss, lossErr);
            assertTrue(lossErr < tolerance, "loss " + r.loss() + " vs " + expectedLoss);

            int layers = 0;
            double worst = 0;
            for (String name : golden.names()) {
                if (!name.endsWith(".weight_scale.grad")) {
                    continue;
                }
                String layer = name.substring(0, name.length() - ".weight_scale.grad".length());
                assertTrue(
                        r.scale().containsKey(layer),
                        "no gradient for " + layer + " (have " + r.scale().keySet());
                double scaleErr = Golden.relL2(r.scale().get(layer), golden.floats(name));
                double biasErr = Golden.relL2(r.bias().get(layer), golden.floats(layer + ".bias.grad"));
                worst = Math.max(worst, Math.max(scaleErr, biasErr));
                assertTrue(scaleErr < tolerance, layer + ".weight_scale.grad: relative L2 " + scaleErr);
                assertTrue(biasErr < tolerance, layer + ".bias.grad: relative L2 " + biasErr);
                layers++;
            }
            System.out.printf(
                    "%s %s distill-grad-%s: %d layers, worst relative L2 %.3g%n",
                    backendName, model, index, layers, worst);
            assertEquals(Integer.parseInt(golden.metadata().get("layers")), layers, "layers compared");
            assertEquals(layers, r.scale().size(), "ternary layers with gradients");
        }
    }
}
