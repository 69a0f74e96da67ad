import ai.fluxbatch.kernel.Backend;
import ai.fluxbatch.kernel.Tensor;
import ai.fluxbatch.kernel.cpu.CpuBackend;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Random;

/**
 * CPU matmul throughput at FLUX shapes (x [M, K] times a Linear weight [N, K]) against a naive scalar triple loop
 * measured in the same run. Run with bench/matmul.sh.
 */
public final class MatmulBenchmark {
    private static final int K = 3072;
    private static final int[] NS = {3072, 12288};
    private static final int[] MS = {1, 1024};
    private static final int NAIVE_ROWS = 8;

    public static void main(String[] args) throws Exception {
        printMachine();
        int threads = Runtime.getRuntime().availableProcessors();
        System.out.printf(
                "%-6s %-6s %-6s %14s %14s %14s %12s %12s%n",
                "M",
                "K",
                "N",
                "naive GFLOP/s",
                "vec-1t GFLOP/s",
                "vec-" + threads + "t GFLOP/s",
                "1t / naive",
                threads + "t / naive");
        try (Backend one = new CpuBackend(1);
                Backend all = new CpuBackend(threads)) {
            for (int n : NS) {
                for (int m : MS) {
                    Random r = new Random(1);
                    float[] x = random(r, m * K), w = random(r, n * K), b = random(r, n);
                    double naive = naiveGflops(x, w, b, Math.min(m, NAIVE_ROWS), n);
                    double single = backendGflops(one, x, w, b, m, n);
                    double multi = backendGflops(all, x, w, b, m, n);
                    System.out.printf(
                            "%-6d %-6d %-6d %14.2f %14.2f %14.2f %11.1fx %11.1fx%n",
                            m, K, n, naive, single, multi, single / naive, multi / naive);
                }
            }
        }
        System.out.println("naive: scalar triple loop, float accumulation, on min(M, " + NAIVE_ROWS
                + ") rows of x (throughput per FLOP does not depend on M for it); vec: CpuBackend.linear with bias;"
                + " each figure is the best of the timed repetitions after warm-up.");
    }

    private static double backendGflops(Backend be, float[] x, float[] w, float[] b, int m, int n) {
        Tensor xt = be.upload(x, m, K), wt = be.upload(w, n, K), bt = be.upload(b, n);
        double flops = 2.0 * m * n * K;
        int reps = (int) Math.max(3, Math.min(50, 2e10 / flops));
        be.linear(xt, wt, bt); // warm-up and JIT
        be.linear(xt, wt, bt);
        long best = Long.MAX_VALUE;
        for (int i = 0; i < reps; i++) {
            long t0 = System.nanoTime();
            be.linear(xt, wt, bt);
            best = Math.min(best, System.nanoTime() - t0);
        }
        return flops / best;
    }

    private static double naiveGflops(float[] x, float[] w, float[] b, int m, int n) {
        float[] out = new float[m * n];
        naive(x, w, b, out, Math.min(m, 1), n); // warm-up
        long best = Long.MAX_VALUE;
        for (int rep = 0; rep < 2; rep++) {
            long t0 = System.nanoTime();
            naive(x, w, b, out, m, n);
            best = Math.min(best, System.nanoTime() - t0);
        }
        if (out[0] == 12345.678f) {
            System.out.print("");
        }
        return 2.0 * m * n * K / best;
    }

    private static void naive(float[] x, float[] w, float[] b, float[] out, int m, int n) {
        for (int i = 0; i < m; i++) {
            for (int j = 0; j < n; j++) {
                float s = b[j];
                for (int k = 0; k < K; k++) {
                    s += x[i * K + k] * w[j * K + k];
                }
                out[i * n + j] = s;
            }
        }
    }

    private static float[] random(Random r, int n) {
        float[] a = new float[n];
        for (int i = 0; i < n; i++) {
            a[i] = (float) r.nextGaussian();
        }
        return a;
    }

    private static void printMachine() throws Exception {
        String cpu = "unknown CPU";
        Path info = Path.of("/proc/cpuinfo");
        if (Files.exists(info)) {
            cpu = Files.readAllLines(info).stream()
                    .filter(l -> l.startsWith("model name"))
                    .map(l -> l.substring(l.indexOf(':') + 1).trim())
                    .findFirst()
                    .orElse(cpu);
        }
        System.out.println("machine: " + cpu + ", " + Runtime.getRuntime().availableProcessors() + " cores, "
                + System.getProperty("os.name") + " " + System.getProperty("os.arch") + ", max heap "
                + Runtime.getRuntime().maxMemory() / (1 << 20) + " MiB");
        System.out.println("java: " + Runtime.version() + " " + System.getProperty("java.vm.name") + ", vector species "
                + jdk.incubator.vector.FloatVector.SPECIES_PREFERRED);
    }
}
