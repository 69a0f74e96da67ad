package ai.fluxbatch.model.flux;

import ai.fluxbatch.model.ModelException;
import ai.fluxbatch.model.ShapeReader;
import ai.fluxbatch.model.quant.QuantizationConfig;
import ai.fluxbatch.model.safetensors.TensorSource;
import com.fasterxml.jackson.databind.JsonNode;
import java.nio.file.Path;
import java.util.Arrays;

/**
 * Derives a {@link FluxConfig} from the tensors of a checkpoint in the reference (original) naming, then checks
 * it against the diffusers-schema {@code transformer/config.json}. No size is assumed: every model of the family loads.
 */
public final class FluxConfigReader {
    private static final double ROPE_THETA = 10_000;

    private FluxConfigReader() {}

    public static FluxConfig derive(TensorSource weights, JsonNode config, Path configFile) {
        QuantizationConfig.check(config, configFile, weights); // a quantization_config fluxbatch cannot read: refused
        ShapeReader s = new ShapeReader(weights, config, configFile);
        int hidden = s.dim("img_in.weight", 2, 0);
        int inChannels = s.dim("img_in.weight", 2, 1);
        int depth = s.countLayers("double_blocks");
        int depthSingle = s.countLayers("single_blocks");
        String normScale =
                depth > 0 ? "double_blocks.0.img_attn.norm.query_norm.scale" : "single_blocks.0.norm.query_norm.scale";
        int headDim = s.dim(normScale, 1, 0);
        if (headDim <= 0 || hidden % headDim != 0) {
            throw new ModelException("tensor '" + normScale + "' has length " + headDim + ", which does not divide"
                    + " the hidden size " + hidden + " (from img_in.weight)");
        }
        int heads = hidden / headDim;
        int mlpHidden = depth > 0
                ? s.outFeatures("double_blocks.0.img_mlp.0.weight")
                : s.outFeatures("single_blocks.0.linear1.weight") - 3 * hidden;
        int contextDim = s.dim("txt_in.weight", 2, 1);
        int vecDim = s.dim("vector_in.in_layer.weight", 2, 1);
        boolean guidance = s.contains("guidance_in.in_layer.weight");
        int outChannels = s.dim("final_layer.linear.weight", 2, 0);
        int[] axes = ropeAxes(config, configFile, headDim);

        s.check("num_attention_heads", heads, "hidden " + hidden + " / query_norm.scale length " + headDim);
        s.check("attention_head_dim", headDim, normScale);
        s.check("num_layers", depth, "double_blocks.* in the checkpoint");
        s.check("num_single_layers", depthSingle, "single_blocks.* in the checkpoint");
        s.check("joint_attention_dim", contextDim, "txt_in.weight");
        s.check("pooled_projection_dim", vecDim, "vector_in.in_layer.weight");
        s.check("in_channels", inChannels, "img_in.weight");
        s.check("out_channels", outChannels, "final_layer.linear.weight");
        JsonNode g = config.get("guidance_embeds");
        if (g != null && !g.isNull() && g.asBoolean() != guidance) {
            throw new ModelException(configFile + ": guidance_embeds is " + g.asBoolean() + " but the checkpoint "
                    + (guidance ? "has" : "has no") + " guidance_in.* tensors");
        }
        return new FluxConfig(
                inChannels,
                outChannels,
                hidden,
                heads,
                mlpHidden,
                depth,
                depthSingle,
                contextDim,
                vecDim,
                guidance,
                axes,
                ROPE_THETA);
    }

    private static int[] ropeAxes(JsonNode config, Path file, int headDim) {
        JsonNode v = config.get("axes_dims_rope");
        if (v == null || !v.isArray() || v.isEmpty()) {
            throw new ModelException(file + ": axes_dims_rope is missing, expected a list of RoPE axis dimensions");
        }
        int[] axes = new int[v.size()];
        for (int i = 0; i < axes.length; i++) {
            if (!v.get(i).canConvertToInt() || v.get(i).asInt() <= 0 || v.get(i).asInt() % 2 != 0) {
                throw new ModelException(file + ": axes_dims_rope must be positive even integers, got " + v);
            }
            axes[i] = v.get(i).asInt();
        }
        if (Arrays.stream(axes).sum() != headDim) {
            throw new ModelException(file + ": axes_dims_rope " + v + " add up to "
                    + Arrays.stream(axes).sum() + ", expected the head dimension " + headDim);
        }
        return axes;
    }
}
