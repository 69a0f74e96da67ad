package ai.fluxbatch.jobs;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.util.ArrayList;
import java.util.List;
import java.util.function.Function;
import org.junit.jupiter.api.Test;

/** A failed batch is run again item by item, so that a bad item fails alone. */
class BatchRetryTest {
    private final List<List<String>> runs = new ArrayList<>();

    /** Upper-cases each item; fails a run that holds "bad". */
    private final Function<List<String>, List<String>> upper = items -> {
        runs.add(List.copyOf(items));
        if (items.contains("bad")) {
            throw new IllegalArgumentException("bad item in " + items);
        }
        return items.stream().map(String::toUpperCase).toList();
    };

    @Test
    void aFailingBatchOfThreeGivesTwoResultsAndOneErrorRow() {
        List<String> out =
                BatchRetry.run(List.of("a", "bad", "c"), upper, (item, e) -> "error " + item + ": " + e.getMessage());
        assertEquals(List.of("A", "error bad: bad item in [bad]", "C"), out, "in batch order");
        assertEquals(List.of(List.of("a", "bad", "c"), List.of("a"), List.of("bad"), List.of("c")), runs);
    }

    @Test
    void aBatchThatSucceedsRunsOnce() {
        assertEquals(List.of("A", "B"), BatchRetry.run(List.of("a", "b"), upper, (item, e) -> "error"));
        assertEquals(List.of(List.of("a", "b")), runs);
    }

    @Test
    void aSingleItemThatFailsBecomesItsErrorRowWithoutARetry() {
        assertEquals(List.of("error bad"), BatchRetry.run(List.of("bad"), upper, (item, e) -> "error " + item));
        assertEquals(List.of(List.of("bad")), runs);
    }

    @Test
    void anEmptyBatchRunsNothing() {
        assertEquals(List.of(), BatchRetry.run(List.<String>of(), upper, (item, e) -> "error"));
        assertEquals(List.of(), runs);
    }
}
