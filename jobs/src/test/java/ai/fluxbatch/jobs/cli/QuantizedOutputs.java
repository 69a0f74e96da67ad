package ai.fluxbatch.jobs.cli;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.fluxbatch.kernel.cpu.CpuBackend;
import ai.fluxbatch.model.Golden;
import ai.fluxbatch.model.calib.ActivationRecorder;
import ai.fluxbatch.model.calib.CalibrationFile;
import ai.fluxbatch.model.calib.CalibrationRun;
import ai.fluxbatch.model.calib.CalibrationStats;
import ai.fluxbatch.model.pipeline.FluxPipeline;
import ai.fluxbatch.model.pipeline.GenerationParams;
import ai.fluxbatch.model.safetensors.TensorSource;
import ai.fluxbatch.model.safetensors.TensorSources;
import ai.fluxbatch.model.snapshot.FluxSnapshot;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.dataformat.yaml.YAMLMapper;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;

/** What the tests of {@code quantize --master} compare: quantized snapshots, and statistics to quantize with. */
final class QuantizedOutputs {
    private QuantizedOutputs() {}

    /** Gram statistics of flux-tiny-dev on one prompt at 32 x 32, 2 steps, written to {@code file}. */
    static Path gramStatistics(Path file) {
        ActivationRecorder recorder = new ActivationRecorder(true, layer -> true);
        try (CpuBackend cpu = new CpuBackend()) {
            FluxPipeline p = FluxPipeline.load(Golden.path("flux-tiny-dev"), cpu, recorder);
            CalibrationStats s = new CalibrationRun(p, recorder)
                    .record(
                            List.of(p.embed("a red circle on the left")),
                            new long[] {1},
                            new GenerationParams(32, 32, 2, 3.5f),
                            step -> true);
            CalibrationFile.write(s, Map.of("model", "flux-tiny-dev"), file);
        }
        return file;
    }

    /**
     * The transformers of two snapshots read back the same: the same tensor names, and per tensor the same dtype,
     * shape and bytes; the same metadata. One may be a single file and the other shards with an index.
     */
    static void assertSameTransformer(Path expected, Path actual) {
        try (TensorSource e = TensorSources.open(FluxSnapshot.open(expected).transformerFile());
                TensorSource a = TensorSources.open(FluxSnapshot.open(actual).transformerFile())) {
            assertEquals(e.metadata(), a.metadata(), "metadata");
            assertEquals(e.names(), a.names(), "tensor names");
            for (String name : e.names()) {
                assertEquals(e.info(name).dtype(), a.info(name).dtype(), name);
                assertArrayEquals(e.info(name).shape(), a.info(name).shape(), name);
                long n = e.info(name).byteLength();
                for (long at = 0; at < n; at += 1 << 20) {
                    int len = (int) Math.min(n - at, 1 << 20);
                    assertEquals(e.bytes(name, at, len), a.bytes(name, at, len), name + ": bytes from " + at);
                }
            }
        }
    }

    /**
     * The transformers of two snapshots, read under the reference names whatever their layouts, hold the same tensors
     * (dtype, shape, bytes); metadata is compared without the source file's name and SHA-256, which differ between
     * layouts of the same weights.
     */
    static void assertSameTensorsUnderReferenceNames(Path expected, Path actual) {
        try (TensorSource e = FluxSnapshot.open(expected).openTransformer();
                TensorSource a = FluxSnapshot.open(actual).openTransformer()) {
            java.util.Map<String, String> em = new java.util.TreeMap<>(e.metadata());
            java.util.Map<String, String> am = new java.util.TreeMap<>(a.metadata());
            for (String k : List.of("source_file", "source_sha256")) {
                assertTrue(em.remove(k) != null && am.remove(k) != null, k);
            }
            assertEquals(em, am, "metadata");
            assertEquals(e.names(), a.names(), "tensor names");
            for (String name : e.names()) {
                assertEquals(e.info(name).dtype(), a.info(name).dtype(), name);
                assertArrayEquals(e.info(name).shape(), a.info(name).shape(), name);
                int n = (int) e.info(name).byteLength();
                assertEquals(e.bytes(name, 0, n), a.bytes(name, 0, n), name);
            }
        }
    }

    /** The same files under both folders (names relative to each), byte for byte. */
    static void assertSameFiles(Path expected, Path actual) throws IOException {
        assertSameFilesBut(expected, actual, List.of());
    }

    /** {@link #assertSameFiles}, with the files {@code but} (relative names) present in both but not compared. */
    static void assertSameFilesBut(Path expected, Path actual, List<String> but) throws IOException {
        List<String> names = files(expected);
        assertEquals(names, files(actual), "the files of " + actual + " against " + expected);
        for (String n : names) {
            if (but.contains(n)) {
                continue;
            }
            assertTrue(
                    Files.mismatch(expected.resolve(n), actual.resolve(n)) < 0,
                    n + " differs between " + expected + " and " + actual);
        }
    }

    /**
     * The YAML front matter of a snapshot's README.md model card, parsed by a YAML parser (so that it parses is part
     * of what is checked), and the text after it.
     */
    record Card(JsonNode frontMatter, String body) {
        static Card of(Path snapshot) throws IOException {
            String text = Files.readString(snapshot.resolve("README.md"));
            assertTrue(text.startsWith("---\n"), "front matter first: " + text);
            int end = text.indexOf("\n---\n", 4);
            assertTrue(end > 0, "front matter closed: " + text);
            JsonNode front = new YAMLMapper().readTree(text.substring(4, end + 1));
            assertTrue(front != null && front.isObject(), "front matter is a YAML mapping: " + text);
            return new Card(front, text.substring(end + 5));
        }

        List<String> tags() {
            List<String> tags = new ArrayList<>();
            frontMatter.path("tags").forEach(t -> tags.add(t.asText()));
            return tags;
        }
    }

    /** The {@code quantization_config} of a snapshot's transformer/config.json. */
    static JsonNode quantizationConfig(Path snapshot) throws IOException {
        return new ObjectMapper()
                .readTree(snapshot.resolve("transformer/config.json").toFile())
                .path("quantization_config");
    }

    /** Every regular file under {@code folder}, relative to it, sorted; hidden ones included. */
    static List<String> files(Path folder) throws IOException {
        List<String> out = new ArrayList<>();
        try (Stream<Path> s = Files.walk(folder)) {
            s.filter(Files::isRegularFile)
                    .map(p -> folder.relativize(p).toString())
                    .sorted()
                    .forEach(out::add);
        }
        return out;
    }
}
