package ai.fluxbatch.model.quant;

import ai.fluxbatch.model.ModelException;
import ai.fluxbatch.model.safetensors.DType;
import ai.fluxbatch.model.safetensors.TensorInfo;
import ai.fluxbatch.model.safetensors.TensorSource;
import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.math.BigDecimal;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.regex.Pattern;

/**
 * The {@code quantization_config} of a 1.58-bit snapshot's {@code transformer/config.json}: the ternary format of
 * its checkpoint described where diffusers and transformers look for a quantized model's format, with their key
 * names where they have one ({@code quant_method}, {@code bits}, {@code modules_to_not_convert}).
 *
 * <p>{@code quant_method} is the key their loaders dispatch on: {@value #QUANT_METHOD} is none of theirs, so
 * diffusers' {@code from_pretrained} stops with "Unknown quantization type" instead of reading the packed U8 codes as
 * weights (and a loader that ignores the config meets packed shapes, {@code (ceil(out/4), in)}, that fit no layer).
 * fluxbatch's own loader ({@link #check}) refuses a config it does not know, or one that disagrees with the
 * checkpoint's {@code __metadata__}, before any weight is read.
 */
public final class QuantizationConfig {
    /** The key in {@code transformer/config.json}. */
    public static final String KEY = "quantization_config";

    /** What {@code quant_method} says: the checkpoint format's name, {@link TernaryFormat#FORMAT}. */
    public static final String QUANT_METHOD = TernaryFormat.FORMAT;

    /** One line on {@link TernaryFormat#PACKING}, for readers of the config. */
    public static final String PACKING_DESCRIPTION = "2-bit codes (code + 1, for codes -1, 0, +1), four per byte along"
            + " dim 0 in quarter blocks: bits 2i..2i+1 of packed row r hold row i * ceil(out / 4) + r; U8, shape"
            + " (ceil(out / 4), in)";

    /** How the scales are laid out. */
    public static final String SCALE_LAYOUT = "per output channel: float32 tensor <layer>.weight_scale of shape (out);"
            + " weight = codes * weight_scale[:, None]";

    /** A weight inside a transformer block, in the original or the diffusers naming. */
    private static final Pattern BLOCK_WEIGHT = Pattern.compile(
            "^(double_blocks|single_blocks|transformer_blocks|single_transformer_blocks)\\.\\d+\\..+\\.weight$");

    private static final String ORIGINAL_BLOCKS = "^(double_blocks|single_blocks)\\.\\d+\\..+$";
    private static final String DIFFUSERS_BLOCKS = "^(transformer_blocks|single_transformer_blocks)\\.\\d+\\..+$";

    private static final ObjectMapper JSON = new ObjectMapper()
            .enable(DeserializationFeature.USE_BIG_DECIMAL_FOR_FLOATS)
            .setNodeFactory(JsonNodeFactory.withExactBigDecimals(true))
            .enable(SerializationFeature.INDENT_OUTPUT);

    private QuantizationConfig() {}

    /**
     * The block layers of a checkpoint: those stored as ternary codes with scales, and the 2-D block weights still
     * in full precision (a partial quantization, {@code --layers}), with their parameter counts.
     *
     * @param pattern       a regular expression over layer names that matches every block layer, in the checkpoint's naming
     */
    public record Layers(
            String pattern,
            List<String> ternary,
            List<String> fullPrecision,
            long ternaryParameters,
            long blockParameters) {
        public Layers {
            ternary = List.copyOf(ternary);
            fullPrecision = List.copyOf(fullPrecision);
        }

        /** Reads them from a checkpoint's header. */
        public static Layers of(TensorSource checkpoint) {
            List<String> ternary = new ArrayList<>(), full = new ArrayList<>();
            long ternaryParams = 0, all = 0;
            boolean diffusers = false;
            for (String name : checkpoint.names()) {
                if (!BLOCK_WEIGHT.matcher(name).matches()) {
                    continue;
                }
                diffusers |= name.startsWith("transformer_blocks.") || name.startsWith("single_transformer_blocks.");
                TensorInfo info = checkpoint.info(name);
                String layer = name.substring(0, name.length() - ".weight".length());
                String scale = TernaryFormat.scaleName(name);
                if (info.dtype() == DType.U8 && checkpoint.contains(scale) && info.shape().length == 2) {
                    long params = checkpoint.info(scale).numel() * info.shape()[1];
                    ternary.add(layer);
                    ternaryParams += params;
                    all += params;
                } else if (info.shape().length == 2) {
                    full.add(layer);
                    all += info.numel();
                }
            }
            return new Layers(diffusers ? DIFFUSERS_BLOCKS : ORIGINAL_BLOCKS, ternary, full, ternaryParams, all);
        }
    }

    /**
     * The {@code quantization_config} describing a quantized checkpoint: from its {@code __metadata__} the format,
     * version, method, packing and calibration; from its header the layers.
     */
    public static ObjectNode of(Map<String, String> metadata, Layers layers, Path checkpoint) {
        String format = metadata.get(TernaryFormat.KEY_FORMAT);
        if (!QUANT_METHOD.equals(format)) {
            throw new ModelException(checkpoint + " is not a " + QUANT_METHOD + " checkpoint (its __metadata__ has "
                    + TernaryFormat.KEY_FORMAT + " = " + format + "): expected a checkpoint fluxbatch quantized");
        }
        ObjectNode c = JSON.createObjectNode();
        c.put("quant_method", QUANT_METHOD);
        c.put("format_version", metadata.getOrDefault(TernaryFormat.KEY_VERSION, TernaryFormat.VERSION));
        c.put("method", metadata.getOrDefault(TernaryFormat.KEY_METHOD, "unknown"));
        c.put("bits", new BigDecimal("1.58"));
        c.put("weight_dtype", "uint8");
        c.put("packing", metadata.getOrDefault(TernaryFormat.KEY_PACKING, TernaryFormat.PACKING));
        c.put("packing_description", PACKING_DESCRIPTION);
        c.put("scale_dtype", "float32");
        c.put("scale_layout", SCALE_LAYOUT);
        c.put("modules", layers.pattern());
        ArrayNode keep = c.putArray("modules_to_not_convert");
        layers.fullPrecision().forEach(keep::add);
        c.put("quantized_modules", layers.ternary().size());
        ObjectNode calibration = c.putObject("calibration");
        calibration.put("statistics", metadata.getOrDefault(TernaryFormat.KEY_CALIBRATION, "none"));
        String prefix = TernaryFormat.KEY_CALIBRATION + "_";
        metadata.forEach((k, v) -> {
            if (k.startsWith(prefix)) {
                calibration.put(k.substring(prefix.length()), v);
            }
        });
        return c;
    }

    /**
     * {@code transformer/config.json} as text: {@code source} (the source's config, every other key kept as it is) with
     * {@code quantization_config} set to {@code config} (replacing one a partly quantized source had).
     */
    public static String configJson(JsonNode source, ObjectNode config) {
        ObjectNode out = JSON.createObjectNode();
        source.fields().forEachRemaining(e -> {
            if (!e.getKey().equals(KEY)) {
                out.set(e.getKey(), e.getValue());
            }
        });
        out.set(KEY, config);
        try {
            return JSON.writeValueAsString(out) + "\n";
        } catch (com.fasterxml.jackson.core.JsonProcessingException e) {
            throw new IllegalStateException("cannot write the transformer config: " + e.getMessage(), e);
        }
    }

    /** A config file read as {@link #configJson} writes it: floats kept as written. */
    public static JsonNode parse(String json) {
        try {
            return JSON.readTree(json);
        } catch (com.fasterxml.jackson.core.JsonProcessingException e) {
            throw new ModelException("not valid JSON: " + e.getOriginalMessage(), e);
        }
    }

    /**
     * What fluxbatch's loader checks before it reads any weight: a {@code quantization_config} in {@code config} (read
     * from {@code configFile}) must be {@value #QUANT_METHOD} in a version this build reads, the checkpoint {@code
     * weights} must be quantized, and the config's format, version, method and packing must be those of the
     * checkpoint's {@code __metadata__}. No {@code quantization_config} (a full-precision snapshot, or one quantized
     * before configs carried it) passes.
     */
    public static void check(JsonNode config, Path configFile, TensorSource weights) {
        JsonNode c = config.get(KEY);
        if (c == null || c.isNull()) {
            return;
        }
        if (!c.isObject()) {
            throw new ModelException(configFile + ": " + KEY + " is " + c + ", expected an object with quant_method");
        }
        String quantMethod = text(c, "quant_method");
        if (!QUANT_METHOD.equals(quantMethod)) {
            throw new ModelException(configFile + ": " + KEY + ".quant_method is " + quote(quantMethod)
                    + ", which fluxbatch does not read: it loads full-precision transformers and its own "
                    + QUANT_METHOD
                    + " format only (this one was quantized by another tool); refusing to read its weights");
        }
        String version = text(c, "format_version");
        if (!TernaryFormat.VERSION.equals(version)) {
            throw new ModelException(configFile + ": " + KEY + ".format_version is " + quote(version) + ", but this"
                    + " fluxbatch reads " + QUANT_METHOD + " version " + TernaryFormat.VERSION
                    + " only (written by a newer fluxbatch?); refusing to read its weights");
        }
        Map<String, String> meta = weights.metadata();
        String checkpoint = weights.names().isEmpty()
                ? "the transformer checkpoint"
                : "the transformer checkpoint " + weights.file(weights.names().first());
        if (!meta.containsKey(TernaryFormat.KEY_FORMAT)) {
            throw new ModelException(configFile + ": " + KEY + " says the transformer is quantized (" + QUANT_METHOD
                    + ", method " + text(c, "method") + "), but " + checkpoint + " is full precision (no "
                    + TernaryFormat.KEY_FORMAT + " in its __metadata__): the config belongs to another checkpoint");
        }
        agree(configFile, checkpoint, "quant_method", quantMethod, meta, TernaryFormat.KEY_FORMAT);
        agree(configFile, checkpoint, "format_version", version, meta, TernaryFormat.KEY_VERSION);
        agree(configFile, checkpoint, "method", text(c, "method"), meta, TernaryFormat.KEY_METHOD);
        if (c.has("packing") && meta.containsKey(TernaryFormat.KEY_PACKING)) {
            agree(configFile, checkpoint, "packing", text(c, "packing"), meta, TernaryFormat.KEY_PACKING);
        }
    }

    private static void agree(
            Path configFile, String checkpoint, String key, String value, Map<String, String> meta, String metaKey) {
        String recorded = meta.get(metaKey);
        if (!String.valueOf(recorded).equals(value)) {
            throw new ModelException(configFile + ": " + KEY + "." + key + " is " + quote(value) + ", but " + checkpoint
                    + " records " + metaKey + " = " + quote(recorded) + " in its __metadata__: the config and the"
                    + " weights do not belong together; refusing to read them");
        }
    }

    private static String text(JsonNode c, String key) {
        JsonNode v = c.get(key);
        return v == null || v.isNull() ? null : v.isValueNode() ? v.asText() : v.toString();
    }

    private static String quote(String s) {
        return s == null ? "missing" : "'" + s + "'";
    }
}
