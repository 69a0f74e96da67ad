package ai.fluxbatch.model.quant;

import ai.fluxbatch.model.snapshot.FluxSnapshot;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.function.BiFunction;
import java.util.regex.Pattern;

/**
 * The README.md model card of a 1.58-bit snapshot, as the Hugging Face Hub reads one: YAML front matter ({@code
 * base_model} when the source's repository is known, {@code base_model_relation: quantized}, {@code library_name},
 * {@code pipeline_tag}, the source card's {@code license} entries, tags), then the source, method, calibration,
 * storage, measured quality and how to run it. Every figure comes from the written files and their metadata, or from
 * an evaluation the caller passes: nothing is estimated.
 *
 * @param source          the source as the user named it (folder or URI)
 * @param baseModel       the source's Hub repository id, or null when not known
 * @param license         the source card's {@code license}, {@code license_name}, {@code license_link} that it has
 * @param metadata        the quantized checkpoint's {@code __metadata__}
 * @param quantizedFiles  the quantized transformer's files in the snapshot (relative names)
 * @param sourceFiles     the source transformer's files that were read (relative names)
 * @param quality         lines of Markdown on measured quality; empty when not measured
 */
public record ModelCard(
        String source,
        String baseModel,
        Map<String, String> license,
        Map<String, String> metadata,
        QuantizationConfig.Layers layers,
        List<String> quantizedFiles,
        long quantizedBytes,
        List<String> sourceFiles,
        long sourceBytes,
        List<String> quality) {
    public static final String FILE = "README.md";
    public static final String LIBRARY = "fluxbatch";
    public static final List<String> TAGS =
            List.of("flux", "text-to-image", "1.58-bit", "ternary", "quantized", LIBRARY);

    /** The card's front matter keys copied from the source card when it has them. */
    private static final List<String> LICENSE_KEYS = List.of("license", "license_name", "license_link");

    private static final Pattern REPO_ID = Pattern.compile("^[A-Za-z0-9][A-Za-z0-9._-]*/[A-Za-z0-9][A-Za-z0-9._-]*$");
    private static final Pattern PLAIN = Pattern.compile("^[A-Za-z0-9][A-Za-z0-9._/+-]*$");
    private static final Pattern YAML_SPECIAL = Pattern.compile(
            "(?i)^(true|false|yes|no|on|off|null|y|n|~|[-+]?[0-9][0-9_]*(\\.[0-9_]*)?([eE][-+]?[0-9]+)?)$");

    public ModelCard {
        license = new LinkedHashMap<>(license);
        metadata = new LinkedHashMap<>(metadata);
        quantizedFiles = List.copyOf(quantizedFiles);
        sourceFiles = List.copyOf(sourceFiles);
        quality = List.copyOf(quality);
    }

    /**
     * What the caller knows beyond the files: how the user named the source, and measured quality, as Markdown lines
     * for the written checkpoint's {@code __metadata__} and layers (none: not measured).
     */
    public record Notes(
            String source, BiFunction<Map<String, String>, QuantizationConfig.Layers, List<String>> quality) {
        /** The source folder, quality not measured. */
        public static Notes of(FluxSnapshot source) {
            return new Notes(source.root().toAbsolutePath().normalize().toString(), (metadata, layers) -> List.of());
        }
    }

    /**
     * The source's Hub repository id where the source says it: the card's own {@code base_model} when the source is a
     * 1.58-bit snapshot fluxbatch made (the same base), else the repository of a Hugging Face cache's snapshot folder
     * ({@code models--ORG--NAME/snapshots/REV}), else {@code _name_or_path} of its {@code model_index.json} when that
     * is a repository id; else null.
     */
    public static String baseModel(FluxSnapshot source, Map<String, String> sourceCard, boolean sourceQuantized) {
        String carried = sourceCard.get("base_model");
        if (sourceQuantized && carried != null && REPO_ID.matcher(carried).matches()) {
            return carried;
        }
        Path root = source.root().toAbsolutePath().normalize();
        Path parent = root.getParent();
        if (parent != null
                && parent.getParent() != null
                && String.valueOf(parent.getFileName()).equals("snapshots")) {
            String repo = String.valueOf(parent.getParent().getFileName());
            if (repo.startsWith("models--") && repo.indexOf("--", 8) > 8) {
                int cut = repo.indexOf("--", 8);
                String id = repo.substring(8, cut) + "/" + repo.substring(cut + 2);
                if (REPO_ID.matcher(id).matches()) {
                    return id;
                }
            }
        }
        Path index = source.root().resolve(SnapshotFiles.MODEL_INDEX);
        if (Files.isRegularFile(index)) {
            try {
                JsonNode name = new ObjectMapper().readTree(index.toFile()).get("_name_or_path");
                if (name != null
                        && name.isTextual()
                        && REPO_ID.matcher(name.asText()).matches()) {
                    return name.asText();
                }
            } catch (IOException e) {
                return null; // an unreadable index says nothing about the repository; the loaders report it
            }
        }
        return null;
    }

    /** The licence entries of a source card's front matter that it has, in card order. */
    public static Map<String, String> license(Map<String, String> sourceCard) {
        Map<String, String> out = new LinkedHashMap<>();
        for (String k : LICENSE_KEYS) {
            if (sourceCard.containsKey(k)) {
                out.put(k, sourceCard.get(k));
            }
        }
        return out;
    }

    /**
     * The top-level scalar entries of a README's YAML front matter (a list's first item for a list), or none when it
     * has none. Read by hand: the model module has no YAML parser, and a card's licence and base model are plain
     * top-level entries ({@code key: value}, quoted or not, or a one-item list).
     */
    public static Map<String, String> frontMatter(Path readme) {
        Map<String, String> out = new LinkedHashMap<>();
        if (!Files.isRegularFile(readme)) {
            return out;
        }
        List<String> lines;
        try {
            lines = Files.readAllLines(readme, StandardCharsets.UTF_8);
        } catch (IOException e) {
            return out; // not readable as UTF-8 text: a card we cannot read says nothing
        }
        if (lines.isEmpty() || !lines.get(0).strip().equals("---")) {
            return out;
        }
        String listKey = null;
        for (int i = 1; i < lines.size(); i++) {
            String line = lines.get(i);
            if (line.strip().equals("---")) {
                break;
            }
            if (line.isBlank() || line.startsWith("#")) {
                continue;
            }
            if (listKey != null && line.strip().startsWith("- ")) {
                out.putIfAbsent(listKey, unquote(line.strip().substring(2).strip()));
                continue;
            }
            listKey = null;
            if (Character.isWhitespace(line.charAt(0))) {
                continue; // inside a nested value
            }
            int colon = line.indexOf(':');
            if (colon <= 0) {
                continue;
            }
            String key = line.substring(0, colon).strip();
            String value = line.substring(colon + 1).strip();
            if (value.isEmpty()) {
                listKey = key;
            } else if (value.startsWith("[") && value.endsWith("]")) {
                String first =
                        value.substring(1, value.length() - 1).split(",")[0].strip();
                if (!first.isEmpty()) {
                    out.put(key, unquote(first));
                }
            } else {
                out.put(key, unquote(value));
            }
        }
        return out;
    }

    private static String unquote(String v) {
        if (v.length() >= 2 && ((v.startsWith("\"") && v.endsWith("\"")) || (v.startsWith("'") && v.endsWith("'")))) {
            String inner = v.substring(1, v.length() - 1);
            return v.startsWith("'")
                    ? inner.replace("''", "'")
                    : inner.replace("\\\"", "\"").replace("\\\\", "\\");
        }
        int comment = v.indexOf(" #");
        return comment >= 0 ? v.substring(0, comment).strip() : v;
    }

    /** The card as Markdown with its front matter. */
    public String render() {
        StringBuilder b = new StringBuilder();
        b.append("---\n");
        if (baseModel != null) {
            b.append("base_model: ").append(yaml(baseModel)).append('\n');
            b.append("base_model_relation: quantized\n");
        }
        b.append("library_name: ").append(LIBRARY).append('\n');
        b.append("pipeline_tag: text-to-image\n");
        license.forEach((k, v) -> b.append(k).append(": ").append(yaml(v)).append('\n'));
        b.append("tags:\n");
        for (String t : TAGS) {
            b.append("- ").append(yaml(t)).append('\n');
        }
        b.append("---\n\n");

        String method = metadata.getOrDefault(TernaryFormat.KEY_METHOD, "unknown");
        b.append("# ")
                .append(baseModel != null ? baseModel : "FLUX.1")
                .append(", 1.58-bit (")
                .append(method)
                .append(")\n\n");
        b.append("The FLUX.1 transformer of the source below with its block linear layers stored as ternary codes"
                + " {-1, 0, +1} and one float32 scale per output channel (1.58 bits per weight), made by"
                + " `fluxbatch quantize`. The text encoders, tokenizers, scheduler and autoencoder are the source's,"
                + " unchanged.\n\n");

        b.append("## Source\n\n");
        b.append("- model: `").append(source).append("`\n");
        if (baseModel != null) {
            b.append("- Hub repository: [")
                    .append(baseModel)
                    .append("](https://huggingface.co/")
                    .append(baseModel)
                    .append(")\n");
        }
        b.append("- transformer checkpoint: `")
                .append(metadata.getOrDefault(TernaryFormat.KEY_SOURCE, "unknown"))
                .append("`, SHA-256 `")
                .append(metadata.getOrDefault(TernaryFormat.KEY_SOURCE_SHA256, "unknown"))
                .append("`\n\n");

        b.append("## Method\n\n");
        b.append("- `").append(method).append("`: ").append(describe(method)).append('\n');
        b.append(String.format(
                Locale.ROOT,
                "- ternary: %d of %d block linear layers, %,d of %,d block linear parameters (%.2f %%)%n",
                layers.ternary().size(),
                layers.ternary().size() + layers.fullPrecision().size(),
                layers.ternaryParameters(),
                layers.blockParameters(),
                layers.blockParameters() == 0 ? 0.0 : 100.0 * layers.ternaryParameters() / layers.blockParameters()));
        if (!layers.fullPrecision().isEmpty()) {
            b.append("- kept in full precision: ")
                    .append(layers.fullPrecision().size())
                    .append(" block layers (a partial quantization; listed in `transformer/config.json`)\n");
        }
        b.append("- every other tensor (embeddings, norms, biases, the final layer) as in the source\n\n");

        b.append("## Calibration\n\n");
        String calibration = metadata.getOrDefault(TernaryFormat.KEY_CALIBRATION, "none");
        if (calibration.equals("none")) {
            b.append("None: `").append(TernaryFormat.baseMethod(method)).append("` reads the weights alone.\n\n");
        } else {
            b.append("- statistics: ")
                    .append(value("file"))
                    .append(" (")
                    .append(calibration)
                    .append(")\n");
            if (metadata.containsKey(key("prompts"))) {
                b.append("- prompts: ").append(value("prompts"));
                if (metadata.containsKey(key("prompt_count"))) {
                    b.append(" (").append(metadata.get(key("prompt_count"))).append(" prompts)");
                }
                b.append('\n');
            }
            if (metadata.containsKey(key("steps"))) {
                b.append("- sampling: ").append(metadata.get(key("steps"))).append(" steps");
                if (metadata.containsKey(key("recorded_steps"))) {
                    b.append(", recorded at steps ").append(value("recorded_steps"));
                }
                if (metadata.containsKey(key("height")) && metadata.containsKey(key("width"))) {
                    b.append(", ")
                            .append(metadata.get(key("height")))
                            .append(" x ")
                            .append(metadata.get(key("width")));
                }
                if (metadata.containsKey(key("guidance"))) {
                    b.append(", guidance ").append(metadata.get(key("guidance")));
                }
                b.append('\n');
            }
            if (metadata.containsKey(key("model"))) {
                b.append("- recorded on: ").append(value("model")).append('\n');
            }
            b.append('\n');
        }
        if (metadata.containsKey("distill_steps")) {
            b.append("## Distillation\n\n");
            b.append("Scales and biases then trained by `fluxbatch distill` against the full-precision model, the"
                    + " ternary codes unchanged: ");
            b.append(metadata.get("distill_steps")).append(" steps");
            if (metadata.containsKey("distill_samples")) {
                b.append(", ").append(metadata.get("distill_samples")).append(" samples");
            }
            if (metadata.containsKey("distill_prompts")) {
                b.append(" from `").append(metadata.get("distill_prompts")).append('`');
                if (metadata.containsKey("distill_prompt_count")) {
                    b.append(" (").append(metadata.get("distill_prompt_count")).append(" prompts)");
                }
            }
            if (metadata.containsKey("distill_first_loss") && metadata.containsKey("distill_last_loss")) {
                b.append(", loss ")
                        .append(metadata.get("distill_first_loss"))
                        .append(" -> ")
                        .append(metadata.get("distill_last_loss"));
            }
            b.append(".\n\n");
        }

        b.append("## Storage\n\n");
        b.append("| transformer | files | bytes |\n| --- | --- | --- |\n");
        b.append(row("1.58-bit (this snapshot)", quantizedFiles, quantizedBytes));
        b.append(row("source, as read", sourceFiles, sourceBytes));
        if (quantizedBytes > 0 && sourceBytes > 0) {
            b.append(String.format(
                    Locale.ROOT,
                    "%nThe 1.58-bit transformer is %.1fx smaller than the source's.%n",
                    (double) sourceBytes / quantizedBytes));
        }
        b.append('\n');

        b.append("## Quality\n\n");
        if (quality.isEmpty()) {
            b.append("quality: not measured; run `fluxbatch evaluate --reference <the source> --quantized <this"
                    + " folder> --prompts <held-out prompts> --output <report>` to measure it against the"
                    + " full-precision model.\n\n");
        } else {
            quality.forEach(l -> b.append(l).append('\n'));
            b.append('\n');
        }

        b.append("## Use\n\n");
        b.append("With fluxbatch (Java 17; `--prompts FILE --master URL` spreads a prompt file over a Spark"
                + " cluster):\n\n");
        b.append(
                "```\nbin/fluxbatch generate --model <this folder> --prompt \"a photo of a cat\" --output images/\n```\n\n");
        b.append("Only fluxbatch reads this transformer: `transformer/config.json` carries a `quantization_config` with"
                        + " `quant_method: ")
                .append(QuantizationConfig.QUANT_METHOD)
                .append("`, which diffusers and transformers do not know, so their loaders refuse it instead of"
                        + " reading the packed codes as weights.\n\n");

        b.append("## Format\n\n");
        b.append("`")
                .append(QuantizationConfig.QUANT_METHOD)
                .append("` version ")
                .append(metadata.getOrDefault(TernaryFormat.KEY_VERSION, TernaryFormat.VERSION))
                .append(", safetensors with the source's tensor names:\n\n");
        b.append("- `<layer>.weight`: ")
                .append(QuantizationConfig.PACKING_DESCRIPTION)
                .append('\n');
        b.append("- scales: ").append(QuantizationConfig.SCALE_LAYOUT).append('\n');
        b.append("- `__metadata__`: format, version, method, packing, source file and SHA-256, calibration\n");
        return b.toString();
    }

    private static String describe(String method) {
        String base = TernaryFormat.baseMethod(method);
        String d = switch (base) {
            case "absmean" ->
                "per output channel, scale = mean |W| over the row, codes = clamp(round(W /"
                        + " scale), -1, 1); reads the weights alone";
            case "refit" ->
                "absmean's codes, each output channel's scale refit by least squares under the"
                        + " calibration inputs' covariance; the mean error moved into the bias";
            case "gptq" ->
                "GPTQ on the ternary grid: input channels quantized one at a time, each rounding"
                        + " error spread over the channels not yet quantized through the calibration inputs'"
                        + " covariance, scales refit by least squares; the mean error moved into the bias";
            default -> "a method this fluxbatch does not describe";
        };
        return method.endsWith(TernaryFormat.DISTILL_SUFFIX) ? d + "; then scales and biases distilled (below)" : d;
    }

    private String key(String k) {
        return TernaryFormat.KEY_CALIBRATION + "_" + k;
    }

    private String value(String k) {
        return "`" + metadata.getOrDefault(key(k), "unknown") + "`";
    }

    private static String row(String what, List<String> files, long bytes) {
        String names = files.size() <= 3
                ? String.join(", ", files.stream().map(f -> "`" + f + "`").toList())
                : files.size() + " files";
        return String.format(Locale.ROOT, "| %s | %s | %,d (%s) |%n", what, names, bytes, human(bytes));
    }

    static String human(long bytes) {
        double b = bytes;
        String[] units = {"B", "KiB", "MiB", "GiB", "TiB"};
        int u = 0;
        while (b >= 1024 && u < units.length - 1) {
            b /= 1024;
            u++;
        }
        return u == 0 ? bytes + " B" : String.format(Locale.ROOT, "%.2f %s", b, units[u]);
    }

    /** A YAML scalar: plain where that reads back as the same string, else double-quoted (JSON escapes). */
    static String yaml(String v) {
        if (PLAIN.matcher(v).matches() && !YAML_SPECIAL.matcher(v).matches()) {
            return v;
        }
        StringBuilder q = new StringBuilder("\"");
        for (char c : v.toCharArray()) {
            switch (c) {
                case '"' -> q.append("\\\"");
                case '\\' -> q.append("\\\\");
                case '\n' -> q.append("\\n");
                case '\t' -> q.append("\\t");
                default -> {
                    if (c < 0x20) {
                        q.append(String.format(Locale.ROOT, "\\u%04x", (int) c));
                    } else {
                        q.append(c);
                    }
                }
            }
        }
        return q.append('"').toString();
    }
}
