package ai.fluxbatch.model.sampling;

/** The reference {@code get_schedule}: {@code steps + 1} times from 1 to 0, time-shifted unless schnell. */
public final class FlowSchedule {
    private FlowSchedule() {}

    public static double[] timesteps(int steps, int imageSeqLen, boolean shift, SchedulerConfig config) {
        if (steps < 1) {
            throw new IllegalArgumentException("steps must be at least 1, got " + steps);
        }
        double mu = config.mu(imageSeqLen);
        double[] t = new double[steps + 1];
        for (int i = 0; i <= steps; i++) {
            // linspace(1, 0, steps + 1) in float32, as torch computes it
            double linear = (float) (1.0 - (double) i / steps);
            t[i] = shift ? timeShift(mu, 1.0, linear) : linear;
        }
        return t;
    }

    /** {@code e^mu / (e^mu + (1/t - 1)^sigma)}; 0 at t = 0. StrictMath: the same bits in every JIT tier and JVM. */
    static double timeShift(double mu, double sigma, double t) {
        if (t == 0) {
            return 0;
        }
        return StrictMath.exp(mu) / (StrictMath.exp(mu) + StrictMath.pow(1 / t - 1, sigma));
    }
}
