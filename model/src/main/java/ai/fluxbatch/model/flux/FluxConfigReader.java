package ai.fluxbatch.model.flux;

import ai.fluxbatch.model.ModelException;
import ai.fluxbatch.model.safetensors.TensorInfo;
import ai.fluxbatch.model.safetensors.TensorSource;
import com.fasterxml.jackson.databind.JsonNode;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.TreeSet;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Derives a {@link FluxConfig} from the tensors of a checkpoint in the reference (original) naming, then checks
 * it against the diffusers-schema {@code transformer/config.json}. No size is assumed: every model of the family loads.
 */
public final class FluxConfigReader {
    private static final Pattern BLOCK = Pattern.compile("^(double_blocks|single_blocks)\\.(\\d+)\\.");
    private static final double ROPE_THETA = 10_000;

    private FluxConfigReader() {
    }

    public static FluxConfig derive(TensorSource weights, JsonNode config, Path configFile) {
        long[] imgIn = shape(weights, "img_in.weight", 2);
        int hidden = (int) imgIn[0];
        int inChannels = (int) imgIn[1];
        int depth = countBlocks(weights, "double_blocks");
        int depthSingle = countBlocks(weights, "single_blocks");
        String normScale = depth > 0 ? "double_blocks.0.img_attn.norm.query_norm.scale"
                : "single_blocks.0.norm.query_norm.scale";
        int headDim = (int) shape(weights, normScale, 1)[0];
        if (headDim <= 0 || hidden % headDim != 0) {
            throw new ModelException("tensor '" + normScale + "' has length " + headDim + ", which does not divide"
                    + " the hidden size " + hidden + " (from img_in.weight)");
        }
        int heads = hidden / headDim;
        int mlpHidden = depth > 0 ? (int) shape(weights, "double_blocks.0.img_mlp.0.weight", 2)[0]
                : (int) shape(weights, "single_blocks.0.linear1.weight", 2)[0] - 3 * hidden;
        int contextDim = (int) shape(weights, "txt_in.weight", 2)[1];
        int vecDim = (int) shape(weights, "vector_in.in_layer.weight", 2)[1];
        boolean guidance = weights.contains("guidance_in.in_layer.weight");
        int outChannels = (int) shape(weights, "final_layer.linear.weight", 2)[0];
        int[] axes = intArray(config, "axes_dims_rope", configFile);

        FluxConfig derived = new FluxConfig(inChannels, outChannels, hidden, heads, mlpHidden, depth, depthSingle,
                contextDim, vecDim, guidance, axes, ROPE_THETA);
        check(config, configFile, "num_attention_heads", heads, "query_norm.scale length " + headDim + " into hidden " + hidden);
        check(config, configFile, "attention_head_dim", headDim, normScale);
        check(config, configFile, "num_layers", depth, "double_blocks.* in the checkpoint");
        check(config, configFile, "num_single_layers", depthSingle, "single_blocks.* in the checkpoint");
        check(config, configFile, "joint_attention_dim", contextDim, "txt_in.weight");
        check(config, configFile, "pooled_projection_dim", vecDim, "vector_in.in_layer.weight");
        check(config, configFile, "in_channels", inChannels, "img_in.weight");
        JsonNode out = config.get("out_channels");
        if (out != null && !out.isNull()) {
            check(config, configFile, "out_channels", outChannels, "final_layer.linear.weight");
        }
        JsonNode g = config.get("guidance_embeds");
        if (g != null && !g.isNull() && g.asBoolean() != guidance) {
            throw new ModelException(configFile + ": guidance_embeds is " + g.asBoolean() + " but the checkpoint "
                    + (guidance ? "has" : "has no") + " guidance_in.* tensors");
        }
        if (Arrays.stream(axes).sum() != headDim) {
            throw new ModelException(configFile + ": axes_dims_rope " + Arrays.toString(axes) + " add up to "
                    + Arrays.stream(axes).sum() + ", expected the head dimension " + headDim);
        }
        for (int a : axes) {
            if (a <= 0 || a % 2 != 0) {
                throw new ModelException(configFile + ": axes_dims_rope " + Arrays.toString(axes)
                        + " must be positive even numbers");
            }
        }
        return derived;
    }

    private static long[] shape(TensorSource weights, String name, int rank) {
        TensorInfo info = weights.info(name);
        if (info.shape().length != rank) {
            throw new ModelException("tensor '" + name + "' in " + weights.file(name) + " has shape "
                    + Arrays.toString(info.shape()) + ", expected rank " + rank);
        }
        return info.shape();
    }

    private static int countBlocks(TensorSource weights, String kind) {
        TreeSet<Integer> indices = new TreeSet<>();
        for (String name : weights.names()) {
            Matcher m = BLOCK.matcher(name);
            if (m.find() && m.group(1).equals(kind)) {
                indices.add(Integer.parseInt(m.group(2)));
            }
        }
        if (!indices.isEmpty() && (indices.first() != 0 || indices.last() != indices.size() - 1)) {
            throw new ModelException("checkpoint has " + kind + " numbered " + indices + ": expected 0.."
                    + (indices.size() - 1) + " with none missing");
        }
        return indices.size();
    }

    private static void check(JsonNode config, Path file, String key, int derived, String from) {
        JsonNode v = config.get(key);
        if (v == null || v.isNull()) {
            return;
        }
        if (!v.canConvertToInt() || v.asInt() != derived) {
            throw new ModelException(file + ": " + key + " is " + v + " but the checkpoint gives " + derived
                    + " (from " + from + ")");
        }
    }

    private static int[] intArray(JsonNode config, String key, Path file) {
        JsonNode v = config.get(key);
        if (v == null || !v.isArray() || v.isEmpty()) {
            throw new ModelException(file + ": " + key + " is missing, expected a list of RoPE axis dimensions");
        }
        int[] out = new int[v.size()];
        for (int i = 0; i < out.length; i++) {
            if (!v.get(i).canConvertToInt()) {
                throw new ModelException(file + ": " + key + " must be a list of integers, got " + v);
            }
            out[i] = v.get(i).asInt();
        }
        return out;
    }
}
