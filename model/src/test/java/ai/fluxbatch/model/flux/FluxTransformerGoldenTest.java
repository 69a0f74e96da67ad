package ai.fluxbatch.model.flux;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.fluxbatch.kernel.Backend;
import ai.fluxbatch.kernel.Tensor;
import ai.fluxbatch.model.Golden;
import ai.fluxbatch.model.TestBackends;
import ai.fluxbatch.model.safetensors.SafetensorsFile;
import ai.fluxbatch.model.safetensors.TensorSource;
import ai.fluxbatch.model.snapshot.FluxSnapshot;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * The transformer against the reference implementation's outputs and every intermediate tap, on every backend; and
 * forward-1 of flux-tiny-dev with each of the CPU backend's dense-product paths forced.
 */
class FluxTransformerGoldenTest {

    static List<Arguments> cases() {
        List<Arguments> cases = new ArrayList<>(TestBackends.cases(
                TestBackends.names(),
                List.of("flux-tiny-dev", "flux-tiny-schnell", "flux-tiny-dev-diffusers", "flux-tiny-schnell-diffusers"),
                List.of("forward-1", "forward-2")));
        cases.addAll(TestBackends.cases(TestBackends.DENSE_PATHS, List.of("flux-tiny-dev"), List.of("forward-1")));
        return cases;
    }

    @ParameterizedTest(name = "{0} {1} {2}")
    @MethodSource("cases")
    void matchesReference(String backendName, String model, String caseName) {
        double tolerance = TestBackends.tolerance(backendName);
        try (Backend backend = TestBackends.open(backendName);
                TensorSource golden = SafetensorsFile.open(Golden.casePath(model, caseName + ".safetensors"))) {
            FluxTransformer transformer = FluxTransformers.load(FluxSnapshot.open(Golden.path(model)), backend);
            FluxInputs inputs = FluxInputsReader.read(golden, transformer.config());
            Map<String, float[]> taps = new HashMap<>();
            Map<String, int[]> tapShapes = new HashMap<>();
            Tensor out = transformer.forward(inputs, (name, t) -> {
                taps.put(name, backend.download(t));
                tapShapes.put(name, t.shape());
            });

            assertArrayEquals(golden.info("out").intShape(), out.shape());
            double err = Golden.relL2(backend.download(out), golden.floats("out"));
            System.out.printf("%s %s/%s out relative L2 %.3g%n", backendName, model, caseName, err);
            assertTrue(err < tolerance, backendName + " " + model + "/" + caseName + " out: relative L2 " + err);

            int checked = 0;
            for (String name : golden.names()) {
                if (!name.startsWith("tap.")) {
                    continue;
                }
                float[] tap = taps.get(name);
                assertTrue(tap != null, "no tap " + name + " (have " + taps.keySet() + ")");
                assertEquals(Arrays.toString(golden.info(name).intShape()), Arrays.toString(tapShapes.get(name)), name);
                double tapErr = Golden.relL2(tap, golden.floats(name));
                assertTrue(
                        tapErr < tolerance,
                        backendName + " " + model + "/" + caseName + " " + name + ": relative L2 " + tapErr);
                checked++;
            }
            if (caseName.equals("forward-1")) {
                int expectedTaps = 3
                        + 2 * transformer.config().depth()
                        + transformer.config().depthSingle();
                assertEquals(expectedTaps, checked, "taps compared");
            }
        }
    }
}
