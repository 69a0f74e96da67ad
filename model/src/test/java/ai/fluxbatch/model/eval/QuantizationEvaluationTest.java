package ai.fluxbatch.model.eval;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.fluxbatch.kernel.Tensor;
import ai.fluxbatch.kernel.cpu.CpuBackend;
import ai.fluxbatch.model.Golden;
import ai.fluxbatch.model.ModelException;
import ai.fluxbatch.model.flux.FluxInputs;
import ai.fluxbatch.model.flux.TapSink;
import ai.fluxbatch.model.pipeline.FluxPipeline;
import ai.fluxbatch.model.pipeline.GenerationParams;
import ai.fluxbatch.model.pipeline.TextEmbedding;
import ai.fluxbatch.model.quant.QuantizedSnapshotWriter;
import ai.fluxbatch.model.snapshot.FluxSnapshot;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The golden miniature against itself and against its absmean 1.58-bit copy: 2 prompts, 3 steps, 64 x 64. */
class QuantizationEvaluationTest {
    private static final GenerationParams PARAMS = new GenerationParams(64, 64, 3, 3.5f);
    private static final long[] SEEDS = {1000, 1001};

    @TempDir
    static Path tmp;

    private static CpuBackend cpu;
    private static FluxPipeline reference;
    private static FluxPipeline quantized;
    private static List<TextEmbedding> prompts;
    private static CandidateResult self;
    private static CandidateResult absmean;

    @BeforeAll
    static void evaluate() {
        cpu = new CpuBackend();
        Path golden = Golden.path("flux-tiny-dev");
        Path q = tmp.resolve("absmean");
        QuantizedSnapshotWriter.write(FluxSnapshot.open(golden), q, false, (g, d, t, s) -> {});
        reference = FluxPipeline.load(golden, cpu);
        quantized = FluxPipeline.load(q, cpu);
        prompts = List.of(reference.embed("a red circle on the left"), reference.embed("a blue square above a cat"));
        List<CandidateResult> results = new QuantizationEvaluation(
                        reference, List.of(FluxPipeline.load(golden, cpu), quantized), cpu)
                .run(prompts, SEEDS, PARAMS, 2, QuantizationEvaluation.Progress.NONE);
        self = results.get(0);
        absmean = results.get(1);
    }

    @AfterAll
    static void close() {
        cpu.close();
    }

    @Test
    void theReferenceAgainstItselfHasNoErrorAtAll() {
        assertEquals(3, self.stepErrors().length);
        for (double e : self.stepErrors()) {
            assertEquals(0.0, e);
        }
        assertEquals(0.0, self.finalLatentError());
        assertEquals(Double.POSITIVE_INFINITY, self.psnr());
        assertEquals(Double.POSITIVE_INFINITY, self.meanImagePsnr());
        assertEquals("none", self.quantization().method());
        assertEquals(0.0, self.quantization().ternaryFraction());
    }

    @Test
    void theAbsmeanCopyIsMeasurablyOff() {
        System.out.printf(
                "absmean: steps %s, latent %.4f, psnr %.2f dB, per image %s%n",
                java.util.Arrays.toString(absmean.stepErrors()),
                absmean.finalLatentError(),
                absmean.psnr(),
                java.util.Arrays.toString(absmean.imagePsnrs()));
        for (double e : absmean.stepErrors()) {
            assertTrue(e > 0 && e < 10, "step error " + e);
        }
        assertTrue(absmean.finalLatentError() > 0 && Double.isFinite(absmean.finalLatentError()));
        assertTrue(Double.isFinite(absmean.psnr()) && absmean.psnr() > 0, "psnr " + absmean.psnr());
        assertEquals(2, absmean.imagePsnrs().length);
        assertTrue(Double.isFinite(absmean.meanImagePsnr()));
        assertEquals("absmean", absmean.quantization().method());
        assertEquals("none", absmean.quantization().calibrationSummary());
        assertEquals(1.0, absmean.quantization().ternaryFraction());
    }

    @Test
    void stepZeroIsTheTransformersDifferenceOnTheSameInputs() {
        FluxInputs[] first = new FluxInputs[1];
        reference.denoise(prompts, SEEDS, PARAMS, (index, in, v) -> {
            if (index == 0) {
                first[0] = new FluxInputs(
                        in.batch(),
                        in.imgLength(),
                        in.txtLength(),
                        in.img().clone(),
                        in.imgIds().clone(),
                        in.txt().clone(),
                        in.txtIds().clone(),
                        in.timesteps().clone(),
                        in.y().clone(),
                        in.guidance().clone());
            }
        });
        double direct = Golden.relL2(forward(quantized, first[0]), forward(reference, first[0]));
        assertTrue(direct > 0);
        assertEquals(direct, absmean.stepErrors()[0], 1e-12 * direct);
    }

    @Test
    void batchesAddUpToTheSameErrorsAsOneBatch() {
        CandidateResult oneByOne = new QuantizationEvaluation(reference, List.of(quantized), cpu)
                .run(prompts, SEEDS, PARAMS, 1, QuantizationEvaluation.Progress.NONE)
                .get(0);
        for (int s = 0; s < 3; s++) {
            assertEquals(absmean.stepErrors()[s], oneByOne.stepErrors()[s], 1e-4 * absmean.stepErrors()[s]);
        }
        assertEquals(absmean.finalLatentError(), oneByOne.finalLatentError(), 1e-3 * absmean.finalLatentError());
        assertEquals(absmean.psnr(), oneByOne.psnr(), 0.1);
    }

    @Test
    void refusesACandidateOfAnotherArchitecture() {
        Path dev = Golden.path("flux-tiny-dev"), schnell = Golden.path("flux-tiny-schnell");
        ModelException e = assertThrows(
                ModelException.class,
                () -> Architectures.requireSame(dev, Architectures.read(dev), schnell, Architectures.read(schnell)));
        assertTrue(
                e.getMessage().contains(dev.toString())
                        && e.getMessage().contains(schnell.toString())
                        && e.getMessage().contains("schnell"),
                e.getMessage());
        Architectures.requireSame(
                dev, Architectures.read(dev), tmp.resolve("absmean"), Architectures.read(tmp.resolve("absmean")));
    }

    private static float[] forward(FluxPipeline pipeline, FluxInputs in) {
        Tensor out = pipeline.transformer().forward(in, TapSink.NONE);
        float[] v = cpu.download(out);
        out.close();
        return v;
    }
}
