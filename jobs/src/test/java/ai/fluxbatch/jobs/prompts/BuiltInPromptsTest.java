package ai.fluxbatch.jobs.prompts;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.fluxbatch.model.Golden;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;

/** The shipped calibration set: the paper's 7,232 prompts, exactly, and none of the evaluation prompts. */
class BuiltInPromptsTest {
    private static final Path SOURCES = Golden.dir().resolveSibling("prompts");
    private final List<String> paper = BuiltInPrompts.prompts(BuiltInPrompts.PAPER_7232);

    @Test
    void holdsThePapersCountWithKnownPromptsOfBothSources() {
        assertEquals(7232, paper.size());
        assertEquals(1632 + 5600, paper.size());
        assertTrue(
                paper.contains("A robot painted as graffiti on a brick wall. The words \"Fly an airplane\" are"
                        + " written on the wall. A sidewalk is in front of the wall, and grass is growing out of cracks in the"
                        + " concrete."),
                "a PartiPrompt, its quotes kept");
        assertTrue(
                paper.contains("\"G I G G L E\" painted in thick colorful lettering as graffiti on a faded red brick"
                        + " wall with a splotch of exploding white paint."),
                "a PartiPrompt that starts with a quote");
        assertTrue(paper.contains("a green bench and a red car"), "a T2I-CompBench color_train prompt");
        assertFalse(paper.contains("a red circle on the left"), "not a shapes prompt");
    }

    @Test
    void isAllPartiPromptsThenEveryT2iCompBenchTrainingFileInNameOrder() throws IOException {
        List<String> expected = new ArrayList<>();
        List<String> parti = Files.readAllLines(SOURCES.resolve("PartiPrompts.tsv"), StandardCharsets.UTF_8);
        assertEquals("Prompt", parti.get(0).split("\t")[0]);
        for (String line : parti.subList(1, parti.size())) {
            expected.add(line.split("\t")[0].strip());
        }
        List<Path> train = files("*_train.txt");
        assertEquals(8, train.size(), train.toString());
        for (Path f : train) {
            for (String line : Files.readAllLines(f, StandardCharsets.UTF_8)) {
                if (!line.isBlank()) {
                    expected.add(line.strip());
                }
            }
        }
        assertEquals(expected.size(), paper.size());
        for (int i = 0; i < expected.size(); i++) {
            assertEquals(expected.get(i), paper.get(i), "prompt " + i);
        }
    }

    @Test
    void holdsNoEvaluationPrompt() throws IOException {
        Set<String> train = new HashSet<>();
        for (Path f : files("*_train.txt")) {
            train.addAll(Files.readAllLines(f).stream().map(String::strip).toList());
        }
        Set<String> set = new HashSet<>(paper);
        List<String> leaked = new ArrayList<>();
        int valPrompts = 0;
        for (Path f : files("*_val.txt")) {
            for (String line : Files.readAllLines(f)) {
                String p = line.strip();
                valPrompts += p.isEmpty() ? 0 : 1;
                // upstream lists two spatial prompts in both its train and val files: they count as training prompts
                if (!p.isEmpty() && set.contains(p) && !train.contains(p)) {
                    leaked.add(f.getFileName() + ": " + p);
                }
            }
        }
        assertTrue(valPrompts > 2000, "read the val files: " + valPrompts);
        for (String line : Files.readAllLines(SOURCES.resolve("shapes").resolve("eval.txt"))) {
            if (!line.isBlank() && set.contains(line.strip())) {
                leaked.add("shapes/eval.txt: " + line.strip());
            }
        }
        assertEquals(List.of(), leaked);
    }

    @Test
    void promptSourcesReadTheNameBeforeAnyPath() {
        List<PromptRow> rows = PromptSources.read(BuiltInPrompts.PAPER_7232, null, null); // no Spark needed
        assertEquals(7232, rows.size());
        assertEquals(BuiltInPrompts.PAPER_7232, rows.get(7231).source());
        assertEquals(7231, rows.get(7231).row());
        assertEquals(paper.get(7231), rows.get(7231).prompt());
        assertTrue(rows.stream().allMatch(r -> r.error() == null));
    }

    @Test
    void anUnknownNameIsRefusedNamingTheKnownOnes() {
        IllegalArgumentException e =
                assertThrows(IllegalArgumentException.class, () -> BuiltInPrompts.prompts("paper"));
        assertTrue(e.getMessage().contains("paper-7232"), e.getMessage());
    }

    private static List<Path> files(String glob) throws IOException {
        try (Stream<Path> s = Files.list(SOURCES.resolve("t2i-compbench"))) {
            var matcher = SOURCES.getFileSystem().getPathMatcher("glob:" + glob);
            return s.filter(p -> matcher.matches(p.getFileName())).sorted().toList();
        }
    }
}
