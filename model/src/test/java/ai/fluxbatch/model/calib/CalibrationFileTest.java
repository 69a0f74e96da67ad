package ai.fluxbatch.model.calib;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.fluxbatch.model.ModelException;
import ai.fluxbatch.model.safetensors.SafetensorsWriter;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Map;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class CalibrationFileTest {
    @TempDir
    Path tmp;

    @Test
    void writesAndReadsBackEveryStatisticAndTheMetadata() {
        CalibrationStats stats = new CalibrationStats();
        stats.layer("double_blocks.0.img_attn.qkv", 3, true).addRows(new float[] {1, -2, 3, 0.5f, 0, -1}, 2);
        stats.get("double_blocks.0.img_attn.qkv").addGram(new float[] {1, 2, 3, 4, 5, 6, 7, 8, 9});
        stats.layer("single_blocks.0.linear2", 2, false).addRows(new float[] {4, 5}, 1);
        Path f = tmp.resolve("stats.safetensors");
        CalibrationFile.write(stats, Map.of("model", "tiny", "steps", "4"), f);

        CalibrationFile.Contents back = CalibrationFile.read(f);
        assertEquals("tiny", back.metadata().get("model"));
        assertEquals("4", back.metadata().get("steps"));
        LayerStats qkv = back.stats().get("double_blocks.0.img_attn.qkv");
        assertEquals(2, qkv.tokens());
        assertArrayEquals(new double[] {1.5, -2, 2}, qkv.sum());
        assertArrayEquals(new double[] {1.25, 4, 10}, qkv.sumSq());
        assertArrayEquals(new float[] {1, 2, 3}, qkv.absMax());
        assertArrayEquals(new float[] {1, 2, 3, 4, 5, 6, 7, 8, 9}, qkv.gram());
        assertNull(back.stats().get("single_blocks.0.linear2").gram());
    }

    @Test
    void aFileNamedWithoutAnExtensionReadsBack() {
        // calibrate --output stats writes "stats"; quantize --calibration stats reads that same file
        CalibrationStats stats = new CalibrationStats();
        stats.layer("single_blocks.0.linear2", 2, false).addRows(new float[] {4, 5}, 1);
        Path f = tmp.resolve("stats");
        CalibrationFile.write(stats, Map.of(), f);
        assertArrayEquals(
                new float[] {4, 5},
                CalibrationFile.readAll(java.util.List.of(f))
                        .stats()
                        .get("single_blocks.0.linear2")
                        .absMax());
    }

    @Test
    void nonFiniteOrNegativeStatisticsAreRefused() {
        for (float bad : new float[] {Float.NaN, Float.POSITIVE_INFINITY, -1}) {
            CalibrationStats stats = new CalibrationStats();
            stats.layer("l", 2, false).addRows(new float[] {4, 5}, 1);
            stats.get("l").absMax()[1] = bad;
            Path f = tmp.resolve("stats-" + bad + ".safetensors");
            CalibrationFile.write(stats, Map.of(), f);
            ModelException e = assertThrows(ModelException.class, () -> CalibrationFile.read(f));
            assertTrue(
                    e.getMessage().contains(f + ": l.input_absmax holds " + (bad < 0 ? "-1.0" : bad)), e.getMessage());
        }
    }

    @Test
    void aTensorOfNoKnownLayerIsRefused() {
        // e.g. a renamed .input_gram would otherwise be dropped silently and gptq would run without it
        Path f = tmp.resolve("stats.safetensors");
        new SafetensorsWriter()
                .metadata(CalibrationFile.KEY_FORMAT, CalibrationFile.FORMAT)
                .metadata(CalibrationFile.KEY_VERSION, CalibrationFile.VERSION)
                .addI64("l.tokens", new long[] {1}, new long[] {1})
                .add(
                        "l.input_sum",
                        ai.fluxbatch.model.safetensors.DType.F64,
                        new long[] {1},
                        java.nio.ByteBuffer.allocate(8))
                .add(
                        "l.input_sum_sq",
                        ai.fluxbatch.model.safetensors.DType.F64,
                        new long[] {1},
                        java.nio.ByteBuffer.allocate(8))
                .addF32("l.input_absmax", new long[] {1}, new float[1])
                .addF32("l.input_grammar", new long[] {1, 1}, new float[1])
                .write(f);
        ModelException e = assertThrows(ModelException.class, () -> CalibrationFile.read(f));
        assertTrue(e.getMessage().contains(f + " holds an unexpected tensor 'l.input_grammar'"), e.getMessage());
    }

    @Test
    void aTruncatedFileIsAClearError() throws IOException {
        CalibrationStats stats = new CalibrationStats();
        stats.layer("double_blocks.0.img_mlp.0", 64, true).addRows(new float[64], 1);
        Path f = tmp.resolve("stats.safetensors");
        CalibrationFile.write(stats, Map.of(), f);
        byte[] all = Files.readAllBytes(f);
        Files.write(f, Arrays.copyOf(all, all.length - 1000));
        ModelException e = assertThrows(ModelException.class, () -> CalibrationFile.read(f));
        assertTrue(
                e.getMessage().contains(f.toString()) && e.getMessage().contains("calibration statistics"),
                e.getMessage());
    }

    @Test
    void aFileOfAnotherKindOrWithAMissingStatisticIsRefused() throws IOException {
        Path other = tmp.resolve("weights.safetensors");
        new SafetensorsWriter().addF32("x", new long[] {1}, new float[] {1}).write(other);
        ModelException e = assertThrows(ModelException.class, () -> CalibrationFile.read(other));
        assertTrue(e.getMessage().contains("not a calibration statistics file"), e.getMessage());

        Path partial = tmp.resolve("partial.safetensors");
        new SafetensorsWriter()
                .metadata(CalibrationFile.KEY_FORMAT, CalibrationFile.FORMAT)
                .metadata(CalibrationFile.KEY_VERSION, CalibrationFile.VERSION)
                .addI64("l.tokens", new long[] {1}, new long[] {3})
                .addF32("l.input_absmax", new long[] {2}, new float[] {1, 1})
                .write(partial);
        e = assertThrows(ModelException.class, () -> CalibrationFile.read(partial));
        assertTrue(e.getMessage().contains("lacks l.input_sum"), e.getMessage());
    }

    @Test
    void selectedLayersReadAsTheFullReadHasThemAndSummariesAgree() {
        Random random = new Random(3);
        java.util.List<Path> files = new java.util.ArrayList<>();
        for (int f = 0; f < 3; f++) {
            CalibrationStats stats = new CalibrationStats();
            for (String l : f == 1 ? java.util.List.of("a", "c") : java.util.List.of("a", "b", "c")) {
                int in = l.equals("b") ? 3 : 4;
                float[] x = new float[(2 + f) * in];
                for (int i = 0; i < x.length; i++) {
                    x[i] = (float) random.nextGaussian();
                }
                stats.put(l, LayerStatsFixtures.of(x, 2 + f, in));
            }
            Path file = tmp.resolve("part-" + f + ".safetensors");
            CalibrationFile.write(stats, Map.of("model", "tiny", "part", Integer.toString(f)), file);
            files.add(file);
        }
        CalibrationFile.Contents all = CalibrationFile.readAll(files);
        CalibrationFile.Contents some = CalibrationFile.readAll(files, l -> !l.equals("a"));
        assertEquals(all.metadata(), some.metadata());
        assertEquals(java.util.Set.of("b", "c"), some.stats().layers().keySet());
        for (String l : some.stats().layers().keySet()) {
            LayerStats a = all.stats().get(l), b = some.stats().get(l);
            assertEquals(a.tokens(), b.tokens(), l);
            assertArrayEquals(a.sum(), b.sum(), l); // exact: the same additions in the same order
            assertArrayEquals(a.sumSq(), b.sumSq(), l);
            assertArrayEquals(a.absMax(), b.absMax(), l);
            assertArrayEquals(a.gram(), b.gram(), l);
        }
        assertTrue(CalibrationFile.readAll(files, l -> false).stats().isEmpty());
        java.util.SortedMap<String, CalibrationFile.LayerSummary> summaries = CalibrationFile.summarize(files);
        assertEquals(all.stats().layers().keySet(), summaries.keySet());
        all.stats().layers().forEach((l, s) -> assertEquals(CalibrationFile.LayerSummary.of(s), summaries.get(l), l));
    }

    @Test
    void summariesRefuseFilesThatDoNotMergeWithTheFullReadsMessage() {
        CalibrationStats gram = new CalibrationStats();
        gram.layer("l", 2, true).addRows(new float[] {4, 5}, 1);
        CalibrationStats diag = new CalibrationStats();
        diag.layer("l", 2, false).addRows(new float[] {4, 5}, 1);
        Path g = tmp.resolve("gram.safetensors"), d = tmp.resolve("diag.safetensors");
        CalibrationFile.write(gram, Map.of(), g);
        CalibrationFile.write(diag, Map.of(), d);
        java.util.List<Path> files = java.util.List.of(g, d);
        ModelException read = assertThrows(ModelException.class, () -> CalibrationFile.readAll(files));
        ModelException summary = assertThrows(ModelException.class, () -> CalibrationFile.summarize(files));
        assertEquals(read.getMessage(), summary.getMessage());
        assertTrue(summary.getMessage().contains("cannot merge calibration statistics"), summary.getMessage());
    }
}
