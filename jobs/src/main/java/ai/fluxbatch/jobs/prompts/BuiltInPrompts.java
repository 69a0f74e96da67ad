package ai.fluxbatch.jobs.prompts;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStream;
import java.io.InputStreamReader;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;

/**
 * Prompt sets that ship inside the jobs jar, named on the command line in place of a path ({@code --prompts
 * paper-7232}). A name is looked up before the value is treated as a path, so a file of that name in the working
 * folder is not read. Each set is a resource of one prompt a line; its README says where the prompts came from.
 */
public final class BuiltInPrompts {
    /** The paper's calibration set: all 1,632 PartiPrompts and the 5,600 T2I-CompBench training prompts. */
    public static final String PAPER_7232 = "paper-7232";

    private static final List<String> NAMES = List.of(PAPER_7232);
    private static final String FOLDER = "/ai/fluxbatch/jobs/prompts/";

    private BuiltInPrompts() {}

    public static boolean isName(String value) {
        return NAMES.contains(value);
    }

    public static List<String> names() {
        return NAMES;
    }

    /** The prompts of the set {@code name}, in order. */
    public static List<String> prompts(String name) {
        if (!isName(name)) {
            throw new IllegalArgumentException("no built-in prompt set '" + name + "': expected one of " + NAMES);
        }
        String resource = FOLDER + name + ".txt";
        try (InputStream in = BuiltInPrompts.class.getResourceAsStream(resource)) {
            if (in == null) {
                throw new IllegalStateException("built-in prompt set " + name + " is missing from the class path ("
                        + resource + "): a broken build");
            }
            List<String> prompts = new ArrayList<>();
            BufferedReader reader = new BufferedReader(new InputStreamReader(in, StandardCharsets.UTF_8));
            for (String line; (line = reader.readLine()) != null; ) {
                if (!line.isBlank()) {
                    prompts.add(line.strip());
                }
            }
            return prompts;
        } catch (IOException e) {
            throw new UncheckedIOException("cannot read built-in prompt set " + resource + ": " + e.getMessage(), e);
        }
    }

    /** The set as dataset rows: source is the set's name, row the 0-based line. */
    static List<PromptRow> rows(String name) {
        List<String> prompts = prompts(name);
        List<PromptRow> rows = new ArrayList<>(prompts.size());
        for (String p : prompts) {
            rows.add(PromptRow.of(rows.size(), name, rows.size(), p, new LinkedHashMap<>()));
        }
        return rows;
    }
}
