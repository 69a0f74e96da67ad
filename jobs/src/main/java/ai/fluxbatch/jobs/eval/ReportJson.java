package ai.fluxbatch.jobs.eval;

import ai.fluxbatch.model.eval.CandidateResult;
import ai.fluxbatch.model.eval.QuantizationInfo;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;

/**
 * The report as JSON. An infinite PSNR (images identical to the reference) is written as the string "Infinity",
 * Jackson's default for non-finite numbers.
 */
public final class ReportJson {
    private static final ObjectMapper JSON = new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT);

    private ReportJson() {}

    public static String render(EvaluationReport r) {
        ObjectNode root = JSON.createObjectNode();
        ObjectNode ref = root.putObject("reference");
        ref.put("model", r.reference().toString());
        ref.put("quantization_method", r.referenceQuantization().method());
        ObjectNode machine = root.putObject("machine");
        machine.put("cpu", r.machine().cpu());
        machine.put("cores", r.machine().cores());
        ObjectNode problem = root.putObject("problem");
        problem.put("prompts", r.prompts());
        problem.put("skipped_prompts", r.skippedPrompts());
        problem.put("first_seed", r.firstSeed());
        problem.put("steps", r.params().steps());
        problem.put("height", r.params().height());
        problem.put("width", r.params().width());
        problem.put("guidance", r.params().guidance());
        problem.put("max_sequence_length", r.maxSequenceLength());
        problem.put("batch_size", r.batchSize());
        doubles(problem.putArray("timesteps"), r.timesteps());
        root.put("load_seconds", r.loadSeconds());
        root.put("evaluate_seconds", r.evaluateSeconds());
        ArrayNode candidates = root.putArray("candidates");
        for (CandidateResult c : r.candidates()) {
            QuantizationInfo q = c.quantization();
            ObjectNode n = candidates.addObject();
            n.put("model", c.model().toString());
            n.put("quantization_method", q.method());
            n.put("calibration", q.calibration());
            n.put("calibration_prompts", q.calibrationPrompts());
            n.put("ternary_parameters", q.ternaryParameters());
            n.put("block_linear_parameters", q.blockLinearParameters());
            n.put("ternary_fraction", q.ternaryFraction());
            n.put("final_latent_rel_l2", c.finalLatentError());
            n.put("psnr_db", c.psnr());
            n.put("mean_image_psnr_db", c.meanImagePsnr());
            doubles(n.putArray("image_psnr_db"), c.imagePsnrs());
            n.put("mean_step_rel_l2", c.meanStepError());
            doubles(n.putArray("step_rel_l2"), c.stepErrors());
        }
        try {
            return JSON.writeValueAsString(root) + "\n";
        } catch (com.fasterxml.jackson.core.JsonProcessingException e) {
            throw new IllegalStateException("cannot write the report as JSON: " + e.getMessage(), e);
        }
    }

    private static void doubles(ArrayNode array, double[] values) {
        for (double v : values) {
            array.add(v);
        }
    }
}
