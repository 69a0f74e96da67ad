package ai.fluxbatch.jobs.calibrate;

import java.io.PrintWriter;
import java.util.Locale;
import org.apache.spark.scheduler.SparkListener;
import org.apache.spark.scheduler.SparkListenerTaskEnd;
import org.apache.spark.util.LongAccumulator;

/**
 * The driver's progress line: executors count prompts in an accumulator, which Spark merges on the driver as each
 * task ends; this listener then prints prompts done / total, prompts per second and the ETA. The merge stages of the
 * aggregation end tasks too; they print nothing, since the count has not moved.
 */
final class CalibrateProgress extends SparkListener {
    private final LongAccumulator done;
    private final long total;
    private final PrintWriter out;
    private final long start = System.nanoTime();
    private long printed;

    CalibrateProgress(LongAccumulator done, long total, PrintWriter out) {
        this.done = done;
        this.total = total;
        this.out = out;
    }

    @Override
    public synchronized void onTaskEnd(SparkListenerTaskEnd taskEnd) {
        long now = done.value();
        if (now != printed) {
            printed = now;
            out.println(line(now));
        }
    }

    String line(long now) {
        double seconds = (System.nanoTime() - start) / 1e9;
        double rate = now / Math.max(seconds, 1e-9);
        String eta = now == 0 ? "?" : String.format(Locale.ROOT, "%.0f s", (total - now) / Math.max(rate, 1e-9));
        return String.format(Locale.ROOT, "calibrate: %d/%d prompts, %.2f prompts/s, ETA %s", now, total, rate, eta);
    }
}
