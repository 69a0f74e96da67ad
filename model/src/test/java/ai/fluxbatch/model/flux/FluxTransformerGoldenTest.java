package ai.fluxbatch.model.flux;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.fluxbatch.kernel.Tensor;
import ai.fluxbatch.kernel.cpu.CpuBackend;
import ai.fluxbatch.model.Golden;
import ai.fluxbatch.model.safetensors.SafetensorsFile;
import ai.fluxbatch.model.safetensors.TensorSource;
import ai.fluxbatch.model.snapshot.FluxSnapshot;
import java.util.Arrays;
import java.util.HashMap;
import java.util.Map;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/** The transformer against the reference implementation's outputs and every intermediate tap. */
class FluxTransformerGoldenTest {
    private static final double TOLERANCE = 1e-4;
    private static final CpuBackend CPU = new CpuBackend();

    @AfterAll
    static void close() {
        CPU.close();
    }

    @ParameterizedTest(name = "{0} {1}")
    @CsvSource({"flux-tiny-dev,forward-1", "flux-tiny-dev,forward-2",
                "flux-tiny-schnell,forward-1", "flux-tiny-schnell,forward-2"})
    void matchesReference(String model, String caseName) {
        FluxTransformer transformer = FluxTransformers.load(FluxSnapshot.open(Golden.path(model)), CPU);
        try (TensorSource golden = SafetensorsFile.open(Golden.path("cases", model, caseName + ".safetensors"))) {
            FluxInputs inputs = FluxInputsReader.read(golden, transformer.config());
            Map<String, Tensor> taps = new HashMap<>();
            Tensor out = transformer.forward(inputs, taps::put);

            assertArrayEquals(golden.info("out").intShape(), out.shape());
            double err = Golden.relL2(CPU.download(out), golden.floats("out"));
            System.out.printf("%s/%s out relative L2 %.3g%n", model, caseName, err);
            assertTrue(err < TOLERANCE, model + "/" + caseName + " out: relative L2 " + err);

            int checked = 0;
            for (String name : golden.names()) {
                if (!name.startsWith("tap.")) {
                    continue;
                }
                Tensor tap = taps.get(name);
                assertTrue(tap != null, "no tap " + name + " (have " + taps.keySet() + ")");
                assertEquals(Arrays.toString(golden.info(name).intShape()), Arrays.toString(tap.shape()), name);
                double tapErr = Golden.relL2(CPU.download(tap), golden.floats(name));
                assertTrue(tapErr < TOLERANCE, model + "/" + caseName + " " + name + ": relative L2 " + tapErr);
                checked++;
            }
            if (caseName.equals("forward-1")) {
                int expectedTaps = 3 + 2 * transformer.config().depth() + transformer.config().depthSingle();
                assertEquals(expectedTaps, checked, "taps compared");
            }
        }
    }
}
