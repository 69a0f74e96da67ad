import java.lang.management.ManagementFactory;
import java.lang.management.ThreadMXBean;
import java.lang.reflect.Constructor;
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
 * The CPU backend's dense {@code linear} (x [M, K] times a Linear weight [N, K] plus bias) at the shapes of the
 * flux-shapes-dev miniature (hidden 128, B = 2, L = 528: M = 1056 token rows; the modulation at M = B = 1 and 2) and of
 * FLUX (K = 3072), and the 3 x 3 convolutions of the miniature's autoencoder decoding a 256 x 256 image (im2col
 * products), for one or two kernel jars: this tree's and optionally a base commit's, each in its own class loader in
 * the same JVM, timed alternately shape by shape so both see the same machine load. Per shape and jar: the median of
 * the timed calls with one thread (wall and the calling thread's CPU time, the steadier figure on a shared machine)
 * and with all cores (wall); then base / new ratios. Every kernel is warmed up on the miniature's shapes before any
 * timing. Run with bench/matmul.sh [BASE].
 *
 * <p>Arguments: {@code new=JAR} (required), {@code base=JAR}, {@code flux=false} to leave out the FLUX shapes,
 * {@code shapes=MxNxK,...} to time these shapes instead.
 */
public final class MatmulBenchmark {
    private static final ThreadMXBean MX = ManagementFactory.getThreadMXBean();

    /**
     * {@code x [m, k] . w[n, k]^T + b}, or where {@code side > 0} a 3 x 3 'same' convolution of one {@code [k, side,
     * side]} image to {@code n} channels (then {@code m = side * side} positions, the product's rows).
     */
    private record Shape(String name, int m, int n, int k, int side) {
        Shape(String name, int m, int n, int k) {
            this(name, m, n, k, 0);
        }

        static Shape conv(String name, int c, int o, int side) {
            return new Shape(name, side * side, o, c, side);
        }

        /** The product's inner length: k, or {@code 9 k} for a convolution. */
        int inner() {
            return side > 0 ? 9 * k : k;
        }

        double flops() {
            return 2.0 * m * n * inner();
        }
    }

    private static final List<Shape> MINIATURE = List.of(
            new Shape("single linear1", 1056, 896, 128),
            new Shape("single linear2", 1056, 128, 640),
            new Shape("double qkv", 1056, 384, 128),
            new Shape("double mlp.0", 1056, 512, 128),
            new Shape("double mlp.2", 1056, 128, 512),
            new Shape("double proj", 1056, 128, 128),
            new Shape("proj_out", 1056, 64, 128),
            new Shape("context_embedder", 1024, 128, 48),
            new Shape("modulation, B = 1", 1, 768, 128),
            new Shape("modulation, B = 2", 2, 768, 128),
            Shape.conv("VAE conv 64 @ 64^2", 64, 64, 64),
            Shape.conv("VAE conv 32 @ 256^2", 32, 32, 256));
    private static final List<Shape> FLUX = List.of(
            new Shape("FLUX proj, M = 1", 1, 3072, 3072),
            new Shape("FLUX proj", 1024, 3072, 3072),
            new Shape("FLUX mlp.0, M = 1", 1, 12288, 3072),
            new Shape("FLUX mlp.0", 1024, 12288, 3072));

    /** One kernel jar's CpuBackend, called by reflection: linear(upload(x), upload(w), upload(b)). */
    private static final class Kernel implements AutoCloseable {
        final String label;
        final Object backend;
        final Method upload, linear, conv2d, close;

        Kernel(String label, Path jar, int threads) throws Exception {
            this.label = label;
            URLClassLoader loader =
                    new URLClassLoader(new URL[] {jar.toUri().toURL()}, ClassLoader.getPlatformClassLoader());
            Class<?> cpu = loader.loadClass("ai.fluxbatch.kernel.cpu.CpuBackend");
            Class<?> tensor = loader.loadClass("ai.fluxbatch.kernel.Tensor");
            Constructor<?> make = cpu.getConstructor(int.class);
            backend = make.newInstance(threads);
            upload = cpu.getMethod("upload", float[].class, int[].class);
            linear = cpu.getMethod("linear", tensor, tensor, tensor);
            conv2d = cpu.getMethod(
                    "conv2d", tensor, tensor, tensor, int.class, int.class, int.class, int.class, int.class);
            close = cpu.getMethod("close");
        }

        Runnable bind(Shape s) throws Exception {
            Random r = new Random(s.m() * 31L + s.n() * 7L + s.k());
            Object b = upload.invoke(backend, random(r, s.n()), new int[] {s.n()});
            if (s.side() > 0) {
                int[] image = {1, s.k(), s.side(), s.side()}, kernel = {s.n(), s.k(), 3, 3};
                Object x = upload.invoke(backend, random(r, s.m() * s.k()), image);
                Object w = upload.invoke(backend, random(r, s.n() * s.k() * 9), kernel);
                return () -> call(conv2d, x, w, b, 1, 1, 1, 1, 1);
            }
            Object x = upload.invoke(backend, random(r, s.m() * s.k()), new int[] {s.m(), s.k()});
            Object w = upload.invoke(backend, random(r, s.n() * s.k()), new int[] {s.n(), s.k()});
            return () -> call(linear, x, w, b);
        }

        private void call(Method op, Object... args) {
            try {
                op.invoke(backend, args);
            } catch (ReflectiveOperationException e) {
                throw new IllegalStateException(op.getName() + " failed", e);
            }
        }

        @Override
        public void close() throws Exception {
            close.invoke(backend);
        }
    }

    public static void main(String[] args) throws Exception {
        Path newJar = null, baseJar = null;
        boolean flux = true;
        List<Shape> only = null;
        for (String a : args) {
            if (a.startsWith("new=")) {
                newJar = Path.of(a.substring(4));
            } else if (a.startsWith("base=")) {
                baseJar = Path.of(a.substring(5));
            } else if (a.startsWith("flux=")) {
                flux = Boolean.parseBoolean(a.substring(5));
            } else if (a.startsWith("shapes=")) {
                only = new ArrayList<>();
                for (String mnk : a.substring(7).split(",")) {
                    String[] p = mnk.split("x");
                    only.add(new Shape(mnk, Integer.parseInt(p[0]), Integer.parseInt(p[1]), Integer.parseInt(p[2])));
                }
            } else {
                throw new IllegalArgumentException(
                        "unknown argument " + a + " (new=JAR base=JAR flux=true|false shapes=MxNxK,...)");
            }
        }
        if (newJar == null) {
            throw new IllegalArgumentException("new=JAR is required: the kernel jar of this tree");
        }
        printMachine();
        int threads = Runtime.getRuntime().availableProcessors();
        List<Path> jars = new ArrayList<>();
        List<String> labels = new ArrayList<>();
        if (baseJar != null) {
            jars.add(baseJar);
            labels.add("base");
        }
        jars.add(newJar);
        labels.add("new");
        List<Kernel> one = new ArrayList<>(), all = new ArrayList<>();
        for (int i = 0; i < jars.size(); i++) {
            System.out.println(labels.get(i) + ": " + jars.get(i));
            one.add(new Kernel(labels.get(i), jars.get(i), 1));
            all.add(new Kernel(labels.get(i), jars.get(i), threads));
        }
        List<Shape> shapes = new ArrayList<>(MINIATURE);
        if (flux) {
            shapes.addAll(FLUX);
        }
        if (only != null) {
            shapes = only;
        }
        for (int pass = 0; pass < 3; pass++) { // JIT compilation of every kernel path before any timing
            for (Shape s : MINIATURE) {
                for (int i = 0; i < jars.size(); i++) {
                    Runnable f1 = one.get(i).bind(s), fa = all.get(i).bind(s);
                    for (int rep = 0; rep < 5; rep++) {
                        f1.run();
                        fa.run();
                    }
                }
            }
        }
        System.out.printf("median ms of the timed calls; GFLOP/s from the 1-thread CPU time%n");
        StringBuilder head = new StringBuilder(String.format("%-20s %5s %5s %5s", "shape", "M", "N", "K"));
        for (String l : labels) {
            head.append(
                    String.format(" %10s %10s %10s %8s", l + " 1t", l + " 1t CPU", l + " " + threads + "t", "GFLOP/s"));
        }
        if (baseJar != null) {
            head.append(String.format(" %9s %9s", "1t CPU x", threads + "t x"));
        }
        System.out.println(head);
        for (Shape s : shapes) {
            int reps = (int) Math.max(3, Math.min(15, 4e9 / s.flops()));
            double[][] single = new double[jars.size()][], multi = new double[jars.size()][];
            for (int i = 0; i < jars.size(); i++) {
                single[i] = time(one.get(i).bind(s), reps);
                multi[i] = time(all.get(i).bind(s), reps);
            }
            StringBuilder line =
                    new StringBuilder(String.format("%-20s %5d %5d %5d", s.name(), s.m(), s.n(), s.inner()));
            for (int i = 0; i < jars.size(); i++) {
                line.append(String.format(
                        " %10.3f %10.3f %10.3f %8.1f",
                        single[i][0], single[i][1], multi[i][0], s.flops() / single[i][1] / 1e6));
            }
            if (baseJar != null) {
                line.append(String.format(" %8.2fx %8.2fx", single[0][1] / single[1][1], multi[0][0] / multi[1][0]));
            }
            System.out.println(line);
        }
        for (int i = 0; i < jars.size(); i++) {
            one.get(i).close();
            all.get(i).close();
        }
        System.out.println("base: the kernel jar of the base commit; new: this tree's; x: base time / new time. VAE"
                + " conv C @ S^2: conv2d of [1, C, S, S] with a [C, C, 3, 3] weight, padding 1, bias (M = S^2 positions,"
                + " K = 9 C).");
    }

    /** Median wall and calling-thread CPU milliseconds of {@code reps} calls after two more. */
    private static double[] time(Runnable f, int reps) {
        f.run();
        f.run();
        double[] wall = new double[reps], cpu = new double[reps];
        for (int i = 0; i < reps; i++) {
            long c0 = MX.getCurrentThreadCpuTime(), t0 = System.nanoTime();
            f.run();
            wall[i] = (System.nanoTime() - t0) / 1e6;
            cpu[i] = (MX.getCurrentThreadCpuTime() - c0) / 1e6;
        }
        Arrays.sort(wall);
        Arrays.sort(cpu);
        return new double[] {wall[reps / 2], cpu[reps / 2]};
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
                + Runtime.getRuntime().maxMemory() / (1 << 20) + " MiB; load average before the run: "
                + (Files.exists(Path.of("/proc/loadavg"))
                        ? Files.readString(Path.of("/proc/loadavg")).trim()
                        : "unknown"));
        System.out.println("java: " + Runtime.version() + " " + System.getProperty("java.vm.name") + ", vector species "
                + jdk.incubator.vector.FloatVector.SPECIES_PREFERRED);
    }
}
