package ai.fluxbatch.model.eval;

import java.nio.file.Path;
import java.util.Arrays;

/**
 * How far one candidate is from the reference over all evaluated prompts.
 *
 * @param stepErrors       per denoising step, the relative L2 error of the candidate's transformer output against the
 *                         reference's on the reference's own inputs (teacher-forced)
 * @param finalLatentError relative L2 error of the candidate's own final latents against the reference's
 * @param psnr             PSNR (dB, peak 255) of the candidate's 8-bit images over all their pixels
 * @param imagePsnrs       PSNR of each image, in prompt order
 */
public record CandidateResult(
        Path model,
        QuantizationInfo quantization,
        double[] stepErrors,
        double finalLatentError,
        double psnr,
        double meanImagePsnr,
        double[] imagePsnrs) {

    public double meanStepError() {
        return Arrays.stream(stepErrors).average().orElse(Double.NaN);
    }
}
