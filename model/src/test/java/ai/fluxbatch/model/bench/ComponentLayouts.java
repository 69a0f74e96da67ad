package ai.fluxbatch.model.bench;

import java.util.LinkedHashMap;
import java.util.Map;

/**
 * The tensor names and shapes ({@code name -> shape}) of FLUX.1's other components, as their checkpoints store them:
 * the T5 v1.1 encoder ({@code text_encoder_2/}, Hugging Face names), the CLIP text model ({@code text_encoder/}) and
 * the autoencoder ({@code ae.safetensors}, reference names), from their hyper-parameters. With the golden
 * miniature's hyper-parameters they give its files' headers exactly (checked by {@code InferenceMemoryTest}); with
 * FLUX.1's they give T5-XXL, CLIP-L and the FLUX autoencoder, whose weights are not in this repository.
 */
final class ComponentLayouts {
    private ComponentLayouts() {}

    /** T5 v1.1 encoder hyper-parameters ({@code config.json}: vocab_size, d_model, num_heads, d_kv, d_ff, ...). */
    record T5(int vocab, int dModel, int heads, int dKv, int dFf, int layers, int buckets) {
        /** FLUX.1's text_encoder_2: google/t5-v1_1-xxl's encoder. */
        static final T5 XXL = new T5(32128, 4096, 64, 64, 10240, 24, 32);

        T5 withLayers(int n) {
            return new T5(vocab, dModel, heads, dKv, dFf, n, buckets);
        }
    }

    /** CLIP text model hyper-parameters ({@code config.json}). */
    record Clip(int vocab, int hidden, int heads, int intermediate, int layers, int positions) {
        /** FLUX.1's text_encoder: openai/clip-vit-large-patch14's text model. */
        static final Clip L = new Clip(49408, 768, 12, 3072, 12, 77);
    }

    /** Autoencoder hyper-parameters ({@code vae/config.json}, diffusers schema). */
    record Vae(int[] channels, int layersPerBlock, int latent, int inChannels, int outChannels) {
        /** FLUX.1's autoencoder. */
        static final Vae FLUX = new Vae(new int[] {128, 256, 512, 512}, 2, 16, 3, 3);
    }

    static Map<String, long[]> t5(T5 c) {
        Map<String, long[]> l = new LinkedHashMap<>();
        int inner = c.heads() * c.dKv(), d = c.dModel();
        l.put("shared.weight", new long[] {c.vocab(), d});
        for (int i = 0; i < c.layers(); i++) {
            String a = "encoder.block." + i + ".layer.0.", f = "encoder.block." + i + ".layer.1.";
            for (String m : new String[] {"q", "k", "v"}) {
                l.put(a + "SelfAttention." + m + ".weight", new long[] {inner, d});
            }
            l.put(a + "SelfAttention.o.weight", new long[] {d, inner});
            if (i == 0) {
                l.put(a + "SelfAttention.relative_attention_bias.weight", new long[] {c.buckets(), c.heads()});
            }
            l.put(a + "layer_norm.weight", new long[] {d});
            l.put(f + "DenseReluDense.wi_0.weight", new long[] {c.dFf(), d});
            l.put(f + "DenseReluDense.wi_1.weight", new long[] {c.dFf(), d});
            l.put(f + "DenseReluDense.wo.weight", new long[] {d, c.dFf()});
            l.put(f + "layer_norm.weight", new long[] {d});
        }
        l.put("encoder.final_layer_norm.weight", new long[] {d});
        return l;
    }

    static Map<String, long[]> clip(Clip c) {
        Map<String, long[]> l = new LinkedHashMap<>();
        String p = "text_model.";
        int h = c.hidden();
        l.put(p + "embeddings.token_embedding.weight", new long[] {c.vocab(), h});
        l.put(p + "embeddings.position_embedding.weight", new long[] {c.positions(), h});
        for (int i = 0; i < c.layers(); i++) {
            String q = p + "encoder.layers." + i + ".";
            vector(l, q + "layer_norm1", h);
            for (String m : new String[] {"q_proj", "k_proj", "v_proj", "out_proj"}) {
                linear(l, q + "self_attn." + m, h, h);
            }
            vector(l, q + "layer_norm2", h);
            linear(l, q + "mlp.fc1", c.intermediate(), h);
            linear(l, q + "mlp.fc2", h, c.intermediate());
        }
        vector(l, p + "final_layer_norm", h);
        return l;
    }

    static Map<String, long[]> autoencoder(Vae c) {
        Map<String, long[]> l = new LinkedHashMap<>();
        int[] ch = c.channels();
        int levels = ch.length, last = ch[levels - 1];
        conv(l, "encoder.conv_in", ch[0], c.inChannels(), 3);
        for (int i = 0; i < levels; i++) {
            int in = i == 0 ? ch[0] : ch[i - 1];
            for (int j = 0; j < c.layersPerBlock(); j++) {
                resnet(l, "encoder.down." + i + ".block." + j, j == 0 ? in : ch[i], ch[i]);
            }
            if (i < levels - 1) {
                conv(l, "encoder.down." + i + ".downsample.conv", ch[i], ch[i], 3);
            }
        }
        middle(l, "encoder.mid", last);
        vector(l, "encoder.norm_out", last);
        conv(l, "encoder.conv_out", 2 * c.latent(), last, 3);

        conv(l, "decoder.conv_in", last, c.latent(), 3);
        middle(l, "decoder.mid", last);
        for (int i = levels - 1; i >= 0; i--) {
            int in = i == levels - 1 ? last : ch[i + 1];
            for (int j = 0; j <= c.layersPerBlock(); j++) {
                resnet(l, "decoder.up." + i + ".block." + j, j == 0 ? in : ch[i], ch[i]);
            }
            if (i > 0) {
                conv(l, "decoder.up." + i + ".upsample.conv", ch[i], ch[i], 3);
            }
        }
        vector(l, "decoder.norm_out", ch[0]);
        conv(l, "decoder.conv_out", c.outChannels(), ch[0], 3);
        return l;
    }

    private static void resnet(Map<String, long[]> l, String p, int in, int out) {
        vector(l, p + ".norm1", in);
        conv(l, p + ".conv1", out, in, 3);
        vector(l, p + ".norm2", out);
        conv(l, p + ".conv2", out, out, 3);
        if (in != out) {
            conv(l, p + ".nin_shortcut", out, in, 1);
        }
    }

    private static void middle(Map<String, long[]> l, String p, int c) {
        resnet(l, p + ".block_1", c, c);
        vector(l, p + ".attn_1.norm", c);
        for (String m : new String[] {"q", "k", "v", "proj_out"}) {
            conv(l, p + ".attn_1." + m, c, c, 1);
        }
        resnet(l, p + ".block_2", c, c);
    }

    private static void conv(Map<String, long[]> l, String p, int out, int in, int k) {
        l.put(p + ".weight", new long[] {out, in, k, k});
        l.put(p + ".bias", new long[] {out});
    }

    private static void linear(Map<String, long[]> l, String p, int out, int in) {
        l.put(p + ".weight", new long[] {out, in});
        l.put(p + ".bias", new long[] {out});
    }

    private static void vector(Map<String, long[]> l, String p, int n) {
        l.put(p + ".weight", new long[] {n});
        l.put(p + ".bias", new long[] {n});
    }

    /** Elements of all tensors. */
    static long params(Map<String, long[]> layout) {
        long n = 0;
        for (long[] s : layout.values()) {
            long e = 1;
            for (long d : s) {
                e = Math.multiplyExact(e, d);
            }
            n += e;
        }
        return n;
    }
}
