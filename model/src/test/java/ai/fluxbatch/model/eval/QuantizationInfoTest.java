package ai.fluxbatch.model.eval;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.fluxbatch.model.Golden;
import org.junit.jupiter.api.Test;

class QuantizationInfoTest {
    @Test
    void aFullPrecisionCheckpointHasNoTernaryParameters() {
        QuantizationInfo q = QuantizationInfo.of(Golden.path("flux-tiny-dev"));
        assertEquals("none", q.method());
        assertFalse(q.quantized());
        assertEquals(0, q.ternaryParameters());
        assertTrue(q.blockLinearParameters() > 0);
    }

    @Test
    void summarizesTheCalibrationByShortHashAndPromptCount() {
        String sha = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
        assertEquals(
                "sha256:0123456789ab (7232 prompts)",
                new QuantizationInfo("gptq", sha, "7232", 3, 4).calibrationSummary());
        assertEquals("sha256:0123456789ab", new QuantizationInfo("refit", sha, null, 3, 4).calibrationSummary());
        assertEquals("none", new QuantizationInfo("absmean", "none", null, 4, 4).calibrationSummary());
        assertEquals(0.75, new QuantizationInfo("refit", sha, null, 3, 4).ternaryFraction());
    }
}
