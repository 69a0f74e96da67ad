package ai.fluxbatch.jobs.generate;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.fluxbatch.jobs.prompts.PromptRow;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

class ImageTaskTest {
    private static PromptRow row(long index, String prompt, Long seed, Map<String, String> fields) {
        return new PromptRow(index, "p.jsonl", index, prompt, fields, seed, null);
    }

    @Test
    void theSeedColumnIsPartOfTheId() {
        ImageTask one = ImageTask.of(row(0, "a red circle", 1L, Map.of()), 0, 0);
        ImageTask two = ImageTask.of(row(1, "a red circle", 2L, Map.of()), 0, 0);
        assertNotEquals(one.id(), two.id());
    }

    @Test
    void rowsWithoutASeedKeepTheirIds() {
        // sha256("p.jsonl\0a red circle\00"), as every earlier version named this image: re-runs still skip it
        assertEquals(
                "b010bd99ef1240a7e84c",
                ImageTask.of(row(0, "a red circle", null, Map.of()), 0, 7).id());
    }

    @Test
    void oneTaskPerFile() {
        List<ImageTask> tasks = List.of(
                ImageTask.of(row(0, "a", 1L, Map.of()), 0, 0),
                ImageTask.of(row(1, "a", 2L, Map.of()), 0, 0),
                ImageTask.of(row(2, "a", 1L, Map.of()), 0, 0), // repeats row 0
                ImageTask.of(row(3, "red/circle", null, Map.of()), 0, 0),
                ImageTask.of(row(4, "red circle", null, Map.of()), 0, 0));
        StringWriter said = new StringWriter();
        List<ImageTask> todo = GenerateJob.oneTaskPerFile(tasks, OutputLayout.DEFAULT, new PrintWriter(said, true));
        assertEquals(List.of(0L, 1L, 3L, 4L), todo.stream().map(ImageTask::row).toList());
        assertTrue(todo.stream().allMatch(t -> t.error() == null));
        assertEquals(
                "generate: 1 rows repeat an earlier row (same source, prompt and seed), so their images are made"
                        + " and listed once: p.jsonl row 2 (as row 0)\n",
                said.toString());

        List<ImageTask> t2i = GenerateJob.oneTaskPerFile(
                tasks, OutputLayout.T2I_COMPBENCH, new PrintWriter(new StringWriter(), true));
        assertEquals(List.of(0L, 1L, 3L, 4L), t2i.stream().map(ImageTask::row).toList());
        assertEquals(
                "the t2i-compbench layout puts this image in prompts/samples/a_000000.png, the file of p.jsonl"
                        + " row 0 (seed 1)",
                t2i.get(1).error(),
                "seed 2 would overwrite seed 1's file");
        assertEquals(null, t2i.get(2).error(), "red/circle and red circle are different files");
        assertEquals(null, t2i.get(3).error());
    }

    @Test
    void aRowSeedThatWouldOverflowIsAnErrorRowNotAWrappedSeed() {
        ImageTask first = ImageTask.of(row(0, "a", Long.MAX_VALUE, Map.of()), 0, 0);
        assertEquals(Long.MAX_VALUE, first.seed());
        assertEquals(null, first.error());
        ImageTask second = ImageTask.of(row(0, "a", Long.MAX_VALUE, Map.of()), 1, 0);
        assertTrue(second.seed() >= 0, "never a wrapped, negative seed");
        assertEquals(
                "seed 9223372036854775807 + image index 1 is more than the largest seed, 9223372036854775807",
                second.error());
    }
}
