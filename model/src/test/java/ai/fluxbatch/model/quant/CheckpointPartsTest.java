package ai.fluxbatch.model.quant;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.fluxbatch.model.Golden;
import ai.fluxbatch.model.ModelException;
import ai.fluxbatch.model.calib.CalibrationFile;
import ai.fluxbatch.model.calib.CalibrationStats;
import ai.fluxbatch.model.calib.LayerStatsFixtures;
import ai.fluxbatch.model.safetensors.SafetensorsFile;
import ai.fluxbatch.model.safetensors.TensorSource;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.Map;
import java.util.Random;
import java.util.Set;
import java.util.TreeMap;
import java.util.TreeSet;
import java.util.function.Predicate;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@link CheckpointQuantizer#write(Path, Predicate)}: parts written separately, each with the statistics of its own
 * layers only, hold the tensors of the one-file checkpoint with the same bytes and its metadata; and the driver-side
 * {@link CheckpointQuantizer#check} from statistics summaries refuses what writing refuses.
 */
class CheckpointPartsTest {
    private static final QuantizeProgress QUIET = (g, d, t, s) -> {};
    private static final Path SOURCE = Golden.path("flux-tiny-dev", "flux1-dev.safetensors");

    @TempDir
    Path tmp;

    /** Gram statistics of random input rows for every block layer of the source. */
    private static CalibrationStats statistics(TensorSource source) {
        CalibrationStats stats = new CalibrationStats();
        Random random = new Random(15);
        for (String name : source.names()) {
            long[] shape = source.info(name).shape();
            if (TernaryFormat.isQuantized(name, shape)) {
                int in = Math.toIntExact(shape[1]), rows = 24;
                float[] x = new float[rows * in];
                for (int i = 0; i < x.length; i++) {
                    x[i] = (float) random.nextGaussian() + (i % in == 0 ? 1 : 0);
                }
                stats.put(name.substring(0, name.length() - ".weight".length()), LayerStatsFixtures.of(x, rows, in));
            }
        }
        return stats;
    }

    private static QuantizeRecipe gptq(CalibrationStats stats) {
        return new QuantizeRecipe(QuantizeMethods.byName("gptq"), stats, "s.safetensors", "0f", Map.of("model", "x"));
    }

    @Test
    void partsWrittenApartHoldTheWholeCheckpointsBytesAndMetadata() {
        Path whole = tmp.resolve("whole.safetensors");
        Map<String, Path> parts = new TreeMap<>();
        try (TensorSource source = SafetensorsFile.open(SOURCE)) {
            CalibrationStats all = statistics(source);
            new CheckpointQuantizer(source, SOURCE, "ab", QUIET, gptq(all)).write(whole);
            Set<String> groups = new TreeSet<>();
            source.names().forEach(n -> groups.add(CheckpointQuantizer.groupOf(n)));
            assertTrue(groups.size() > 2, "blocks and other: " + groups);
            for (String group : groups) {
                Predicate<String> part = n -> CheckpointQuantizer.groupOf(n).equals(group);
                CalibrationStats mine = new CalibrationStats();
                all.layers().forEach((layer, s) -> {
                    if (part.test(layer + ".weight")) {
                        mine.put(layer, s);
                    }
                });
                Path file = tmp.resolve(group + ".safetensors");
                new CheckpointQuantizer(source, SOURCE, "ab", QUIET, gptq(mine)).write(file, part);
                parts.put(group, file);
            }
        }
        try (TensorSource w = SafetensorsFile.open(whole)) {
            Map<String, String> seen = new HashMap<>();
            for (Map.Entry<String, Path> e : parts.entrySet()) {
                try (TensorSource p = SafetensorsFile.open(e.getValue())) {
                    assertEquals(w.metadata(), p.metadata(), e.getKey());
                    for (String name : p.names()) {
                        assertEquals(null, seen.put(name, e.getKey()), name + " in two parts");
                        assertEquals(w.info(name).dtype(), p.info(name).dtype(), name);
                        assertEquals(
                                java.util.Arrays.toString(w.info(name).shape()),
                                java.util.Arrays.toString(p.info(name).shape()),
                                name);
                        int n = Math.toIntExact(w.info(name).byteLength());
                        assertEquals(w.bytes(name, 0, n), p.bytes(name, 0, n), name + ": other bytes");
                    }
                }
            }
            assertEquals(w.names(), new TreeSet<>(seen.keySet()));
        }
    }

    @Test
    void theDriversCheckFromSummariesRefusesWhatWritingRefuses() {
        try (TensorSource source = SafetensorsFile.open(SOURCE)) {
            CalibrationStats all = statistics(source);
            Map<String, CalibrationFile.LayerSummary> summaries = new TreeMap<>();
            all.layers().forEach((l, s) -> summaries.put(l, CalibrationFile.LayerSummary.of(s)));
            CheckpointQuantizer q = new CheckpointQuantizer(source, SOURCE, "ab", QUIET, gptq(new CalibrationStats()));
            q.check(summaries); // every layer there: nothing to say
            String layer = "single_blocks.0.linear1";
            CalibrationFile.LayerSummary s = summaries.remove(layer);
            ModelException missing = assertThrows(ModelException.class, () -> q.check(summaries));
            assertTrue(missing.getMessage().contains("have nothing for layer " + layer), missing.getMessage());
            summaries.put(layer, new CalibrationFile.LayerSummary(s.inFeatures(), s.tokens(), false));
            ModelException noGram = assertThrows(ModelException.class, () -> q.check(summaries));
            assertTrue(noGram.getMessage().contains("recalibrate with --gram"), noGram.getMessage());
            summaries.put(layer, new CalibrationFile.LayerSummary(s.inFeatures() + 1, s.tokens(), true));
            ModelException other = assertThrows(ModelException.class, () -> q.check(summaries));
            assertTrue(other.getMessage().contains("statistics from another model"), other.getMessage());
        }
    }

    @Test
    void aPartMustHoldALayersWeightAndBiasTogether() {
        try (TensorSource source = SafetensorsFile.open(SOURCE)) {
            String bias = "double_blocks.0.img_attn.qkv.bias";
            IllegalArgumentException e = assertThrows(
                    IllegalArgumentException.class,
                    () -> new CheckpointQuantizer(source, SOURCE, "ab", QUIET, gptq(statistics(source)))
                            .write(
                                    tmp.resolve("p.safetensors"),
                                    n -> n.startsWith("double_blocks.0.") && !n.equals(bias)));
            assertTrue(e.getMessage().contains(bias), e.getMessage());
        }
    }
}
