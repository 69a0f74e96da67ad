package ai.fluxbatch.jobs.distill;

import ai.fluxbatch.model.distill.DistillTraining;
import java.io.PrintWriter;
import java.nio.file.Path;
import java.util.Locale;

/** The driver's progress: a line per step with its loss, samples per second (this session) and the ETA. */
public final class DistillProgress implements DistillTraining.Progress {
    private final PrintWriter out;
    private final long start = System.nanoTime();
    private long samples;
    private int steps;

    public DistillProgress(PrintWriter out) {
        this.out = out;
    }

    @Override
    public void stepDone(int done, int total, double loss, long batch) {
        samples += batch;
        steps++;
        double seconds = (System.nanoTime() - start) / 1e9;
        double rate = samples / Math.max(seconds, 1e-9);
        double eta = (total - done) * (seconds / steps);
        out.printf(
                Locale.ROOT,
                "distill: step %d/%d, loss %.6g, %.2f samples/s, ETA %s%n",
                done,
                total,
                loss,
                rate,
                duration(eta));
    }

    @Override
    public void checkpointWritten(int done, Path file) {
        out.printf(Locale.ROOT, "distill: checkpoint after step %d: %s%n", done, file);
    }

    static String duration(double seconds) {
        long s = Math.round(seconds);
        return s >= 3600
                ? (s / 3600) + " h " + (s % 3600 / 60) + " min"
                : s >= 60 ? (s / 60) + " min " + (s % 60) + " s" : s + " s";
    }
}
