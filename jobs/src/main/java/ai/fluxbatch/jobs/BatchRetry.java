package ai.fluxbatch.jobs;

import java.util.ArrayList;
import java.util.List;
import java.util.function.BiFunction;
import java.util.function.Function;

/**
 * Runs a batch of items together and, when that fails, each item alone, so that a bad item (a prompt that makes the
 * model overflow) fails alone and the others of its batch still come out. An item that fails alone becomes what
 * {@code onError} makes of it (an error row), never an exception: the job goes on.
 */
public final class BatchRetry {
    private BatchRetry() {}

    /**
     * The results of {@code batch}: {@code runBatch} of the whole batch when it succeeds; otherwise, for a batch of
     * more than one item, each item's own run, in batch order; and for an item that fails alone,
     * {@code onError(item, failure)}.
     *
     * @param runBatch makes the results of a non-empty list of items (any number of results per list)
     */
    public static <T, R> List<R> run(
            List<T> batch, Function<List<T>, List<R>> runBatch, BiFunction<T, RuntimeException, R> onError) {
        if (batch.isEmpty()) {
            return List.of();
        }
        try {
            return runBatch.apply(batch);
        } catch (RuntimeException e) {
            if (batch.size() == 1) {
                return List.of(onError.apply(batch.get(0), e));
            }
        }
        List<R> out = new ArrayList<>();
        for (T item : batch) { // one by one, so a bad item fails alone
            out.addAll(run(List.of(item), runBatch, onError));
        }
        return out;
    }
}
