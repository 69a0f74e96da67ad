package ai.fluxbatch.model.snapshot;

import ai.fluxbatch.model.JsonFiles;
import ai.fluxbatch.model.ModelException;
import ai.fluxbatch.model.safetensors.DType;
import ai.fluxbatch.model.safetensors.HalfFloats;
import ai.fluxbatch.model.safetensors.SafetensorsWriter;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Iterator;
import java.util.Map;
import java.util.SplittableRandom;

/**
 * A transformer snapshot of random BF16 weights with the tensor names and shapes of a layout file (the real
 * FLUX.1 checkpoints' layouts are in the golden data), for scale tests: streamed, never more than a few MB in memory.
 * Weights are uniform with the variance of a 1/sqrt(fan-in) initialisation; norm scales are 1, biases small.
 * Beside the transformer and its {@code transformer/config.json}, {@code vae/config.json} holds FLUX.1's autoencoder
 * configuration (the layout describes the transformer only), so that what a snapshot's configs decide, such as the
 * default image size, is FLUX.1's.
 */
public final class SyntheticSnapshot {
    private static final int CHUNK = 1 << 20;

    /** The autoencoder configuration of FLUX.1-dev and -schnell ({@code vae/config.json}; both ship the same one). */
    private static final String FLUX1_VAE_CONFIG = """
            {
              "_class_name": "AutoencoderKL",
              "act_fn": "silu",
              "block_out_channels": [128, 256, 512, 512],
              "down_block_types": ["DownEncoderBlock2D", "DownEncoderBlock2D", "DownEncoderBlock2D", "DownEncoderBlock2D"],
              "force_upcast": true,
              "in_channels": 3,
              "latent_channels": 16,
              "latents_mean": null,
              "latents_std": null,
              "layers_per_block": 2,
              "mid_block_add_attention": true,
              "norm_num_groups": 32,
              "out_channels": 3,
              "sample_size": 1024,
              "scaling_factor": 0.3611,
              "shift_factor": 0.1159,
              "up_block_types": ["UpDecoderBlock2D", "UpDecoderBlock2D", "UpDecoderBlock2D", "UpDecoderBlock2D"],
              "use_post_quant_conv": false,
              "use_quant_conv": false
            }
            """;

    private SyntheticSnapshot() {}

    /** Random weights, seeded by {@code seed}: every byte written (23.8 GB for FLUX.1's layout). */
    public static void write(Path layoutFile, Path outputDir, int[] axesDims, long seed) {
        write(layoutFile, outputDir, axesDims, seed, false);
    }

    /**
     * All-zero weights, never written: the checkpoint is a sparse file, the layout's full header and size in next to no
     * time or disk space. For what reads a snapshot without running it: option defaults, file checks, planning.
     */
    public static void writeZeros(Path layoutFile, Path outputDir, int[] axesDims) {
        write(layoutFile, outputDir, axesDims, 0, true);
    }

    private static void write(Path layoutFile, Path outputDir, int[] axesDims, long seed, boolean zeros) {
        JsonNode layout = JsonFiles.read(layoutFile, "a checkpoint layout: {\"tensors\": {name: shape}}");
        JsonNode tensors = layout.get("tensors");
        if (tensors == null || !tensors.isObject() || tensors.isEmpty()) {
            throw new ModelException(layoutFile + ": expected a 'tensors' object mapping names to shapes");
        }
        boolean dev = tensors.has("guidance_in.in_layer.weight");
        SafetensorsWriter writer = new SafetensorsWriter()
                .metadata("format", "pt")
                .metadata(
                        "synthetic",
                        (zeros ? "all-zero" : "random") + " weights with the layout of " + layoutFile.getFileName());
        long index = 0;
        for (Iterator<Map.Entry<String, JsonNode>> it = tensors.fields(); it.hasNext(); index++) {
            Map.Entry<String, JsonNode> e = it.next();
            long[] shape = new long[e.getValue().size()];
            for (int i = 0; i < shape.length; i++) {
                shape[i] = e.getValue().get(i).asLong();
            }
            long tensorSeed = seed * 1_000_003L + index;
            String name = e.getKey();
            if (zeros) {
                writer.addZeros(name, DType.BF16, shape);
            } else {
                writer.add(name, DType.BF16, shape, out -> fill(out, name, shape, tensorSeed));
            }
        }
        try {
            Files.createDirectories(outputDir.resolve("transformer"));
            Files.writeString(outputDir.resolve("transformer").resolve("config.json"), config(tensors, axesDims, dev));
            Files.createDirectories(outputDir.resolve("vae"));
            Files.writeString(outputDir.resolve("vae").resolve("config.json"), FLUX1_VAE_CONFIG);
        } catch (IOException e) {
            throw new UncheckedIOException("cannot write " + outputDir + ": " + e.getMessage(), e);
        }
        writer.write(outputDir.resolve(dev ? "flux1-dev.safetensors" : "flux1-schnell.safetensors"));
    }

    private static void fill(java.nio.channels.WritableByteChannel out, String name, long[] shape, long seed)
            throws IOException {
        long n = 1;
        for (long d : shape) {
            n *= d;
        }
        SplittableRandom random = new SplittableRandom(seed);
        boolean normScale = name.endsWith(".scale");
        double amplitude = name.endsWith(".bias") ? 0.01 : Math.sqrt(3.0 / (shape.length > 1 ? shape[1] : 1));
        ByteBuffer buf = ByteBuffer.allocate(2 * CHUNK).order(ByteOrder.LITTLE_ENDIAN);
        for (long done = 0; done < n; ) {
            int len = (int) Math.min(CHUNK, n - done);
            buf.clear();
            for (int i = 0; i < len; i++) {
                float v = normScale ? 1f : (float) ((random.nextDouble() * 2 - 1) * amplitude);
                buf.putShort(HalfFloats.floatToBf16(v));
            }
            buf.flip();
            while (buf.hasRemaining()) {
                out.write(buf);
            }
            done += len;
        }
    }

    private static String config(JsonNode tensors, int[] axes, boolean dev) throws IOException {
        int hidden = tensors.get("img_in.weight").get(0).asInt();
        int headDim = tensors.get("double_blocks.0.img_attn.norm.query_norm.scale")
                .get(0)
                .asInt();
        int sum = 0;
        for (int a : axes) {
            sum += a;
        }
        if (sum != headDim) {
            throw new ModelException("RoPE axes add up to " + sum + " but the layout's head dimension is " + headDim);
        }
        int depth = 0, single = 0;
        for (Iterator<String> it = tensors.fieldNames(); it.hasNext(); ) {
            String n = it.next();
            if (n.matches("double_blocks\\.\\d+\\.img_attn\\.qkv\\.weight")) {
                depth++;
            } else if (n.matches("single_blocks\\.\\d+\\.linear1\\.weight")) {
                single++;
            }
        }
        ObjectNode c = new ObjectMapper().createObjectNode();
        c.put("_class_name", "FluxTransformer2DModel");
        c.put("attention_head_dim", headDim);
        c.putArray("axes_dims_rope")
                .addAll(java.util.Arrays.stream(axes)
                        .mapToObj(a -> (JsonNode) c.numberNode(a))
                        .toList());
        c.put("guidance_embeds", dev);
        c.put("in_channels", tensors.get("img_in.weight").get(1).asInt());
        c.put("joint_attention_dim", tensors.get("txt_in.weight").get(1).asInt());
        c.put("num_attention_heads", hidden / headDim);
        c.put("num_layers", depth);
        c.put("num_single_layers", single);
        c.put("patch_size", 1);
        c.put(
                "pooled_projection_dim",
                tensors.get("vector_in.in_layer.weight").get(1).asInt());
        return new ObjectMapper().writerWithDefaultPrettyPrinter().writeValueAsString(c);
    }
}
