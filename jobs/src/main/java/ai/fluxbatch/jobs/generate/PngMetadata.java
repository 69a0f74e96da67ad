package ai.fluxbatch.jobs.generate;

import ai.fluxbatch.jobs.cli.Version;
import ai.fluxbatch.model.pipeline.GenerationParams;
import java.util.LinkedHashMap;
import java.util.Locale;
import java.util.Map;

/**
 * The text chunks of a generated PNG: one per parameter, and {@code parameters} in the AUTOMATIC1111 / Forge form
 * ("prompt\nSteps: 20, Sampler: Euler, ..., Seed: 42, Size: 64x64, Model: name") that image browsers read.
 */
final class PngMetadata {
    private PngMetadata() {}

    static Map<String, String> of(
            ImageTask task, GenerationParams p, int maxSequenceLength, String modelName, String variant) {
        Map<String, String> text = new LinkedHashMap<>();
        text.put("prompt", task.prompt());
        text.put("seed", Long.toString(task.seed()));
        text.put("width", Integer.toString(p.width()));
        text.put("height", Integer.toString(p.height()));
        text.put("steps", Integer.toString(p.steps()));
        text.put("guidance", format(p.guidance()));
        text.put("max_sequence_length", Integer.toString(maxSequenceLength));
        text.put("model", modelName);
        text.put("software", "fluxbatch " + Version.get());
        text.put(
                "parameters",
                task.prompt() + "\nSteps: " + p.steps() + ", Sampler: Euler, Schedule type: "
                        + (variant.equals("schnell") ? "Simple" : "Shifted") + ", CFG scale: 1, Distilled CFG Scale: "
                        + format(p.guidance()) + ", Seed: " + task.seed() + ", Size: " + p.width() + "x" + p.height()
                        + ", Model: " + modelName + ", Version: fluxbatch " + Version.get());
        return text;
    }

    private static String format(float v) {
        return v == Math.rint(v) ? String.format(Locale.ROOT, "%.1f", v) : Float.toString(v);
    }
}
