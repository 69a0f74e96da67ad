package ai.fluxbatch.model.quant;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.fluxbatch.model.Golden;
import ai.fluxbatch.model.safetensors.SafetensorsFile;
import ai.fluxbatch.model.safetensors.TensorSource;
import ai.fluxbatch.model.snapshot.FluxSnapshot;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/** absmean codes, scales and packed bytes against the reference quantizer, on the layer its golden file names. */
class AbsmeanGoldenTest {
    @ParameterizedTest
    @ValueSource(
            strings = {"flux-tiny-dev", "flux-tiny-schnell", "flux-tiny-dev-diffusers", "flux-tiny-schnell-diffusers"})
    void codesScalesAndPackingMatch(String model) {
        try (TensorSource g = SafetensorsFile.open(Golden.casePath(model, "quant-absmean.safetensors"));
                TensorSource w = FluxSnapshot.open(Golden.path(model)).openTransformer()) {
            String layer = g.metadata().get("layer");
            long[] shape = w.info(layer).shape();
            int out = (int) shape[0], in = (int) shape[1];
            float[] weight = w.floats(layer);
            assertArrayEquals(g.floats("layer.weight"), weight, "the stored values as float");

            AbsmeanQuantizer.Result q = AbsmeanQuantizer.quantize(weight, out, in);
            long[] codes = g.longs("layer.codes");
            int codeMatches = 0;
            for (int i = 0; i < codes.length; i++) {
                codeMatches += codes[i] == q.codes()[i] ? 1 : 0;
            }
            float[] scale = g.floats("layer.scale");
            for (int o = 0; o < out; o++) {
                assertTrue(Math.abs(q.scale()[o] - scale[o]) <= 1e-6 * Math.abs(scale[o]), "scale " + o);
            }
            byte[] packed = TernaryPacking.pack(q.codes(), out, in);
            byte[] golden = new byte[packed.length];
            g.bytes("layer.packed", 0, golden.length).get(golden);
            int packedMatches = 0;
            for (int i = 0; i < packed.length; i++) {
                packedMatches += packed[i] == golden[i] ? 1 : 0;
            }
            System.out.printf(
                    "%s %s: codes %d/%d, packed %d/%d equal%n",
                    model, layer, codeMatches, codes.length, packedMatches, packed.length);
            assertTrue(codeMatches >= 0.9999 * codes.length, "codes equal: " + codeMatches + "/" + codes.length);
            assertTrue(packedMatches >= 0.9999 * packed.length, "packed equal: " + packedMatches + "/" + packed.length);
            assertArrayEquals(q.codes(), TernaryPacking.unpack(packed, out, in), "unpack inverts pack");
        }
    }
}
