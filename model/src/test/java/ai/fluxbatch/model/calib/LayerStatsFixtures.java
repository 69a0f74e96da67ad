package ai.fluxbatch.model.calib;

/** Statistics of a set of input rows, Gram matrix included, computed directly. */
public final class LayerStatsFixtures {
    private LayerStatsFixtures() {}

    public static LayerStats of(float[] x, int rows, int in) {
        LayerStats s = new LayerStats(in, true);
        s.addRows(x, rows);
        float[] g = new float[in * in];
        for (int r = 0; r < rows; r++) {
            for (int i = 0; i < in; i++) {
                for (int j = 0; j < in; j++) {
                    g[i * in + j] += x[r * in + i] * x[r * in + j];
                }
            }
        }
        s.addGram(g);
        return s;
    }
}
