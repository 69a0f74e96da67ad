package ai.fluxbatch.model.distill;

import java.io.Serializable;

/**
 * One training sample: a prompt, the seed of its starting noise and the time {@code t} in (0, 1] at which the
 * student's velocity is compared with the teacher's (t = 1 is pure noise).
 */
public record DistillSample(String prompt, long seed, float time) implements Serializable {
    public DistillSample {
        if (!(time > 0f && time <= 1f)) {
            throw new IllegalArgumentException("distillation time must be in (0, 1], got " + time);
        }
    }
}
