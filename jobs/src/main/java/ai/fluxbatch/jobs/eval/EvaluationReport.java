package ai.fluxbatch.jobs.eval;

import ai.fluxbatch.model.eval.CandidateResult;
import ai.fluxbatch.model.eval.QuantizationInfo;
import ai.fluxbatch.model.pipeline.GenerationParams;
import java.nio.file.Path;
import java.util.List;

/**
 * Everything {@code fluxbatch evaluate} reports: what was compared, on what problem and machine, how long it took,
 * and each candidate's errors.
 *
 * @param maxSequenceLength the T5 length of the prompts' embeddings (the reference's, which every candidate is given)
 * @param timesteps the reference schedule; step {@code s} runs the transformer at {@code timesteps[s]}
 */
public record EvaluationReport(
        Path reference,
        QuantizationInfo referenceQuantization,
        MachineInfo machine,
        int prompts,
        int skippedPrompts,
        long firstSeed,
        GenerationParams params,
        int maxSequenceLength,
        int batchSize,
        double[] timesteps,
        double loadSeconds,
        double evaluateSeconds,
        List<CandidateResult> candidates) {}
