package ai.fluxbatch.jobs.generate;

import java.io.PrintWriter;
import java.io.Serializable;
import java.util.Locale;
import org.apache.spark.SparkContext;
import org.apache.spark.scheduler.SparkListener;
import org.apache.spark.scheduler.SparkListenerTaskEnd;
import org.apache.spark.util.CollectionAccumulator;
import org.apache.spark.util.LongAccumulator;

/**
 * The driver's progress line: executors count images in accumulators, which Spark merges on the driver as each task
 * ends; this listener then prints images done / total, how many were made on a GPU and how many on a CPU, images per
 * second, ETA and errors.
 */
public final class GenerateProgress extends SparkListener {
    /**
     * The job's counters, shipped to executors inside the partition function; {@code writeFailures}: the cause of the
     * first failed image write of each partition that had one (the output itself is failing); {@code gpu} and
     * {@code cpu}: the images written that were made on a GPU and on a CPU ({@link MadeOn}).
     */
    public record Counters(
            LongAccumulator ok,
            LongAccumulator skipped,
            LongAccumulator errors,
            CollectionAccumulator<String> writeFailures,
            LongAccumulator gpu,
            LongAccumulator cpu)
            implements Serializable {
        public static Counters register(SparkContext sc) {
            return new Counters(
                    sc.longAccumulator("images written"),
                    sc.longAccumulator("images skipped"),
                    sc.longAccumulator("images failed"),
                    sc.collectionAccumulator("image write failures"),
                    sc.longAccumulator("images made on a GPU"),
                    sc.longAccumulator("images made on a CPU"));
        }

        /** Counts {@code r} as written on a GPU or a CPU, when it is a written image. */
        void countDevice(ImageResult r) {
            if (r.status().equals(ImageResult.OK) && r.device() != null) {
                (MadeOn.isGpu(r.device()) ? gpu : cpu).add(1);
            }
        }

        long done() {
            return ok.value() + skipped.value() + errors.value();
        }
    }

    private final Counters counters;
    private final long total;
    private final PrintWriter out;
    private final long start = System.nanoTime();

    GenerateProgress(Counters counters, long total, PrintWriter out) {
        this.counters = counters;
        this.total = total;
        this.out = out;
    }

    @Override
    public synchronized void onTaskEnd(SparkListenerTaskEnd taskEnd) {
        out.println(line());
    }

    String line() {
        long done = counters.done();
        double seconds = (System.nanoTime() - start) / 1e9;
        double made = counters.ok.value();
        double rate = made / Math.max(seconds, 1e-9);
        long left = total - done;
        String eta = made == 0 ? "?" : String.format(Locale.ROOT, "%.0f s", left / Math.max(rate, 1e-9));
        return String.format(
                Locale.ROOT,
                "generate: %d/%d images (%d written, %d skipped, %d failed), %d on a GPU and %d on a CPU, %.2f images/s,"
                        + " ETA %s",
                done,
                total,
                counters.ok.value(),
                counters.skipped.value(),
                counters.errors.value(),
                counters.gpu.value(),
                counters.cpu.value(),
                rate,
                eta);
    }
}
