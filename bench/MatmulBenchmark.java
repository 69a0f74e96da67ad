import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.lang.management.ManagementFactory;
import java.lang.management.ThreadMXBean;
import java.lang.reflect.Constructor;
import java.lang.reflect.Method;
import java.net.URL;
import java.net.URLClassLoader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Random;

/**
 * The CPU backend's dense {@code linear} (x [M, K] times a Linear weight [N, K] plus bias) at the shapes of the
 * flux-shapes-dev miniature (hidden 128, B = 2, L = 528: M = 1056 token rows; the modulation at M = B = 1 and 2) and of
 * FLUX (K = 3072), and the 3 x 3 convolutions of the autoencoders (im2col products), beside numpy's sgemm in the same
 * run; and the input gradient {@code linearBackward} at FLUX shapes. Variants of this tree's kernel jar: {@code vector}
 * (the Vector API products), {@code blas} (OpenBLAS for every product) and, if asked for, {@code auto} (what
 * {@code new CpuBackend()} does: OpenBLAS where its rule picks it); optionally a base
 * commit's kernel jar ({@code base}, its default backend). Each jar has its own class loader under one shared loader
 * of the native-library jars (JavaCPP, OpenBLAS: a native library loads once per process), all in one JVM, timed
 * alternately shape by shape so all see the same machine load. numpy runs in a child process per shape just before,
 * with OpenBLAS's thread count set to 1 and to all cores. Per shape and variant: GFLOP/s from the median of the timed
 * calls, with one thread (the calling thread's CPU time, the steadier figure on a shared machine; numpy's likewise)
 * and with all cores (wall); then numpy's time / the variant's time, each way (at least 0.8 is the goal). Every
 * kernel is warmed up on the miniature's shapes before any timing. Run with bench/matmul.sh [BASE].
 *
 * <p>Arguments: {@code new=JAR} (required), {@code cp=JARS} (the kernel's dependency jars, ':'-separated),
 * {@code base=JAR}, {@code flux=false} to leave out the FLUX shapes, {@code shapes=MxNxK,...} to time these shapes
 * instead, {@code numpy=PYTHON} (default python3; {@code off} leaves numpy out), {@code variants=vector,blas,auto}
 * (default vector,blas).
 */
public final class MatmulBenchmark {
    private static final ThreadMXBean MX = ManagementFactory.getThreadMXBean();

    /**
     * {@code x [m, k] . w[n, k]^T + b}; where {@code backward} the input gradient {@code dy [m, k] . w [k, n]}
     * ({@code linearBackward} of a weight {@code [k, n]}: output columns n, inner length k); where {@code side > 0} a
     * 3 x 3 'same' convolution of one {@code [k, side, side]} image to {@code n} channels (then {@code m = side * side}
     * positions, the product's rows).
     */
    private record Shape(String name, int m, int n, int k, int side, boolean backward) {
        Shape(String name, int m, int n, int k) {
            this(name, m, n, k, 0, false);
        }

        static Shape conv(String name, int c, int o, int side) {
            return new Shape(name, side * side, o, c, side, false);
        }

        static Shape backward(String name, int m, int n, int k) {
            return new Shape(name, m, n, k, 0, true);
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
            new Shape("FLUX mlp.0", 1024, 12288, 3072),
            Shape.backward("FLUX proj dx", 1024, 3072, 3072),
            Shape.backward("FLUX mlp.0 dx", 1024, 3072, 12288),
            Shape.conv("FLUX VAE 128 @ 128^2", 128, 128, 128),
            Shape.conv("FLUX VAE 512 @ 64^2", 512, 512, 64));

    /** One variant: a kernel jar's CpuBackend with 1 thread and with all cores, called by reflection. */
    private static final class Kernel implements AutoCloseable {
        final String label;
        final Object one, all;
        final Method upload, linear, linearBackward, conv2d, close;

        /** {@code products}: the name of a DenseProducts constant, or null for the jar's default backend. */
        Kernel(String label, ClassLoader loader, String products, int threads) throws Exception {
            this.label = label;
            Class<?> cpu = loader.loadClass("ai.fluxbatch.kernel.cpu.CpuBackend");
            Class<?> tensor = loader.loadClass("ai.fluxbatch.kernel.Tensor");
            if (products == null) {
                Constructor<?> make = cpu.getConstructor(int.class);
                one = make.newInstance(1);
                all = make.newInstance(threads);
            } else {
                @SuppressWarnings({"unchecked", "rawtypes"})
                Class<Enum> kind = (Class<Enum>) loader.loadClass("ai.fluxbatch.kernel.cpu.DenseProducts");
                Object choice = Enum.valueOf(kind, products);
                Constructor<?> make = cpu.getConstructor(int.class, kind);
                one = make.newInstance(1, choice);
                all = make.newInstance(threads, choice);
            }
            upload = cpu.getMethod("upload", float[].class, int[].class);
            linear = cpu.getMethod("linear", tensor, tensor, tensor);
            linearBackward = cpu.getMethod("linearBackward", tensor, tensor);
            conv2d = cpu.getMethod(
                    "conv2d", tensor, tensor, tensor, int.class, int.class, int.class, int.class, int.class);
            close = cpu.getMethod("close");
        }

        Runnable bind(Object backend, Shape s) throws Exception {
            Random r = new Random(s.m() * 31L + s.n() * 7L + s.k());
            Object b = upload.invoke(backend, random(r, s.n()), new int[] {s.n()});
            if (s.side() > 0) {
                int[] image = {1, s.k(), s.side(), s.side()}, kernel = {s.n(), s.k(), 3, 3};
                Object x = upload.invoke(backend, random(r, s.m() * s.k()), image);
                Object w = upload.invoke(backend, random(r, s.n() * s.k() * 9), kernel);
                return () -> call(backend, conv2d, x, w, b, 1, 1, 1, 1, 1);
            }
            Object x = upload.invoke(backend, random(r, s.m() * s.k()), new int[] {s.m(), s.k()});
            if (s.backward()) {
                Object w = upload.invoke(backend, random(r, s.k() * s.n()), new int[] {s.k(), s.n()});
                return () -> call(backend, linearBackward, x, w);
            }
            Object w = upload.invoke(backend, random(r, s.n() * s.k()), new int[] {s.n(), s.k()});
            return () -> call(backend, linear, x, w, b);
        }

        private static void call(Object backend, Method op, Object... args) {
            try {
                op.invoke(backend, args);
            } catch (ReflectiveOperationException e) {
                throw new IllegalStateException(op.getName() + " failed", e);
            }
        }

        @Override
        public void close() throws Exception {
            close.invoke(one);
            close.invoke(all);
        }
    }

    public static void main(String[] args) throws Exception {
        Path newJar = null, baseJar = null;
        List<Path> deps = new ArrayList<>();
        boolean flux = true;
        List<Shape> only = null;
        String python = "python3";
        List<String> variants = List.of("vector", "blas");
        for (String a : args) {
            if (a.startsWith("new=")) {
                newJar = Path.of(a.substring(4));
            } else if (a.startsWith("base=")) {
                baseJar = Path.of(a.substring(5));
            } else if (a.startsWith("cp=")) {
                for (String p : a.substring(3).split(":")) {
                    if (!p.isEmpty()) {
                        deps.add(Path.of(p));
                    }
                }
            } else if (a.startsWith("flux=")) {
                flux = Boolean.parseBoolean(a.substring(5));
            } else if (a.startsWith("numpy=")) {
                python = a.substring(6);
            } else if (a.startsWith("variants=")) {
                variants = List.of(a.substring(9).split(","));
            } else if (a.startsWith("shapes=")) {
                only = new ArrayList<>();
                for (String mnk : a.substring(7).split(",")) {
                    String[] p = mnk.split("x");
                    only.add(new Shape(mnk, Integer.parseInt(p[0]), Integer.parseInt(p[1]), Integer.parseInt(p[2])));
                }
            } else {
                throw new IllegalArgumentException("unknown argument " + a + " (new=JAR cp=JARS base=JAR"
                        + " flux=true|false shapes=MxNxK,... numpy=PYTHON|off variants=vector,blas,auto)");
            }
        }
        if (newJar == null) {
            throw new IllegalArgumentException("new=JAR is required: the kernel jar of this tree");
        }
        printMachine();
        int threads = Runtime.getRuntime().availableProcessors();
        URL[] depUrls = new URL[deps.size()];
        for (int i = 0; i < depUrls.length; i++) {
            depUrls[i] = deps.get(i).toUri().toURL();
        }
        ClassLoader natives = new URLClassLoader(depUrls, ClassLoader.getPlatformClassLoader());
        List<Kernel> kernels = new ArrayList<>();
        if (baseJar != null) {
            System.out.println("base: " + baseJar + " (its default backend)");
            kernels.add(new Kernel("base", loader(baseJar, natives), null, threads));
        }
        ClassLoader fresh = loader(newJar, natives);
        System.out.println("new: " + newJar + "; dense products: " + describe(fresh));
        for (String v : variants) {
            String products = switch (v) {
                case "vector" -> "VECTOR_API";
                case "blas" -> "OPENBLAS";
                case "auto" -> "FASTEST";
                default -> throw new IllegalArgumentException("unknown variant " + v + " (vector|blas|auto)");
            };
            kernels.add(new Kernel(v, fresh, products, threads));
        }
        List<Shape> shapes = new ArrayList<>(MINIATURE);
        if (flux) {
            shapes.addAll(FLUX);
        }
        if (only != null) {
            shapes = only;
        }
        boolean numpy = !python.equals("off");
        if (numpy) {
            System.out.println("numpy: " + numpyVersion(python));
        }
        for (int pass = 0; pass < 3; pass++) { // JIT compilation of every kernel path before any timing
            for (Shape s : MINIATURE) {
                for (Kernel kernel : kernels) {
                    Runnable f1 = kernel.bind(kernel.one, s), fa = kernel.bind(kernel.all, s);
                    for (int rep = 0; rep < 5; rep++) {
                        f1.run();
                        fa.run();
                    }
                }
            }
        }
        System.out.printf(
                "GFLOP/s from the median of the timed calls: 1t = one thread, its CPU time; %dt = %d threads, wall."
                        + " x np: numpy's time / this variant's time, with one thread (CPU time) and %d (wall); >= 0.80"
                        + " is the goal%n",
                threads, threads, threads);
        StringBuilder head = new StringBuilder(String.format("%-20s %5s %5s %5s", "shape", "M", "N", "K"));
        List<String> labels = new ArrayList<>();
        if (numpy) {
            labels.add("numpy");
        }
        kernels.forEach(k -> labels.add(k.label));
        for (String l : labels) {
            head.append(String.format(" %11s %11s", l + " 1t", l + " " + threads + "t"));
        }
        if (numpy) {
            for (Kernel k : kernels) {
                head.append(String.format(" %11s %11s", k.label + " x np 1t", "x np " + threads + "t"));
            }
        }
        System.out.println(head);
        for (Shape s : shapes) {
            int reps = (int) Math.max(3, Math.min(15, 4e9 / s.flops()));
            List<double[]> times = new ArrayList<>(); // per label: {1t CPU ms, all-cores wall ms}
            if (numpy) {
                if (s.side() > 0) {
                    times.add(null);
                } else {
                    times.add(new double[] {numpy(python, s, reps, 1)[1], numpy(python, s, reps, threads)[0]});
                }
            }
            for (Kernel k : kernels) {
                times.add(new double[] {time(k.bind(k.one, s), reps)[1], time(k.bind(k.all, s), reps)[0]});
            }
            StringBuilder line =
                    new StringBuilder(String.format("%-20s %5d %5d %5d", s.name(), s.m(), s.n(), s.inner()));
            for (double[] t : times) {
                if (t == null) {
                    line.append(String.format(" %11s %11s", "-", "-"));
                } else {
                    line.append(String.format(" %11.1f %11.1f", s.flops() / t[0] / 1e6, s.flops() / t[1] / 1e6));
                }
            }
            if (numpy) {
                double[] np = times.get(0);
                for (int i = 1; i < times.size(); i++) {
                    double[] t = times.get(i);
                    line.append(
                            np == null
                                    ? String.format(" %11s %11s", "-", "-")
                                    : String.format(" %10.2fx %10.2fx", np[0] / t[0], np[1] / t[1]));
                }
            }
            System.out.println(line);
        }
        for (Kernel k : kernels) {
            k.close();
        }
        System.out.println("numpy: float32 x @ w.T (sgemm, no bias; for dx rows dy @ w) in a child process,"
                + " OPENBLAS_NUM_THREADS 1 and " + threads + "; vector: the Vector API products; blas: OpenBLAS for"
                + " every product; auto: new CpuBackend() (OpenBLAS where its rule picks it); base: the base commit's"
                + " default backend. dx: linearBackward, dy [M, K] . w [K, N]. VAE conv C @ S^2: conv2d of [1, C, S, S]"
                + " with a [C, C, 3, 3] weight, padding 1, bias (M = S^2 positions, K = 9 C), no numpy figure.");
    }

    private static ClassLoader loader(Path jar, ClassLoader parent) throws Exception {
        return new URLClassLoader(new URL[] {jar.toUri().toURL()}, parent);
    }

    private static String describe(ClassLoader loader) {
        try {
            Class<?> blas = loader.loadClass("ai.fluxbatch.kernel.cpu.NativeBlas");
            return "OpenBLAS " + blas.getMethod("description").invoke(null);
        } catch (ReflectiveOperationException e) {
            return "no NativeBlas in this jar (" + e + ")";
        }
    }

    /** {median wall ms, median calling-thread CPU ms} of numpy's sgemm with OpenBLAS on {@code threads} threads. */
    private static double[] numpy(String python, Shape s, int reps, int threads) throws Exception {
        String out = runPython(
                python,
                threads,
                "bench/numpy_sgemm.py",
                String.valueOf(s.m()),
                String.valueOf(s.n()),
                String.valueOf(s.k()),
                String.valueOf(reps),
                s.backward() ? "nn" : "nt");
        String[] p = out.trim().split("\\s+");
        return new double[] {Double.parseDouble(p[0]), Double.parseDouble(p[1])};
    }

    /** numpy's version and the kernels its OpenBLAS picks here (OPENBLAS_VERBOSE=2 names them). */
    private static String numpyVersion(String python) throws Exception {
        ProcessBuilder pb = new ProcessBuilder(
                python,
                "-c",
                "import numpy; numpy.ones((2, 2), 'float32') @ numpy.ones((2, 2), 'float32');"
                        + " print(numpy.__version__, numpy.show_config(mode='dicts')['Build Dependencies']['blas']"
                        + "['version'])");
        pb.environment().put("OPENBLAS_VERBOSE", "2");
        pb.redirectErrorStream(true);
        Process p = pb.start();
        String text = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        p.waitFor();
        String core = Arrays.stream(text.split("\n"))
                .filter(l -> l.startsWith("Core:"))
                .findFirst()
                .orElse("Core: not reported")
                .trim();
        String version = Arrays.stream(text.split("\n"))
                .filter(l -> !l.startsWith("Core:") && !l.isBlank())
                .findFirst()
                .orElse("?")
                .trim();
        return version + " (OpenBLAS), " + core
                + (System.getenv("OPENBLAS_CORETYPE") == null
                        ? ""
                        : " (OPENBLAS_CORETYPE=" + System.getenv("OPENBLAS_CORETYPE") + " for numpy and this JVM)");
    }

    private static String runPython(String python, int threads, String... args) throws Exception {
        List<String> command = new ArrayList<>();
        command.add(python);
        command.addAll(List.of(args));
        ProcessBuilder pb = new ProcessBuilder(command);
        pb.environment().put("OPENBLAS_NUM_THREADS", String.valueOf(threads));
        pb.redirectErrorStream(true);
        Process p = pb.start();
        String out;
        try (BufferedReader r = new BufferedReader(new InputStreamReader(p.getInputStream(), StandardCharsets.UTF_8))) {
            out = r.lines().reduce("", (a, b) -> a + b + "\n");
        }
        if (p.waitFor() != 0) {
            throw new IllegalStateException(String.join(" ", command) + " failed: " + out);
        }
        return out;
    }

    /**
     * Median wall and calling-thread CPU milliseconds of {@code reps} calls after as many more (at least three: a
     * shape the warm-up did not cover can still be compiling).
     */
    private static double[] time(Runnable f, int reps) {
        for (int i = 0; i < Math.max(3, reps); i++) {
            f.run();
        }
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
