package ai.fluxbatch.jobs.eval;

import ai.fluxbatch.model.ModelException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;

/**
 * The measured quality a model card states, from a report {@code fluxbatch evaluate --output} wrote ({@link
 * ReportJson}): the one candidate quantized with the card's method and calibration, measured against the card's
 * source. Anything else is refused, so that a card never states the figures of another model.
 */
public final class ReportQuality {
    private ReportQuality() {}

    /**
     * What the card's quantization is: its method and calibration as the checkpoint records them ("none" or
     * "sha256:..."), and how many of its block linear parameters are ternary, of how many.
     */
    public record Quantization(String method, String calibration, long ternaryParameters, long blockParameters) {
        boolean matches(JsonNode c) {
            return c.path("quantization_method").asText().equals(method)
                    && c.path("calibration").asText().equals(calibration)
                    && c.path("ternary_parameters").asLong(-1) == ternaryParameters
                    && c.path("block_linear_parameters").asLong(-1) == blockParameters;
        }

        @Override
        public String toString() {
            return "method " + method + ", calibration " + calibration + ", " + ternaryParameters + " of "
                    + blockParameters + " block linear parameters ternary";
        }
    }

    /**
     * Markdown lines on the one candidate of {@code report} quantized as {@code expected}, measured against {@code
     * source}; anything else is refused, naming the report.
     */
    public static List<String> lines(Path report, Path source, Quantization expected) {
        JsonNode root = read(report);
        JsonNode reference = root.path("reference");
        String measuredAgainst = reference.path("model").asText(null);
        Path src = source.toAbsolutePath().normalize();
        if (measuredAgainst == null
                || !Path.of(measuredAgainst).toAbsolutePath().normalize().equals(src)) {
            throw new ModelException("evaluation report " + report + " was measured against " + measuredAgainst
                    + ", not against the source " + src + ": its figures are not this snapshot's");
        }
        List<JsonNode> matching = new ArrayList<>();
        List<String> seen = new ArrayList<>();
        for (JsonNode c : root.path("candidates")) {
            seen.add(c.path("model").asText() + " ("
                    + c.path("quantization_method").asText() + ", "
                    + c.path("calibration").asText() + ", "
                    + c.path("ternary_parameters").asText() + " of "
                    + c.path("block_linear_parameters").asText() + " ternary)");
            if (expected.matches(c)) {
                matching.add(c);
            }
        }
        if (matching.size() != 1) {
            throw new ModelException("evaluation report " + report + " has " + matching.size() + " candidates quantized"
                    + " as this snapshot is (" + expected + "); its candidates: " + seen + ": expected exactly one");
        }
        JsonNode c = matching.get(0), problem = root.path("problem");
        String refMethod = reference.path("quantization_method").asText("none");
        List<String> lines = new ArrayList<>();
        lines.add(String.format(
                Locale.ROOT,
                "Measured by `fluxbatch evaluate` against the %s on %d prompt%s (seeds from %d), %d x %d, %d steps,"
                        + " guidance %s:",
                refMethod.equals("none") ? "full-precision source" : "source (itself quantized: " + refMethod + ")",
                problem.path("prompts").asInt(),
                problem.path("prompts").asInt() == 1 ? "" : "s",
                problem.path("first_seed").asLong(),
                problem.path("height").asInt(),
                problem.path("width").asInt(),
                problem.path("steps").asInt(),
                problem.path("guidance").asText()));
        lines.add("");
        lines.add("| metric | value |");
        lines.add("| --- | --- |");
        lines.add(String.format(
                Locale.ROOT,
                "| final latent, relative L2 error | %.4g |",
                c.path("final_latent_rel_l2").asDouble()));
        lines.add(String.format(
                Locale.ROOT,
                "| 8-bit images, PSNR against the source's | %.2f dB (mean over images %.2f dB) |",
                c.path("psnr_db").asDouble(),
                c.path("mean_image_psnr_db").asDouble()));
        lines.add(String.format(
                Locale.ROOT,
                "| transformer output on the source's trajectory, relative L2 error, mean over steps | %.4g |",
                c.path("mean_step_rel_l2").asDouble()));
        return lines;
    }

    private static JsonNode read(Path report) {
        if (!Files.isRegularFile(report)) {
            throw new ModelException("evaluation report " + report + " is missing: expected the FILE.json that"
                    + " fluxbatch evaluate --output FILE wrote");
        }
        try {
            JsonNode root = new ObjectMapper().readTree(report.toFile());
            if (root == null
                    || !root.path("candidates").isArray()
                    || !root.path("reference").isObject()) {
                throw new ModelException("evaluation report " + report + " has no reference and candidates:"
                        + " expected the FILE.json that fluxbatch evaluate --output FILE wrote");
            }
            return root;
        } catch (IOException e) {
            throw new ModelException("evaluation report " + report + " is not valid JSON (" + e.getMessage() + ")", e);
        }
    }
}
