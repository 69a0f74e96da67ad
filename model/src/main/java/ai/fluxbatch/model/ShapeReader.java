package ai.fluxbatch.model;

import ai.fluxbatch.model.safetensors.TensorInfo;
import ai.fluxbatch.model.safetensors.TensorSource;
import com.fasterxml.jackson.databind.JsonNode;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.TreeSet;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/** What config derivation needs: tensor shapes, numbered-layer counts, and checks of config.json against them. */
public final class ShapeReader {
    private final TensorSource weights;
    private final JsonNode config;
    private final Path configFile;

    public ShapeReader(TensorSource weights, JsonNode config, Path configFile) {
        this.weights = weights;
        this.config = config;
        this.configFile = configFile;
    }

    public long[] shape(String name, int rank) {
        TensorInfo info = weights.info(name);
        if (info.shape().length != rank) {
            throw new ModelException("tensor '" + name + "' in " + weights.file(name) + " has shape "
                    + Arrays.toString(info.shape()) + ", expected rank " + rank);
        }
        return info.shape();
    }

    public int dim(String name, int rank, int axis) {
        return Math.toIntExact(shape(name, rank)[axis]);
    }

    /** Output features of a linear weight: its rows, or its scales' length when it is packed 1.58-bit codes. */
    public int outFeatures(String weightName) {
        String scale = weightName + "_scale";
        return weights.contains(scale) ? dim(scale, 1, 0) : dim(weightName, 2, 0);
    }

    public boolean contains(String name) {
        return weights.contains(name);
    }

    /** How many layers {@code <prefix>.<i>.} there are, checking they are numbered 0..n-1. */
    public int countLayers(String prefix) {
        Pattern p = Pattern.compile("^" + Pattern.quote(prefix) + "\\.(\\d+)\\.");
        TreeSet<Integer> indices = new TreeSet<>();
        for (String name : weights.names()) {
            Matcher m = p.matcher(name);
            if (m.find()) {
                indices.add(Integer.parseInt(m.group(1)));
            }
        }
        if (!indices.isEmpty() && (indices.first() != 0 || indices.last() != indices.size() - 1)) {
            throw new ModelException("checkpoint has " + prefix + " numbered " + indices + ": expected 0.."
                    + (indices.size() - 1) + " with none missing");
        }
        return indices.size();
    }

    /** Fails when config.json sets {@code key} to something other than what the tensors give; absent keys pass. */
    public void check(String key, int derived, String from) {
        JsonNode v = config.get(key);
        if (v == null || v.isNull()) {
            return;
        }
        if (!v.canConvertToInt() || v.asInt() != derived) {
            throw new ModelException(configFile + ": " + key + " is " + v + " but the checkpoint gives " + derived
                    + " (from " + from + ")");
        }
    }

    public int intOr(String key, int fallback) {
        JsonNode v = config.get(key);
        if (v == null || v.isNull()) {
            return fallback;
        }
        if (!v.canConvertToInt()) {
            throw new ModelException(configFile + ": " + key + " is " + v + ", expected an integer");
        }
        return v.asInt();
    }

    public double doubleOr(String key, double fallback) {
        JsonNode v = config.get(key);
        if (v == null || v.isNull()) {
            return fallback;
        }
        if (!v.isNumber()) {
            throw new ModelException(configFile + ": " + key + " is " + v + ", expected a number");
        }
        return v.asDouble();
    }

    public String textOr(String key, String fallback) {
        JsonNode v = config.get(key);
        return v == null || v.isNull() ? fallback : v.asText();
    }

    public JsonNode config() {
        return config;
    }

    public Path configFile() {
        return configFile;
    }
}
