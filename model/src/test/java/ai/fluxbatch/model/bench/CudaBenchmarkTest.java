package ai.fluxbatch.model.bench;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.fluxbatch.kernel.cuda.GpuTernaryLayout;
import ai.fluxbatch.model.Golden;
import ai.fluxbatch.model.quant.TernaryFormat;
import ai.fluxbatch.model.safetensors.TensorInfo;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The plumbing of {@link CudaBenchmark} on the emulated device at tiny sizes: both modes, the ratios they print. */
class CudaBenchmarkTest {
    @TempDir
    Path dir;

    private static String run(String... args) {
        ByteArrayOutputStream bytes = new ByteArrayOutputStream();
        int status;
        try (PrintStream out = new PrintStream(bytes, true, StandardCharsets.UTF_8)) {
            status = CudaBenchmark.run(args, out);
        }
        String text = bytes.toString(StandardCharsets.UTF_8);
        System.out.print(text);
        assertEquals(0, status, "exit status; output:\n" + text);
        return text;
    }

    private Path tinyLayoutFile() throws IOException {
        ObjectMapper mapper = new ObjectMapper();
        ObjectNode root = mapper.createObjectNode();
        root.put("dtype", "BF16");
        ObjectNode tensors = root.putObject("tensors");
        for (Map.Entry<String, long[]> e : CudaBenchmark.tinyLayout().entrySet()) {
            ArrayNode shape = tensors.putArray(e.getKey());
            for (long d : e.getValue()) {
                shape.add(d);
            }
        }
        Path file = dir.resolve("tiny-layout.json");
        mapper.writeValue(file.toFile(), root);
        return file;
    }

    @Test
    void kernelsModePrintsSpeedupsAgainstEveryBaselineAndTheWeightBytes() throws IOException {
        // a torch baseline for the tiny shapes, as bench/gpu/torch_baseline.py writes it
        ObjectMapper mapper = new ObjectMapper();
        ObjectNode torch = mapper.createObjectNode();
        torch.put("device", "test device");
        torch.put("torch", "0.0-test");
        ArrayNode results = torch.putArray("results");
        for (CudaBenchmark.LinearShape s : CudaBenchmark.blockShapes(CudaBenchmark.tinyLayout())) {
            for (int m : new int[] {1, 96, 256}) {
                results.addObject()
                        .put("out", s.out)
                        .put("in", s.in)
                        .put("m", m)
                        .put("ms", 0.5);
            }
        }
        Path torchFile = dir.resolve("torch-baseline.json");
        mapper.writeValue(torchFile.toFile(), torch);

        String out = run(
                "kernels",
                "--emulated",
                "--reps",
                "2",
                "--torch",
                torchFile.toString(),
                "--layout",
                tinyLayoutFile().toString());
        assertTrue(out.contains("machine: emulated CUDA device"), out);
        assertTrue(out.contains("torch 0.0-test on test device"), out);
        // 7 distinct shapes at 3 values of M (the small-M kernel, the tiled kernel, decode + GEMM in the backend)
        assertEquals(21, count(out, "(?m)^\\S.* \\d+x\\d+ M=(1|96|256)$"), out);
        assertEquals(7, count(out, "1\\.58-bit, the backend \\(ternary_matmul_small_m\\)"), out);
        assertEquals(7, count(out, "1\\.58-bit, the backend \\(ternary_matmul_tiled\\)"), out);
        assertEquals(7, count(out, "1\\.58-bit, the backend \\(decode \\+ GEMM\\)"), out);
        assertEquals(14, count(out, "1\\.58-bit, decode \\+ cuBLAS BF16 \\+ epilogue +[0-9.]+ ms"), out);
        for (String baseline : new String[] {
            "cuBLAS FP32 \\(fp32 storage\\)",
            "cuBLAS BF16 \\(fp32 storage\\)",
            "torch BF16 \\(bf16 storage\\) +0\\.5000 ms"
        }) {
            assertEquals(
                    21,
                    count(out, baseline + ".* speedup of the backend +[0-9.]+x, of the SIMT kernel" + " +[0-9.]+x"),
                    baseline + "\n" + out);
        }
        assertTrue(out.contains("double mod.lin"), out);
        assertTrue(out.contains("single linear1"), out);
        // every path computes what cuBLAS FP32 computes on the same weights
        Matcher check = Pattern.compile("(the backend|the SIMT kernel|decode \\+ GEMM|cuBLAS BF16) ([0-9.e+-]+);")
                .matcher(out);
        int checks = 0;
        while (check.find()) {
            checks++;
            double limit = check.group(1).equals("the SIMT kernel") ? 1e-5 : 1e-2; // bf16 products: about 2e-3
            assertTrue(Double.parseDouble(check.group(2)) < limit, check.group());
        }
        assertEquals(7 * (3 + 4 + 4), checks, out);
        assertTrue(
                out.contains(
                        "target at M = 1: the 1.58-bit product (the backend) at least 3.0x as fast as torch" + " BF16"),
                out);
        assertTrue(
                out.contains("target at M = 256: the 1.58-bit product (the backend) at least 1.0x as fast as"
                        + " torch BF16"),
                out);
        assertTrue(
                Pattern.compile("1\\.58-bit as the CUDA backend holds it .*: [0-9.]+x smaller than BF16 \\(target"
                                + " >= 5\\.0x")
                        .matcher(out)
                        .find(),
                out);
    }

    private static int count(String text, String regex) {
        Matcher m = Pattern.compile(regex).matcher(text);
        int n = 0;
        while (m.find()) {
            n++;
        }
        return n;
    }

    @Test
    void kernelsModeWithoutTorchOrLayoutFallsBack() {
        String out = run(
                "kernels",
                "--emulated",
                "--reps",
                "1",
                "--m",
                "2",
                "--torch",
                dir.resolve("absent.json").toString(),
                "--layout",
                dir.resolve("absent-layout.json").toString());
        assertTrue(out.contains("is absent (did bench/gpu/torch_baseline.py fail?"), out);
        assertTrue(out.contains("WARNING: layout file"), out);
        assertTrue(
                out.contains("target at M = 2: the 1.58-bit product (the backend) at least 3.0x as fast as cuBLAS"
                        + " BF16"),
                out);
    }

    @Test
    void stepModeTimesForwardPassesAndReportsMemory() throws IOException {
        String out = run(
                "step",
                "--emulated",
                "--tokens",
                "16",
                "--txt",
                "4",
                "--steps",
                "2",
                "--layout",
                tinyLayoutFile().toString());
        assertTrue(out.contains("FLUX.1-dev (hidden 64, 4 heads of 16, mlp 256, 1 double + 1 single blocks"), out);
        assertTrue(out.contains("warm-up step (untimed)"), out);
        assertTrue(out.contains("step 2: "), out);
        assertTrue(out.contains("all finite"), out);
        assertTrue(
                Pattern.compile("seconds per denoising step: [0-9.]+ s mean over 2 steps")
                        .matcher(out)
                        .find(),
                out);
        assertTrue(
                Pattern.compile("weights resident [0-9,]+ B .*: [0-9.]+x smaller")
                        .matcher(out)
                        .find(),
                out);
        assertTrue(
                Pattern.compile("device memory \\(the backend's pool\\): peak [0-9,]+ B")
                        .matcher(out)
                        .find(),
                out);
    }

    @Test
    void stepModeWithRandomCodesAndTheBuiltInTinyLayout() {
        String out = run(
                "step",
                "--emulated",
                "--tokens",
                "4",
                "--txt",
                "2",
                "--steps",
                "1",
                "--codes",
                "random",
                "--precision",
                "fp32");
        assertTrue(out.contains("random codes"), out);
        assertTrue(out.contains("seconds per denoising step"), out);
    }

    @Test
    void withoutAGpuAndWithoutEmulatedItFailsClearly() {
        Assumptions.assumeFalse(CudaBenchmark.gpuPresent(), "a GPU is present");
        ByteArrayOutputStream bytes = new ByteArrayOutputStream();
        int status = CudaBenchmark.run(new String[] {"kernels"}, new PrintStream(bytes, true, StandardCharsets.UTF_8));
        String out = bytes.toString(StandardCharsets.UTF_8);
        assertEquals(2, status, out);
        assertTrue(out.contains("no NVIDIA GPU on this machine"), out);
        assertTrue(out.contains("--emulated"), out);
    }

    @Test
    void badArgumentsPrintTheUsage() {
        ByteArrayOutputStream bytes = new ByteArrayOutputStream();
        int status = CudaBenchmark.run(
                new String[] {"kernels", "--bogus"}, new PrintStream(bytes, true, StandardCharsets.UTF_8));
        assertEquals(1, status);
        assertTrue(bytes.toString(StandardCharsets.UTF_8).contains("usage: CudaBenchmark"));
    }

    @Test
    void theBuiltInDevLayoutIsTheGoldenOne() {
        Path file = Golden.path("flux1-dev-layout.json");
        Map<String, long[]> golden = SyntheticTensorSource.readLayout(file);
        Map<String, long[]> builtIn = SyntheticTensorSource.fluxDevLayout();
        assertEquals(golden.keySet(), builtIn.keySet());
        for (Map.Entry<String, long[]> e : golden.entrySet()) {
            assertArrayEquals(e.getValue(), builtIn.get(e.getKey()), e.getKey());
        }
        assertEquals(7, CudaBenchmark.blockShapes(golden).size());
        assertArrayEquals(new int[] {16, 56, 56}, CudaBenchmark.ropeAxes(128));
    }

    @Test
    void theSyntheticSourceServesTheQuantizedFormatConsistently() {
        for (boolean periodic : new boolean[] {true, false}) {
            SyntheticTensorSource s = SyntheticTensorSource.quantized(
                    SyntheticTensorSource.fluxLayout(256, 64, 1024, 1, 1, 16, 32, 16, true), 7, "test", periodic);
            String w = "single_blocks.0.linear2.weight";
            TensorInfo codes = s.info(w);
            assertEquals("U8", codes.dtype().name());
            assertArrayEquals(new long[] {TernaryFormat.packedRows(256), 1280}, codes.shape());
            assertArrayEquals(
                    new long[] {256}, s.info(TernaryFormat.scaleName(w)).shape());
            assertTrue(codes.byteLength() > 1 << 16, "spans more than one generated chunk");
            byte[] all = new byte[(int) codes.byteLength()];
            s.bytes(w, 0, all.length).get(all);
            // valid codes, and the same bytes whatever the range asked for
            int[] planes = GpuTernaryLayout.fromHfPacked(all, 256, 1280);
            assertEquals(GpuTernaryLayout.words(256, 1280), planes.length);
            int from = (1 << 16) - 1000, length = 3000;
            ByteBuffer part = s.bytes(w, from, length);
            for (int i = 0; i < length; i++) {
                assertEquals(all[from + i], part.get(i));
            }
            float[] norm = s.floats("double_blocks.0.img_attn.norm.query_norm.scale");
            for (float f : norm) {
                assertEquals(1f, f);
            }
            assertEquals("BF16", s.info("txt_in.weight").dtype().name());
            assertEquals(TernaryFormat.FORMAT, s.metadata().get(TernaryFormat.KEY_FORMAT));
        }
    }
}
