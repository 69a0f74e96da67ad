package ai.fluxbatch.jobs.calibrate;

import java.time.Instant;
import java.time.temporal.ChronoUnit;
import java.util.LinkedHashMap;
import java.util.Map;

/** The {@code __metadata__} of a statistics file: what was calibrated, on what, and how. */
public final class CalibrationMetadata {
    private CalibrationMetadata() {}

    /**
     * @param prompts the --prompts value ({@code paper-7232}, a URI) or {@code cli} for --prompt alone
     * @param seed the --seed each prompt's seed is offset from (rows with a seed column use theirs)
     */
    public static Map<String, String> of(
            CalibrateSettings s,
            String modelFingerprint,
            String prompts,
            long seed,
            CalibrationPartial result,
            long skippedRows,
            String version) {
        Map<String, String> m = new LinkedHashMap<>();
        m.put("model", s.model());
        m.put("model_fingerprint", modelFingerprint);
        m.put("prompts", prompts);
        m.put("prompt_count", Long.toString(result.prompts()));
        m.put("prompts_failed", Long.toString(result.failed()));
        m.put("prompt_rows_skipped", Long.toString(skippedRows));
        m.put("images", Long.toString(result.prompts())); // one trajectory per prompt
        m.put("steps", Integer.toString(s.steps()));
        m.put("recorded_steps", s.recordedSteps().toString());
        m.put("height", Integer.toString(s.height()));
        m.put("width", Integer.toString(s.width()));
        m.put("guidance", Float.toString(s.guidance()));
        m.put("max_sequence_length", Integer.toString(s.maxSequenceLength()));
        m.put("seed", Long.toString(seed));
        m.put("gram", Boolean.toString(s.gram()));
        m.put("layers", s.layers() == null ? "" : s.layers());
        m.put("layer_count", Integer.toString(result.stats().layers().size()));
        m.put("tokens", Long.toString(result.stats().tokens()));
        m.put("batch_size", Integer.toString(s.batchSize()));
        m.put("fluxbatch_version", version);
        m.put("created", Instant.now().truncatedTo(ChronoUnit.SECONDS).toString());
        return m;
    }
}
