package ai.fluxbatch.jobs.generate;

import java.util.Locale;

/**
 * Where each image goes under the output. {@code default}: {@code images/<id>.png}. {@code geneval}:
 * {@code <prompt index, 5 digits>/samples/<image index, 5 digits>.png} (with the prompt's {@code metadata.jsonl} beside
 * {@code samples/}), as the GenEval evaluator reads them. {@code t2i-compbench}: {@code <category>/samples/<prompt>_<image
 * index, 6 digits>.png}, as its evaluators read them (category from the file name, e.g. color_val.txt). Parts that
 * come from the data (category, prompt) go through {@link SafeName}: plain prompts keep their names, anything that
 * could leave the folder or break a path is escaped.
 */
public enum OutputLayout {
    DEFAULT,
    GENEVAL,
    T2I_COMPBENCH;

    public static OutputLayout parse(String s) {
        return switch (s.toLowerCase(Locale.ROOT)) {
            case "default" -> DEFAULT;
            case "geneval" -> GENEVAL;
            case "t2i-compbench" -> T2I_COMPBENCH;
            default ->
                throw new IllegalArgumentException(
                        "--layout is '" + s + "', expected default, geneval or t2i-compbench");
        };
    }

    /** As {@code --layout} names it. */
    public String optionValue() {
        return name().toLowerCase(Locale.ROOT).replace('_', '-');
    }

    public String path(ImageTask t) {
        return switch (this) {
            case DEFAULT -> "images/" + t.id() + ".png";
            case GENEVAL -> String.format(Locale.ROOT, "%05d/samples/%05d.png", t.promptIndex(), t.imageIndex());
            case T2I_COMPBENCH ->
                SafeName.of(t.fields().getOrDefault("category", "prompts")) + "/samples/" + SafeName.of(t.prompt())
                        + String.format(Locale.ROOT, "_%06d.png", t.imageIndex());
        };
    }
}
