package ai.fluxbatch.model.calib;

import ai.fluxbatch.model.safetensors.FuzzCases;
import ai.fluxbatch.model.safetensors.SafetensorsFile;
import ai.fluxbatch.model.safetensors.SafetensorsMutator;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Map;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Corrupted calibration statistics files: each is refused with an error naming the file, or read back from exactly the
 * bytes its header points at (a flipped data byte or two same-sized tensors' swapped offsets are read as they are).
 */
class CalibrationFileFuzzTest {
    @TempDir
    Path dir;

    @Test
    void corruptedStatisticsAreRefusedOrReadExactly() throws IOException {
        CalibrationStats stats = new CalibrationStats();
        Random values = new Random(1);
        float[] x = new float[3 * 8];
        for (int i = 0; i < x.length; i++) {
            x[i] = (float) values.nextGaussian();
        }
        stats.layer("double_blocks.0.img_attn.qkv", 8, true).addRows(x, 3);
        stats.get("double_blocks.0.img_attn.qkv").addGram(new float[64]);
        stats.layer("single_blocks.0.linear2", 5, false).addRows(Arrays.copyOf(x, 10), 2);
        Path source = dir.resolve("stats");
        CalibrationFile.write(stats, Map.of("model", "tiny"), source);
        CalibrationStats expected = CalibrationFile.read(source).stats();
        SafetensorsMutator mutator = new SafetensorsMutator(Files.readAllBytes(source));

        Random r = FuzzCases.random();
        FuzzCases.Tally tally = new FuzzCases.Tally();
        Path file = dir.resolve("fuzzed");
        for (int i = 0; i < FuzzCases.cases(); i++) {
            FuzzCases.run(tally, "calibration statistics", mutator.mutate(r), file, (m, p) -> {
                CalibrationStats back = CalibrationFile.read(p).stats();
                try (SafetensorsFile in = SafetensorsFile.open(p)) {
                    FuzzCases.requireBytesAtOffsets(in, m.data());
                }
                return same(expected, back);
            });
        }
        tally.check("calibration fuzz");
    }

    private static boolean same(CalibrationStats a, CalibrationStats b) {
        if (!a.layers().keySet().equals(b.layers().keySet())) {
            return false;
        }
        for (String l : a.layers().keySet()) {
            LayerStats x = a.get(l);
            LayerStats y = b.get(l);
            if (x.tokens() != y.tokens()
                    || !Arrays.equals(x.sum(), y.sum())
                    || !Arrays.equals(x.sumSq(), y.sumSq())
                    || !Arrays.equals(x.absMax(), y.absMax())
                    || !Arrays.equals(x.gram(), y.gram())) {
                return false;
            }
        }
        return true;
    }
}
