package ai.fluxbatch.model.snapshot;

import java.util.ArrayList;
import java.util.Collection;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.SortedSet;
import java.util.TreeSet;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * The one name map between the diffusers layout ({@code FluxTransformer2DModel}, {@code AutoencoderKL}) and the
 * reference layout the model code reads (BFL's {@code flux1-dev.safetensors}, {@code ae.safetensors}). Each {@link
 * Entry} names one reference tensor and the diffusers tensors it is made of, and how: renamed, rows concatenated
 * ({@code img_attn.qkv = to_q ; to_k ; to_v}, {@code linear1 = to_q ; to_k ; to_v ; proj_mlp}), its two row halves
 * swapped ({@code final_layer.adaLN_modulation.1} is {@code norm_out.linear} with scale and shift exchanged) or a
 * linear weight seen as a 1 x 1 convolution (the autoencoder's attention). The same entries serve reading (a
 * diffusers snapshot seen under reference names) and writing (a quantized checkpoint written back in the source's
 * layout). Block counts come from the names present; {@link NameMap#check} refuses a map that leaves a diffusers
 * tensor unused or a required one missing.
 */
public final class DiffusersNames {
    /** How an entry's parts make the reference tensor. */
    public enum Join {
        /** One part, same shape. */
        RENAME,
        /** The parts' rows one after another (dim 0); every part has the same columns and dtype. */
        CONCAT_ROWS,
        /** One part whose two row halves are exchanged. */
        SWAP_HALVES,
        /** One part {@code [out, in]} seen as {@code [out, in, 1, 1]}. */
        CONV_1X1
    }

    /**
     * One reference tensor, {@code reference}, made of the diffusers tensors {@code parts} by {@code join}. A {@code
     * required} entry must be present in every snapshot of the model; the others (biases of optional layers, the
     * guidance embedder of schnell, quantization scales) may be absent as a whole, never in part.
     */
    public record Entry(String reference, List<String> parts, Join join, boolean required) {
        public Entry {
            Objects.requireNonNull(reference, "reference");
            Objects.requireNonNull(join, "join");
            parts = List.copyOf(parts);
            if (parts.isEmpty() || (join != Join.CONCAT_ROWS && parts.size() != 1)) {
                throw new IllegalArgumentException(reference + ": " + join + " of " + parts);
            }
        }
    }

    /** The entries of one component, in reference-name order, with lookups both ways. */
    public static final class NameMap {
        private final String component;
        private final Map<String, Entry> byReference;
        private final Map<String, Entry> byPart;

        NameMap(String component, List<Entry> entries) {
            this.component = component;
            Map<String, Entry> ref = new LinkedHashMap<>();
            Map<String, Entry> part = new LinkedHashMap<>();
            entries.stream()
                    .sorted(java.util.Comparator.comparing(Entry::reference))
                    .forEach(e -> {
                        if (ref.put(e.reference(), e) != null) {
                            throw new IllegalStateException("two entries for " + e.reference());
                        }
                        for (String p : e.parts()) {
                            if (part.put(p, e) != null) {
                                throw new IllegalStateException("diffusers tensor " + p + " in two entries");
                            }
                        }
                    });
            this.byReference = Collections.unmodifiableMap(ref);
            this.byPart = Collections.unmodifiableMap(part);
        }

        /** "transformer" or "autoencoder". */
        public String component() {
            return component;
        }

        /** The entry of a reference tensor name, or null. */
        public Entry forReference(String reference) {
            return byReference.get(reference);
        }

        /** The entry a diffusers tensor belongs to, or null when the map does not use it. */
        public Entry forPart(String diffusersName) {
            return byPart.get(diffusersName);
        }

        public Collection<Entry> entries() {
            return byReference.values();
        }

        /**
         * The problems of this map over the diffusers tensors {@code present} (file named {@code where} in messages),
         * or an empty list: a tensor no entry uses, an entry present only in part, a required entry absent.
         */
        public List<String> problems(Collection<String> present, String where) {
            return problems(present, where, true);
        }

        /** {@link #problems(Collection, String)}, where {@code whole} = false lets required entries be absent. */
        public List<String> problems(Collection<String> present, String where, boolean whole) {
            SortedSet<String> have = new TreeSet<>(present);
            List<String> problems = new ArrayList<>();
            SortedSet<String> unused = new TreeSet<>();
            for (String name : have) {
                if (!byPart.containsKey(name)) {
                    unused.add(name);
                }
            }
            if (!unused.isEmpty()) {
                problems.add("the diffusers " + component + " name map leaves " + unused.size() + " tensor(s) of "
                        + where + " unused: " + abbreviate(unused)
                        + " (not a FluxTransformer2DModel / AutoencoderKL tensor of FLUX.1)");
            }
            SortedSet<String> missing = new TreeSet<>();
            for (Entry e : byReference.values()) {
                long found = e.parts().stream().filter(have::contains).count();
                if (found > 0 && found < e.parts().size() || found == 0 && e.required() && whole) {
                    e.parts().stream().filter(p -> !have.contains(p)).forEach(missing::add);
                }
            }
            if (!missing.isEmpty()) {
                problems.add(missing.size() + " tensor(s) the diffusers " + component + " name map needs are missing"
                        + " from " + where + ": " + abbreviate(missing));
            }
            return problems;
        }

        private static String abbreviate(SortedSet<String> names) {
            List<String> first = names.stream().limit(8).toList();
            return String.join(", ", first) + (names.size() > first.size() ? ", ..." : "");
        }
    }

    private static final Pattern DOUBLE = Pattern.compile("^transformer_blocks\\.(\\d+)\\.");
    private static final Pattern SINGLE = Pattern.compile("^single_transformer_blocks\\.(\\d+)\\.");
    private static final Pattern DOWN = Pattern.compile("^encoder\\.down_blocks\\.(\\d+)\\.resnets\\.(\\d+)\\.");
    private static final Pattern UP = Pattern.compile("^decoder\\.up_blocks\\.(\\d+)\\.resnets\\.(\\d+)\\.");
    private static final Pattern MID = Pattern.compile("^(encoder|decoder)\\.mid_block\\.resnets\\.(\\d+)\\.");
    /** A linear layer's tensors: its weight, its bias, and in a 1.58-bit checkpoint its per-channel scale. */
    private static final List<String> LINEAR = List.of("weight", "bias", "weight_scale");

    private DiffusersNames() {}

    /** Whether these tensor names are diffusers' FluxTransformer2DModel names rather than the reference's. */
    public static boolean looksLikeTransformer(Collection<String> names) {
        return names.contains("x_embedder.weight") || names.contains("context_embedder.weight");
    }

    /** The transformer's map for the blocks that {@code diffusersNames} has. */
    public static NameMap transformer(Collection<String> diffusersNames) {
        List<Entry> e = new ArrayList<>();
        linear(e, "img_in", "x_embedder", true);
        linear(e, "txt_in", "context_embedder", true);
        embedder(e, "time_in", "time_text_embed.timestep_embedder", true);
        embedder(e, "vector_in", "time_text_embed.text_embedder", true);
        embedder(e, "guidance_in", "time_text_embed.guidance_embedder", false);
        for (int i : indices(diffusersNames, DOUBLE)) {
            String r = "double_blocks." + i + ".", d = "transformer_blocks." + i + ".";
            linear(e, r + "img_mod.lin", d + "norm1.linear", true);
            linear(e, r + "txt_mod.lin", d + "norm1_context.linear", true);
            concat(e, r + "img_attn.qkv", true, d + "attn.to_q", d + "attn.to_k", d + "attn.to_v");
            concat(e, r + "txt_attn.qkv", true, d + "attn.add_q_proj", d + "attn.add_k_proj", d + "attn.add_v_proj");
            vector(e, r + "img_attn.norm.query_norm.scale", d + "attn.norm_q.weight");
            vector(e, r + "img_attn.norm.key_norm.scale", d + "attn.norm_k.weight");
            vector(e, r + "txt_attn.norm.query_norm.scale", d + "attn.norm_added_q.weight");
            vector(e, r + "txt_attn.norm.key_norm.scale", d + "attn.norm_added_k.weight");
            linear(e, r + "img_attn.proj", d + "attn.to_out.0", true);
            linear(e, r + "txt_attn.proj", d + "attn.to_add_out", true);
            linear(e, r + "img_mlp.0", d + "ff.net.0.proj", true);
            linear(e, r + "img_mlp.2", d + "ff.net.2", true);
            linear(e, r + "txt_mlp.0", d + "ff_context.net.0.proj", true);
            linear(e, r + "txt_mlp.2", d + "ff_context.net.2", true);
        }
        for (int i : indices(diffusersNames, SINGLE)) {
            String r = "single_blocks." + i + ".", d = "single_transformer_blocks." + i + ".";
            linear(e, r + "modulation.lin", d + "norm.linear", true);
            concat(e, r + "linear1", true, d + "attn.to_q", d + "attn.to_k", d + "attn.to_v", d + "proj_mlp");
            linear(e, r + "linear2", d + "proj_out", true);
            vector(e, r + "norm.query_norm.scale", d + "attn.norm_q.weight");
            vector(e, r + "norm.key_norm.scale", d + "attn.norm_k.weight");
        }
        for (String s : List.of("weight", "bias")) {
            e.add(new Entry(
                    "final_layer.adaLN_modulation.1." + s, List.of("norm_out.linear." + s), Join.SWAP_HALVES, true));
        }
        linear(e, "final_layer.linear", "proj_out", true);
        return new NameMap("transformer", e);
    }

    /** The autoencoder's map for the levels and blocks that {@code diffusersNames} has. */
    public static NameMap autoencoder(Collection<String> diffusersNames) {
        List<Entry> e = new ArrayList<>();
        for (String side : List.of("encoder", "decoder")) {
            conv(e, side + ".conv_in", side + ".conv_in", true);
            conv(e, side + ".norm_out", side + ".conv_norm_out", true);
            conv(e, side + ".conv_out", side + ".conv_out", true);
            for (int j : midResnets(diffusersNames, side)) {
                resnet(e, side + ".mid.block_" + (j + 1), side + ".mid_block.resnets." + j);
            }
            String a = side + ".mid.attn_1.", d = side + ".mid_block.attentions.0.";
            conv(e, a + "norm", d + "group_norm", true);
            for (String[] qkvo :
                    new String[][] {{"q", "to_q"}, {"k", "to_k"}, {"v", "to_v"}, {"proj_out", "to_out.0"}}) {
                e.add(new Entry(a + qkvo[0] + ".weight", List.of(d + qkvo[1] + ".weight"), Join.CONV_1X1, true));
                e.add(new Entry(a + qkvo[0] + ".bias", List.of(d + qkvo[1] + ".bias"), Join.RENAME, true));
            }
        }
        // diffusers counts the decoder's levels from the lowest resolution up, the reference from the highest down
        List<Integer> up = indices(diffusersNames, UP);
        int levels = up.isEmpty() ? 0 : up.get(up.size() - 1) + 1;
        for (int[] level : blocks(diffusersNames, DOWN)) {
            String r = "encoder.down." + level[0] + ".", d = "encoder.down_blocks." + level[0] + ".";
            resnet(e, r + "block." + level[1], d + "resnets." + level[1]);
            if (level[1] == 0) {
                conv(e, r + "downsample.conv", d + "downsamplers.0.conv", false);
            }
        }
        for (int[] level : blocks(diffusersNames, UP)) {
            String r = "decoder.up." + (levels - 1 - level[0]) + ".", d = "decoder.up_blocks." + level[0] + ".";
            resnet(e, r + "block." + level[1], d + "resnets." + level[1]);
            if (level[1] == 0) {
                conv(e, r + "upsample.conv", d + "upsamplers.0.conv", false);
            }
        }
        conv(e, "quant_conv", "quant_conv", false);
        conv(e, "post_quant_conv", "post_quant_conv", false);
        return new NameMap("autoencoder", e);
    }

    private static void resnet(List<Entry> e, String r, String d) {
        for (String part : List.of("norm1", "conv1", "norm2", "conv2")) {
            conv(e, r + "." + part, d + "." + part, true);
        }
        conv(e, r + ".nin_shortcut", d + ".conv_shortcut", false);
    }

    private static void conv(List<Entry> e, String r, String d, boolean required) {
        for (String s : List.of("weight", "bias")) {
            e.add(new Entry(r + "." + s, List.of(d + "." + s), Join.RENAME, required));
        }
    }

    private static void linear(List<Entry> e, String r, String d, boolean required) {
        for (String s : LINEAR) {
            e.add(new Entry(r + "." + s, List.of(d + "." + s), Join.RENAME, required && s.equals("weight")));
        }
    }

    private static void concat(List<Entry> e, String r, boolean required, String... d) {
        for (String s : LINEAR) {
            List<String> parts = new ArrayList<>();
            for (String p : d) {
                parts.add(p + "." + s);
            }
            e.add(new Entry(r + "." + s, parts, Join.CONCAT_ROWS, required && s.equals("weight")));
        }
    }

    private static void vector(List<Entry> e, String r, String d) {
        e.add(new Entry(r, List.of(d), Join.RENAME, true));
    }

    private static void embedder(List<Entry> e, String r, String d, boolean required) {
        linear(e, r + ".in_layer", d + ".linear_1", required);
        linear(e, r + ".out_layer", d + ".linear_2", required);
    }

    private static List<Integer> indices(Collection<String> names, Pattern p) {
        SortedSet<Integer> found = new TreeSet<>();
        for (String n : names) {
            Matcher m = p.matcher(n);
            if (m.find()) {
                found.add(Integer.parseInt(m.group(1)));
            }
        }
        return List.copyOf(found);
    }

    private static List<Integer> midResnets(Collection<String> names, String side) {
        SortedSet<Integer> found = new TreeSet<>();
        for (String n : names) {
            Matcher m = MID.matcher(n);
            if (m.find() && m.group(1).equals(side)) {
                found.add(Integer.parseInt(m.group(2)));
            }
        }
        return List.copyOf(found);
    }

    /** {level, block} pairs of the resnets under {@code p}. */
    private static List<int[]> blocks(Collection<String> names, Pattern p) {
        SortedSet<String> seen = new TreeSet<>();
        List<int[]> out = new ArrayList<>();
        for (String n : names) {
            Matcher m = p.matcher(n);
            if (m.find() && seen.add(m.group(1) + "." + m.group(2))) {
                out.add(new int[] {Integer.parseInt(m.group(1)), Integer.parseInt(m.group(2))});
            }
        }
        return out;
    }
}
