package ai.fluxbatch.model.quant;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.fluxbatch.kernel.Backend;
import ai.fluxbatch.kernel.Tensor;
import ai.fluxbatch.kernel.cpu.CpuBackend;
import ai.fluxbatch.model.Golden;
import ai.fluxbatch.model.ModelException;
import ai.fluxbatch.model.TestBackends;
import ai.fluxbatch.model.flux.FluxInputsReader;
import ai.fluxbatch.model.flux.FluxTransformer;
import ai.fluxbatch.model.flux.FluxTransformers;
import ai.fluxbatch.model.flux.TapSink;
import ai.fluxbatch.model.safetensors.SafetensorsException;
import ai.fluxbatch.model.safetensors.SafetensorsFile;
import ai.fluxbatch.model.safetensors.SafetensorsWriter;
import ai.fluxbatch.model.safetensors.TensorInfo;
import ai.fluxbatch.model.safetensors.TensorSource;
import ai.fluxbatch.model.snapshot.FluxSnapshot;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/** Quantized snapshots: the reference 1.58-bit output through the packed kernel, sizes, and refusals. */
class QuantizedSnapshotTest {
    private static final CpuBackend CPU = new CpuBackend();
    private static final QuantizeProgress QUIET = (g, d, t, s) -> {};

    @TempDir
    Path tmp;

    @AfterAll
    static void close() {
        CPU.close();
    }

    static List<Arguments> backendsAndModels() {
        return TestBackends.cases(TestBackends.names(), List.of("flux-tiny-dev", "flux-tiny-schnell"));
    }

    @ParameterizedTest(name = "{0} {1}")
    @MethodSource("backendsAndModels")
    void quantizedTransformerReproducesTheReference(String backendName, String model) {
        Path out = tmp.resolve("q");
        QuantizedSnapshotWriter.write(FluxSnapshot.open(Golden.path(model)), out, false, QUIET);
        try (Backend backend = TestBackends.open(backendName);
                TensorSource forward = SafetensorsFile.open(Golden.path("cases", model, "forward-1.safetensors"));
                TensorSource golden = SafetensorsFile.open(Golden.path("cases", model, "quant-absmean.safetensors"))) {
            FluxTransformer t = FluxTransformers.load(FluxSnapshot.open(out), backend);
            Tensor y = t.forward(FluxInputsReader.read(forward, t.config()), TapSink.NONE);
            double err = Golden.relL2(backend.download(y), golden.floats("out"));
            System.out.printf("%s %s 1.58-bit out relative L2 %.3g%n", backendName, model, err);
            assertTrue(err < TestBackends.tolerance(backendName), "relative L2 " + err);
        }
    }

    @Test
    void sizesAddUpAndTheOtherComponentsComeAlong() throws IOException {
        Path src = Golden.path("flux-tiny-dev");
        Path out = tmp.resolve("q");
        QuantizedSnapshotWriter.write(FluxSnapshot.open(src), out, false, QUIET);
        long quantizedParams = 0, totalParams = 0, expectedData = 0;
        try (TensorSource s = SafetensorsFile.open(src.resolve("flux1-dev.safetensors"));
                TensorSource q = SafetensorsFile.open(out.resolve("flux1-dev.safetensors"))) {
            for (String name : s.names()) {
                TensorInfo info = s.info(name);
                totalParams += info.numel();
                if (TernaryFormat.isQuantized(name, info.shape())) {
                    quantizedParams += info.numel();
                    long outF = info.shape()[0], in = info.shape()[1];
                    expectedData += TernaryFormat.packedRows((int) outF) * in + 4 * outF;
                    assertEquals(outF, q.info(TernaryFormat.scaleName(name)).shape()[0]);
                } else {
                    expectedData += info.byteLength();
                    assertEquals(info.dtype(), q.info(name).dtype(), name + " copied unchanged");
                }
            }
            assertEquals(TernaryFormat.FORMAT, q.metadata().get(TernaryFormat.KEY_FORMAT));
            assertEquals("absmean", q.metadata().get(TernaryFormat.KEY_METHOD));
            assertEquals(64, q.metadata().get(TernaryFormat.KEY_SOURCE_SHA256).length());
        }
        try (TensorSource g =
                SafetensorsFile.open(Golden.path("cases", "flux-tiny-dev", "quant-absmean.safetensors"))) {
            assertEquals(g.metadata().get("quantized_params"), Long.toString(quantizedParams));
            assertEquals(g.metadata().get("total_params"), Long.toString(totalParams));
        }
        long fileSize = Files.size(out.resolve("flux1-dev.safetensors"));
        long header = fileSize - expectedData;
        assertTrue(
                header > 8 && header < 64 * 1024,
                "data area is exactly packed codes + scales + copies; header " + header);
        for (String other : List.of(
                "ae.safetensors",
                "text_encoder_2/model.safetensors",
                "tokenizer_2/spiece.model",
                "scheduler/scheduler_config.json")) {
            assertEquals(Files.size(src.resolve(other)), Files.size(out.resolve(other)), other);
        }
    }

    @Test
    void refusesAnAlreadyQuantizedInput() {
        Path once = tmp.resolve("once");
        QuantizedSnapshotWriter.write(FluxSnapshot.open(Golden.path("flux-tiny-schnell")), once, false, QUIET);
        ModelException e = assertThrows(
                ModelException.class,
                () -> QuantizedSnapshotWriter.write(FluxSnapshot.open(once), tmp.resolve("twice"), false, QUIET));
        assertTrue(e.getMessage().contains("already quantized"), e.getMessage());
        assertFalse(Files.exists(tmp.resolve("twice")));
    }

    @Test
    void refusesAnExistingOutputUnlessOverwrite() throws IOException {
        Path out = Files.createDirectories(tmp.resolve("exists"));
        Files.writeString(out.resolve("keep.txt"), "x");
        FluxSnapshot src = FluxSnapshot.open(Golden.path("flux-tiny-schnell"));
        ModelException e =
                assertThrows(ModelException.class, () -> QuantizedSnapshotWriter.write(src, out, false, QUIET));
        assertTrue(e.getMessage().contains("exists"), e.getMessage());
        assertTrue(Files.exists(out.resolve("keep.txt")));
        QuantizedSnapshotWriter.write(src, out, true, QUIET);
        assertFalse(Files.exists(out.resolve("keep.txt")));
        assertTrue(Files.exists(out.resolve("flux1-schnell.safetensors")));
    }

    @Test
    void refusesNonFiniteWeightsNamingTheTensorAndLeavesNothing() throws IOException {
        Path src = Files.createDirectories(tmp.resolve("nan-model"));
        Files.createDirectories(src.resolve("transformer"));
        Files.copy(
                Golden.path("flux-tiny-schnell", "transformer", "config.json"), src.resolve("transformer/config.json"));
        String bad = "single_blocks.1.linear2.weight";
        SafetensorsWriter w = new SafetensorsWriter();
        try (TensorSource s = SafetensorsFile.open(Golden.path("flux-tiny-schnell", "flux1-schnell.safetensors"))) {
            for (String name : s.names()) {
                long[] shape = s.info(name).shape();
                float[] v = s.floats(name);
                if (name.equals(bad)) {
                    v[7] = Float.NaN;
                }
                w.addF32(name, shape, v);
            }
        }
        w.write(src.resolve("flux1-schnell.safetensors"));
        RuntimeException e = assertThrows(
                RuntimeException.class,
                () -> QuantizedSnapshotWriter.write(FluxSnapshot.open(src), tmp.resolve("out"), false, QUIET));
        assertTrue(e instanceof ModelException || e instanceof SafetensorsException, e.toString());
        assertTrue(e.getMessage().contains(bad) && e.getMessage().contains("NaN"), e.getMessage());
        List<String> left = new ArrayList<>();
        try (Stream<Path> l = Files.list(tmp)) {
            l.forEach(p -> left.add(p.getFileName().toString()));
        }
        assertEquals(List.of("nan-model"), left, "no output or temporary folder left");
    }
}
