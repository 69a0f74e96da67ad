package ai.fluxbatch.model.pipeline;

import ai.fluxbatch.kernel.cpu.CpuBackend;
import ai.fluxbatch.model.Golden;
import ai.fluxbatch.model.safetensors.SafetensorsFile;
import ai.fluxbatch.model.safetensors.TensorSource;
import java.io.DataOutputStream;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;

/**
 * The golden case e2e-1 of flux-tiny-dev through the whole pipeline on the CPU backend: every float it produces (T5
 * embedding, CLIP pooled vector, final latent, decoded image), for comparing runs bit for bit. As a main, one run in
 * this JVM written to a file, so a test can run it in a JVM with other JIT flags.
 */
final class GoldenCaseRun implements AutoCloseable {
    static final String CASE = "e2e-1";

    private final CpuBackend backend;
    private final FluxPipeline pipeline;
    private final String prompt;
    private final long seed;
    private final GenerationParams params;

    GoldenCaseRun(int threads) {
        backend = new CpuBackend(threads);
        pipeline = FluxPipeline.load(Golden.path("flux-tiny-dev"), backend);
        try (TensorSource g = SafetensorsFile.open(Golden.path("cases", "flux-tiny-dev", CASE + ".safetensors"))) {
            Map<String, String> meta = g.metadata();
            prompt = meta.get("prompt");
            seed = Long.parseLong(meta.get("seed"));
            params = new GenerationParams(
                    Integer.parseInt(meta.get("height")),
                    Integer.parseInt(meta.get("width")),
                    Integer.parseInt(meta.get("steps")),
                    Float.parseFloat(meta.get("guidance")));
        }
    }

    /** One run of the case: its outputs, concatenated. */
    float[] run() {
        TextEmbedding e = pipeline.embed(prompt);
        FluxPipeline.Batch out = pipeline.generate(List.of(e), new long[] {seed}, params, s -> {});
        return concat(e.txt(), e.y(), out.latents(), out.decoded());
    }

    @Override
    public void close() {
        backend.close();
    }

    private static float[] concat(float[]... parts) {
        int n = 0;
        for (float[] p : parts) {
            n += p.length;
        }
        float[] all = new float[n];
        int o = 0;
        for (float[] p : parts) {
            System.arraycopy(p, 0, all, o, p.length);
            o += p.length;
        }
        return all;
    }

    static void write(float[] values, Path file) throws IOException {
        try (DataOutputStream out = new DataOutputStream(Files.newOutputStream(file))) {
            for (float v : values) {
                out.writeInt(Float.floatToRawIntBits(v));
            }
        }
    }

    static float[] read(Path file) {
        try {
            java.nio.ByteBuffer b = java.nio.ByteBuffer.wrap(Files.readAllBytes(file));
            float[] values = new float[b.remaining() / 4];
            b.asFloatBuffer().get(values);
            return values;
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /** {@code GoldenCaseRun <output file> <threads>}: one run, its floats written big-endian. */
    public static void main(String[] args) throws IOException {
        try (GoldenCaseRun r = new GoldenCaseRun(Integer.parseInt(args[1]))) {
            write(r.run(), Path.of(args[0]));
        }
    }
}
