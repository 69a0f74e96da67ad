package ai.fluxbatch.kernel.cpu;

import java.util.concurrent.ForkJoinPool;
import java.util.stream.IntStream;

/** Runs the iterations of a loop on the backend's own thread pool, in chunks no smaller than a grain. */
final class ParallelFor {
    interface Range {
        void run(int from, int to);
    }

    private final ForkJoinPool pool;
    private final int threads;

    ParallelFor(int threads) {
        this.threads = threads;
        this.pool = threads > 1 ? new ForkJoinPool(threads) : null;
    }

    int threads() {
        return threads;
    }

    /** Splits {@code [0, n)} into at most a few chunks per thread, each of at least {@code grain} iterations. */
    void run(int n, int grain, Range body) {
        int chunks = Math.min(threads * 4, Math.max(1, n / Math.max(1, grain)));
        if (pool == null || chunks <= 1) {
            body.run(0, n);
            return;
        }
        int step = (n + chunks - 1) / chunks;
        int tasks = (n + step - 1) / step;
        pool.submit(() -> IntStream.range(0, tasks)
                        .parallel()
                        .forEach(t -> body.run(t * step, Math.min(n, (t + 1) * step))))
                .join();
    }

    void shutdown() {
        if (pool != null) {
            pool.shutdown();
        }
    }
}
