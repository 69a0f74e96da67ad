package ai.fluxbatch.jobs.generate;

import com.fasterxml.jackson.annotation.JsonInclude;
import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.PropertyNamingStrategies;
import com.fasterxml.jackson.databind.SerializationFeature;
import com.fasterxml.jackson.databind.annotation.JsonNaming;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * What makes a generate output's images what they are, kept as {@value #FILE} under the output: the model (its
 * transformer fingerprint and quantization method), size, steps, guidance, T5 length, the seed rule (the base
 * {@code --seed}; rows with a seed column keep their own, so per-image seeds are not compared), the layout, the image
 * format (and JPEG quality) and the output format (and images per shard). A re-run
 * into the output compares its own manifest with the stored one before any work ({@link RunManifests#claim}).
 *
 * <p>Adding a setting is one component here (boxed, so that a manifest written before it existed reads it as null)
 * and its value in {@link #of}; its option name is {@code --} and its JSON name with dashes, unless {@link #LABELS}
 * names it otherwise. A setting an older manifest does not record is compared with {@link #OLDER_RUNS_DEFAULTS} (what
 * every run made before the setting existed used) where that map has it, and not compared otherwise.
 */
@JsonInclude(JsonInclude.Include.NON_NULL)
@JsonNaming(PropertyNamingStrategies.SnakeCaseStrategy.class)
public record RunManifest(
        String modelFingerprint,
        String quantization,
        Integer height,
        Integer width,
        Integer steps,
        Float guidance,
        Integer maxSequenceLength,
        Long seed,
        String layout,
        String imageFormat,
        Integer jpegQuality,
        String format,
        Integer imagesPerShard) {

    /** The manifest's name under the output. */
    public static final String FILE = "run.json";

    /** How a setting is named in messages, where {@code --} and its JSON name with dashes is not its option. */
    static final Map<String, String> LABELS = Map.of(
            "model_fingerprint", "--model (its transformer fingerprint)",
            "quantization", "--model (its quantization method)");

    /** What runs before a setting was recorded used, so that their manifests compare as such (JSON name, value). */
    static final Map<String, JsonNode> OLDER_RUNS_DEFAULTS = Map.of(
            "image_format", com.fasterxml.jackson.databind.node.TextNode.valueOf("png"),
            "format", com.fasterxml.jackson.databind.node.TextNode.valueOf("files"));

    private static final ObjectMapper JSON = new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT);

    /** The manifest of a run with {@code s} and base seed {@code seed}. */
    public static RunManifest of(GenerateSettings s, long seed) {
        return new RunManifest(
                s.modelChecksum(),
                s.quantization(),
                s.height(),
                s.width(),
                s.steps(),
                s.guidance(),
                s.maxSequenceLength(),
                seed,
                s.layout().optionValue(),
                s.imageFormat() == ImageFormat.JPEG ? "jpeg" : "png",
                s.imageFormat() == ImageFormat.JPEG ? s.jpegQuality() : null,
                s.format().optionValue(),
                s.format() == OutputFormat.WEBDATASET ? s.imagesPerShard() : null);
    }

    /** This manifest as the JSON text of {@value #FILE}. */
    public byte[] toJson() {
        try {
            return (JSON.writeValueAsString(this) + "\n").getBytes(StandardCharsets.UTF_8);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /** Parses the text of a {@value #FILE}; {@code name} names it in the error. */
    static ObjectNode parse(byte[] json, String name) throws IOException {
        JsonNode node;
        try {
            node = JSON.readTree(json);
        } catch (JsonProcessingException e) {
            throw new IOException(name + " is not valid JSON: " + e.getOriginalMessage(), e);
        }
        if (!(node instanceof ObjectNode o)) {
            throw new IOException(name + " is not a JSON object of run settings");
        }
        return o;
    }

    /**
     * How this run's manifest differs from {@code stored} (an output's {@value #FILE}), one sentence per setting, in
     * the order of the components; empty when this run may resume the output.
     */
    public List<String> differences(ObjectNode stored) {
        ObjectNode now;
        try {
            now = parse(toJson(), FILE); // through JSON text as the stored one, so 3.5f and 3.5 compare equal
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        Set<String> names = new LinkedHashSet<>();
        now.fieldNames().forEachRemaining(names::add);
        stored.fieldNames().forEachRemaining(names::add);
        List<String> out = new ArrayList<>();
        for (String name : names) {
            JsonNode was = stored.has(name) ? stored.get(name) : OLDER_RUNS_DEFAULTS.get(name);
            JsonNode asks = now.get(name);
            if (was == null || was.isNull()) {
                continue; // not recorded by the run that made the output, and no known default: not compared
            }
            if (asks == null) {
                out.add(label(name) + ": the output was made with " + text(was)
                        + ", a setting this version of fluxbatch does not know");
            } else if (!text(was).equals(text(asks))) {
                out.add(label(name) + ": the output was made with " + text(was) + ", this run asks for " + text(asks));
            }
        }
        return out;
    }

    static String label(String jsonName) {
        return LABELS.getOrDefault(jsonName, "--" + jsonName.replace('_', '-'));
    }

    private static String text(JsonNode n) {
        return n.isValueNode() ? n.asText() : n.toString();
    }
}
