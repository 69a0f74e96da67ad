package ai.fluxbatch.model.sampling;

import ai.fluxbatch.model.JsonFiles;
import ai.fluxbatch.model.ModelException;
import com.fasterxml.jackson.databind.JsonNode;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * The flow-matching shift parameters of {@code scheduler/scheduler_config.json}: mu grows linearly in the image
 * sequence length from {@code baseShift} at {@code baseSeqLen} to {@code maxShift} at {@code maxSeqLen}.
 */
public record SchedulerConfig(double baseShift, double maxShift, int baseSeqLen, int maxSeqLen) {
    /** The reference implementation's defaults, which FLUX.1-dev's own scheduler config repeats. */
    public static final SchedulerConfig REFERENCE = new SchedulerConfig(0.5, 1.15, 256, 4096);

    /** Reads the snapshot's scheduler config; a snapshot without one gets the reference defaults. */
    public static SchedulerConfig of(Path snapshotRoot) {
        Path file = snapshotRoot.resolve("scheduler").resolve("scheduler_config.json");
        if (!Files.exists(file)) {
            return REFERENCE;
        }
        JsonNode c = JsonFiles.read(file, "the flow-matching scheduler configuration");
        SchedulerConfig s = new SchedulerConfig(
                number(c, file, "base_shift", REFERENCE.baseShift),
                number(c, file, "max_shift", REFERENCE.maxShift),
                (int) number(c, file, "base_image_seq_len", REFERENCE.baseSeqLen),
                (int) number(c, file, "max_image_seq_len", REFERENCE.maxSeqLen));
        if (s.maxSeqLen <= s.baseSeqLen) {
            throw new ModelException(
                    file + ": max_image_seq_len " + s.maxSeqLen + " must exceed base_image_seq_len " + s.baseSeqLen);
        }
        return s;
    }

    private static double number(JsonNode c, Path file, String key, double fallback) {
        JsonNode v = c.get(key);
        if (v == null || v.isNull()) {
            return fallback;
        }
        if (!v.isNumber()) {
            throw new ModelException(file + ": " + key + " is " + v + ", expected a number");
        }
        return v.asDouble();
    }

    /** mu for an image of {@code seqLen} latent tokens. */
    public double mu(int seqLen) {
        double slope = (maxShift - baseShift) / (maxSeqLen - baseSeqLen);
        return slope * seqLen + (baseShift - slope * baseSeqLen);
    }
}
