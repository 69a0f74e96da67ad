import java.lang.management.ManagementFactory;
import java.lang.management.ThreadMXBean;
import java.lang.reflect.Method;
import java.net.URL;
import java.net.URLClassLoader;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Random;

/**
 * The CPU backend's forward attention of two kernel jars (a base commit's and this tree's) in one JVM, each in its
 * own class loader, timed call for call in turn on the same inputs so both see the same load: the flux-shapes-dev
 * miniature's transformer (B = 2, L = 528 = 512 text + 16 image tokens, 4 heads of 32; and the 256 x 256 image's
 * L = 768), its T5 (4 heads of 12 with the relative-position bias [H, L, L]), its CLIP (causal, 4 heads of 8), CLIP-L
 * (12 heads of 64), its VAE's attention block at a 256 x 256 image (one head of 64 over 32 x 32 positions) and one
 * FLUX.1-dev attention at 1024 x 1024 (4096 image + 512 text tokens, 24 heads of 128; argument {@code big=false}
 * leaves it out). Per shape: warm-up calls of both, then the median of the timed calls with one thread (wall and the
 * calling thread's CPU time, steadier on a shared machine) and with all cores, and the largest difference between
 * the two outputs relative to 1 + |base|. Usage: {@code AttentionBenchmark BASE.jar NEW.jar [big=false]}; run with
 * bench/attention.sh.
 */
public final class AttentionBenchmark {
    private static final ThreadMXBean MX = ManagementFactory.getThreadMXBean();

    private record Case(String name, int b, int l, int h, int d, float scale, boolean bias, boolean causal) {}

    /** One jar's CpuBackend (1 thread and all cores) through reflection: the jars' classes are not on this path. */
    private static final class Kernel implements AutoCloseable {
        final Object one, all;
        final Method upload, download, attention, close;

        Kernel(Path jar, int threads) throws Exception {
            URLClassLoader loader =
                    new URLClassLoader(new URL[] {jar.toUri().toURL()}, AttentionBenchmark.class.getClassLoader());
            Class<?> backend = loader.loadClass("ai.fluxbatch.kernel.Backend");
            Class<?> tensor = loader.loadClass("ai.fluxbatch.kernel.Tensor");
            Class<?> cpu = loader.loadClass("ai.fluxbatch.kernel.cpu.CpuBackend");
            one = cpu.getConstructor(int.class).newInstance(1);
            all = cpu.getConstructor(int.class).newInstance(threads);
            upload = backend.getMethod("upload", float[].class, int[].class);
            download = backend.getMethod("download", tensor);
            attention = backend.getMethod(
                    "attention", tensor, tensor, tensor, int.class, float.class, tensor, boolean.class);
            close = backend.getMethod("close");
        }

        /** A call on backend {@code be} with the inputs uploaded there; returns the output as floats. */
        Call bind(Object be, Case c, float[][] in) throws Exception {
            Object q = upload.invoke(be, in[0], new int[] {c.b(), c.l(), c.h() * c.d()});
            Object k = upload.invoke(be, in[1], new int[] {c.b(), c.l(), c.h() * c.d()});
            Object v = upload.invoke(be, in[2], new int[] {c.b(), c.l(), c.h() * c.d()});
            Object bias = c.bias() ? upload.invoke(be, in[3], new int[] {c.h(), c.l(), c.l()}) : null;
            return () ->
                    (float[]) download.invoke(be, attention.invoke(be, q, k, v, c.h(), c.scale(), bias, c.causal()));
        }

        @Override
        public void close() throws Exception {
            close.invoke(one);
            close.invoke(all);
        }
    }

    private interface Call {
        float[] run() throws Exception;
    }

    public static void main(String[] args) throws Exception {
        if (args.length < 2) {
            throw new IllegalArgumentException("usage: AttentionBenchmark BASE.jar NEW.jar [big=false]");
        }
        boolean big = !(args.length > 2 && args[2].equals("big=false"));
        int threads = Runtime.getRuntime().availableProcessors();
        printMachine();
        List<Case> cases = new ArrayList<>(List.of(
                new Case("transformer 64x64", 2, 528, 4, 32, inv(32), false, false),
                new Case("transformer 256x256", 1, 768, 4, 32, inv(32), false, false),
                new Case("T5 (bias)", 1, 512, 4, 12, 1f, true, false),
                new Case("CLIP (causal)", 1, 77, 4, 8, inv(8), false, true),
                new Case("CLIP-L (causal)", 1, 77, 12, 64, inv(64), false, true),
                new Case("VAE 256x256", 1, 1024, 1, 64, inv(64), false, false)));
        if (big) {
            cases.add(new Case("FLUX.1-dev 1024x1024", 1, 4608, 24, 128, inv(128), false, false));
        }
        System.out.println("base: " + args[0] + "\nnew:  " + args[1]);
        System.out.printf(
                "median ms; ratio = base / new; %d threads for the 'all' columns%n%-22s %-18s %9s %9s %6s %9s %9s %6s"
                        + " %9s %9s %6s %9s%n",
                threads,
                "case",
                "B, L, H, D",
                "1t base",
                "1t new",
                "ratio",
                "CPU base",
                "CPU new",
                "ratio",
                "all base",
                "all new",
                "ratio",
                "max diff");
        try (Kernel base = new Kernel(Path.of(args[0]), threads);
                Kernel now = new Kernel(Path.of(args[1]), threads)) {
            for (Case c : cases) {
                Random r = new Random(c.l() * 31L + c.h() * c.d());
                int n = c.b() * c.l() * c.h() * c.d();
                float[][] in = {randn(r, n), randn(r, n), randn(r, n), c.bias() ? randn(r, c.h() * c.l() * c.l()) : null
                };
                Call b1 = base.bind(base.one, c, in), n1 = now.bind(now.one, c, in);
                Call ba = base.bind(base.all, c, in), na = now.bind(now.all, c, in);
                float[] want = b1.run(), got = n1.run();
                double diff = maxDiff(want, got);
                double ms = warm(b1, n1, ba, na);
                int timed = (int) Math.max(3, Math.min(15, 3000 / Math.max(ms, 1e-3)));
                double[][] single = time(b1, n1, timed);
                double[][] multi = time(ba, na, timed);
                System.out.printf(
                        "%-22s %-18s %9.2f %9.2f %6.2f %9.2f %9.2f %6.2f %9.2f %9.2f %6.2f %9.1e%n",
                        c.name(),
                        c.b() + ", " + c.l() + ", " + c.h() + ", " + c.d(),
                        single[0][0],
                        single[1][0],
                        single[0][0] / single[1][0],
                        single[0][1],
                        single[1][1],
                        single[0][1] / single[1][1],
                        multi[0][0],
                        multi[1][0],
                        multi[0][0] / multi[1][0],
                        diff);
            }
        }
    }

    private static float inv(int d) {
        return (float) (1 / Math.sqrt(d));
    }

    /** Warm-up rounds of all four, for about 3 s (one at least); returns the slower single-thread call's ms of the last. */
    private static double warm(Call b1, Call n1, Call ba, Call na) throws Exception {
        long start = System.nanoTime();
        double slowest = 0;
        for (int i = 0; i < 1 || (i < 50 && System.nanoTime() - start < 3e9); i++) {
            long t0 = System.nanoTime();
            b1.run();
            long t1 = System.nanoTime();
            n1.run();
            slowest = Math.max(t1 - t0, System.nanoTime() - t1) / 1e6;
            ba.run();
            na.run();
        }
        return slowest;
    }

    /** Median wall and calling-thread CPU ms of {@code base} ([0]) and {@code now} ([1]), called in turn. */
    private static double[][] time(Call base, Call now, int n) throws Exception {
        double[][] wall = new double[2][n], cpu = new double[2][n];
        Call[] calls = {base, now};
        for (int i = 0; i < n; i++) {
            for (int w = 0; w < 2; w++) {
                long c0 = MX.getCurrentThreadCpuTime(), t0 = System.nanoTime();
                calls[w].run();
                wall[w][i] = (System.nanoTime() - t0) / 1e6;
                cpu[w][i] = (MX.getCurrentThreadCpuTime() - c0) / 1e6;
            }
        }
        double[][] out = new double[2][];
        for (int w = 0; w < 2; w++) {
            Arrays.sort(wall[w]);
            Arrays.sort(cpu[w]);
            out[w] = new double[] {wall[w][n / 2], cpu[w][n / 2]};
        }
        return out;
    }

    private static double maxDiff(float[] want, float[] got) {
        double worst = 0;
        for (int i = 0; i < want.length; i++) {
            worst = Math.max(worst, Math.abs((double) want[i] - got[i]) / (1 + Math.abs(want[i])));
        }
        return worst;
    }

    private static float[] randn(Random r, int n) {
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
