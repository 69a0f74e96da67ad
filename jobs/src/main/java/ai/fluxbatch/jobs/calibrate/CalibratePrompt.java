package ai.fluxbatch.jobs.calibrate;

import java.io.Serializable;

/** One prompt to run: its position in the dataset (for messages), its text and the seed of its noise. */
public record CalibratePrompt(long index, String prompt, long seed) implements Serializable {}
