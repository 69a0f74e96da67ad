import ai.fluxbatch.kernel.cpu.NativeBlas;
import ai.fluxbatch.model.calib.LayerStats;
import ai.fluxbatch.model.quant.LayerQuantizer;
import ai.fluxbatch.model.quant.QuantizeMethods;
import ai.fluxbatch.model.quant.TernaryFormat;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.lang.management.ManagementFactory;
import java.lang.reflect.Method;
import java.net.URL;
import java.net.URLClassLoader;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Random;
import java.util.TreeMap;
import java.util.stream.IntStream;

/**
 * Ternary GPTQ on one layer of each distinct shape of FLUX.1-dev's block linear layers (from the snapshot layout), on a
 * synthetic covariance like calibration gives: activations {@code x = sigma * z + V u + mu} with channel scales spread
 * over an order of magnitude, 16 shared directions and offsets, as the expected Gram matrix over 100,000 tokens. Each
 * shape runs twice, one layer after another in one process as {@code quantize} runs them: the first run also pays for
 * growing the heap, the second is the steady state. Prints the seconds per run (wall, and the process's CPU seconds:
 * on a shared machine the steadier figure) and the estimated time for all block linear layers of FLUX.1-dev (sum of
 * count x the second run's seconds).
 *
 * <p>With {@code base=MODEL_JAR:KERNEL_JAR[:MORE...]} (another commit's quantizer, in its own class loader) it also
 * quantizes one layer of shape {@code old=OUTxIN} (default 3072x3072) with both, in the same process, and compares the
 * codes and scales.
 *
 * <p>Arguments: {@code layout=PATH} (default ../shared/golden/flux1-dev-layout.json), {@code shapes=OUTxIN,...} (these
 * instead of the layout's), {@code base=...}, {@code old=OUTxIN}.
 */
public final class GptqBenchmark {
    private static final long TOKENS = 100_000;
    private static final int RANK = 16;

    private record Shape(int out, int in) {
        static Shape parse(String s) {
            String[] p = s.toLowerCase(Locale.ROOT).split("x");
            return new Shape(Integer.parseInt(p[0].trim()), Integer.parseInt(p[1].trim()));
        }

        @Override
        public String toString() {
            return out + " x " + in;
        }
    }

    /** The statistics calibration would record for these activations, and the weight. */
    private record Layer(float[] w, long tokens, double[] sum, double[] sumSq, float[] absMax, float[] gram) {
        LayerStats stats() {
            return new LayerStats(sum.length, tokens, sum, sumSq, absMax, gram);
        }
    }

    public static void main(String[] args) throws Exception {
        Path layout = Path.of("../shared/golden/flux1-dev-layout.json");
        List<Shape> only = null;
        String base = null;
        Shape old = new Shape(3072, 3072);
        for (String a : args) {
            if (a.startsWith("layout=")) {
                layout = Path.of(a.substring(7));
            } else if (a.startsWith("shapes=")) {
                only = new ArrayList<>();
                for (String s : a.substring(7).split(",")) {
                    only.add(Shape.parse(s));
                }
            } else if (a.startsWith("base=")) {
                base = a.substring(5);
            } else if (a.startsWith("old=")) {
                old = Shape.parse(a.substring(4));
            } else {
                throw new IllegalArgumentException(
                        "unknown argument " + a + " (layout=PATH shapes=OUTxIN,... base=JAR:JAR old=OUTxIN)");
            }
        }
        System.out.printf(
                Locale.ROOT,
                "machine: %s, %d cores, max heap %.1f GiB; java %s; linear algebra: %s%n",
                cpu(),
                Runtime.getRuntime().availableProcessors(),
                Runtime.getRuntime().maxMemory() / (double) (1L << 30),
                System.getProperty("java.version"),
                NativeBlas.available()
                        ? "OpenBLAS (" + NativeBlas.description() + ")"
                        : "Java (" + NativeBlas.description() + ")");
        System.out.println("JVM flags: " + ManagementFactory.getRuntimeMXBean().getInputArguments()
                + "; GLIBC_TUNABLES=" + System.getenv("GLIBC_TUNABLES"));

        Map<Shape, Integer> counts = flux(layout);
        long total = counts.values().stream().mapToInt(Integer::intValue).sum();
        System.out.println("FLUX.1-dev block linear layers: " + total + " in " + counts.size() + " shapes " + counts);

        LayerQuantizer gptq = QuantizeMethods.byName("gptq");
        Layer warm = layer(new Shape(1024, 3072), 1);
        gptq.quantize(warm.w, 1024, 3072, warm.stats(), true); // compiles the hot loops before anything is timed
        System.out.printf(
                Locale.ROOT,
                "%-14s %6s %11s %11s %11s %11s   %s%n",
                "shape",
                "count",
                "1st wall s",
                "1st cpu s",
                "2nd wall s",
                "2nd cpu s",
                "load (1 min) before, after");
        double estimate = 0, estimateCpu = 0;
        boolean full = only == null;
        for (Shape s : full ? new ArrayList<>(counts.keySet()) : only) {
            Layer l = layer(s, 7);
            String loadBefore = load();
            double[] wall = new double[2], cpu = new double[2];
            for (int run = 0; run < 2; run++) {
                double cpu0 = cpuSeconds();
                long t0 = System.nanoTime();
                gptq.quantize(l.w, s.out, s.in, l.stats(), true);
                wall[run] = (System.nanoTime() - t0) / 1e9;
                cpu[run] = cpuSeconds() - cpu0;
            }
            int count = counts.getOrDefault(s, 0);
            estimate += count * wall[1];
            estimateCpu += count * cpu[1];
            System.out.printf(
                    Locale.ROOT,
                    "%-14s %6d %11.1f %11.1f %11.1f %11.1f   %s, %s%n",
                    s,
                    count,
                    wall[0],
                    cpu[0],
                    wall[1],
                    cpu[1],
                    loadBefore,
                    load());
        }
        if (full) {
            System.out.printf(
                    Locale.ROOT,
                    "estimated gptq time for all %d block linear layers of FLUX.1-dev, from the 2nd runs: %.0f s = %.2f h"
                            + " (wall); %.0f CPU s = %.2f h on all cores at full use%n",
                    total,
                    estimate,
                    estimate / 3600,
                    estimateCpu,
                    estimateCpu / Runtime.getRuntime().availableProcessors() / 3600);
        }
        if (base != null) {
            compare(base, old);
        }
    }

    /** {@code old} quantized by the base jars and by this tree's, on the same layer: times, codes, scales. */
    private static void compare(String base, Shape s) throws Exception {
        List<URL> urls = new ArrayList<>();
        for (String p : base.split(":")) {
            urls.add(Path.of(p).toUri().toURL());
        }
        URLClassLoader loader = new URLClassLoader(urls.toArray(new URL[0]), ClassLoader.getPlatformClassLoader());
        Class<?> statsClass = loader.loadClass("ai.fluxbatch.model.calib.LayerStats");
        Object quantizer = loader.loadClass("ai.fluxbatch.model.quant.QuantizeMethods")
                .getMethod("byName", String.class)
                .invoke(null, "gptq");
        Method quantize = quantizer
                .getClass()
                .getMethod("quantize", float[].class, int.class, int.class, statsClass, boolean.class);
        quantize.setAccessible(true);
        Layer l = layer(s, 11);
        Object stats = statsClass
                .getConstructor(int.class, long.class, double[].class, double[].class, float[].class, float[].class)
                .newInstance(s.in, l.tokens, l.sum, l.sumSq, l.absMax, l.gram);
        String loadBefore = load();
        double cpu0 = cpuSeconds();
        long t0 = System.nanoTime();
        Object r = quantize.invoke(quantizer, l.w, s.out, s.in, stats, true);
        double oldWall = (System.nanoTime() - t0) / 1e9, oldCpu = cpuSeconds() - cpu0;
        byte[] oldCodes = (byte[]) r.getClass().getMethod("codes").invoke(r);
        float[] oldScale = (float[]) r.getClass().getMethod("scale").invoke(r);
        cpu0 = cpuSeconds();
        t0 = System.nanoTime();
        LayerQuantizer.Result now = QuantizeMethods.byName("gptq").quantize(l.w, s.out, s.in, l.stats(), true);
        double newWall = (System.nanoTime() - t0) / 1e9, newCpu = cpuSeconds() - cpu0;
        int codes = 0, rows = 0, scales = 0;
        double worst = 0, worstOther = 0;
        for (int o = 0; o < s.out; o++) {
            int before = codes;
            for (int i = o * s.in; i < (o + 1) * s.in; i++) {
                codes += oldCodes[i] != now.codes()[i] ? 1 : 0;
            }
            double rel = Math.abs(now.scale()[o] - oldScale[o]) / Math.max(Math.abs(oldScale[o]), 1e-30);
            scales += now.scale()[o] != oldScale[o] ? 1 : 0;
            if (codes > before) {
                rows++;
                worstOther = Math.max(worstOther, rel);
            } else {
                worst = Math.max(worst, rel);
            }
        }
        System.out.printf(
                Locale.ROOT,
                "base commit's gptq on %s: %.1f s wall, %.1f s cpu (load %s, %s); this tree's: %.1f s wall, %.1f s"
                        + " cpu (%.1fx faster)%n",
                s,
                oldWall,
                oldCpu,
                loadBefore,
                load(),
                newWall,
                newCpu,
                oldWall / newWall);
        System.out.printf(
                Locale.ROOT,
                "codes differing from the base commit's: %d of %d (%.4f %%), in %d of %d rows; scales not bit-equal: %d;"
                        + " largest relative scale difference %.1e in rows with the same codes, %.1e in the others%n",
                codes,
                (long) s.out * s.in,
                100.0 * codes / ((long) s.out * s.in),
                rows,
                s.out,
                scales,
                worst,
                worstOther);
    }

    /** Each distinct [out, in] of the quantized (block linear) weights, with how many layers have it. */
    private static Map<Shape, Integer> flux(Path layout) throws Exception {
        JsonNode tensors = new ObjectMapper().readTree(layout.toFile()).get("tensors");
        Map<Shape, Integer> counts = new TreeMap<>((a, b) -> a.out != b.out ? a.out - b.out : a.in - b.in);
        tensors.fields().forEachRemaining(e -> {
            JsonNode shape = e.getValue();
            if (shape.size() == 2
                    && TernaryFormat.isQuantized(
                            e.getKey(),
                            new long[] {shape.get(0).asLong(), shape.get(1).asLong()})) {
                counts.merge(new Shape(shape.get(0).asInt(), shape.get(1).asInt()), 1, Integer::sum);
            }
        });
        return counts;
    }

    /** A layer of the given shape: weights N(0, 0.02), statistics of {@code x = sigma * z + V u + mu}. */
    private static Layer layer(Shape s, long seed) {
        int in = s.in;
        Random r = new Random(seed);
        double[] sigma = new double[in], mu = new double[in], v = new double[in * RANK];
        for (int i = 0; i < in; i++) {
            sigma[i] = Math.exp(r.nextGaussian() * 0.6);
            mu[i] = r.nextGaussian() * 0.3 * sigma[i];
        }
        for (int i = 0; i < v.length; i++) {
            v[i] = r.nextGaussian() * 0.5 * sigma[i / RANK];
        }
        float[] gram = new float[in * in];
        IntStream.range(0, in).parallel().forEach(i -> {
            for (int j = 0; j < in; j++) {
                double g = mu[i] * mu[j] + (i == j ? sigma[i] * sigma[i] : 0);
                for (int k = 0; k < RANK; k++) {
                    g += v[i * RANK + k] * v[j * RANK + k];
                }
                gram[i * in + j] = (float) (g * TOKENS);
            }
        });
        double[] sum = new double[in], sumSq = new double[in];
        float[] absMax = new float[in];
        for (int i = 0; i < in; i++) {
            sum[i] = mu[i] * TOKENS;
            sumSq[i] = gram[i * in + i];
            absMax[i] = (float) (4 * Math.sqrt(gram[i * in + i] / TOKENS));
        }
        float[] w = new float[s.out * in];
        for (int i = 0; i < w.length; i++) {
            w[i] = (float) (r.nextGaussian() * 0.02);
        }
        return new Layer(w, TOKENS, sum, sumSq, absMax, gram);
    }

    private static double cpuSeconds() {
        return ((com.sun.management.OperatingSystemMXBean) ManagementFactory.getOperatingSystemMXBean())
                        .getProcessCpuTime()
                / 1e9;
    }

    private static String load() throws Exception {
        return Files.readString(Path.of("/proc/loadavg")).split(" ")[0];
    }

    private static String cpu() throws Exception {
        return Files.readAllLines(Path.of("/proc/cpuinfo")).stream()
                .filter(l -> l.startsWith("model name"))
                .findFirst()
                .map(l -> l.substring(l.indexOf(':') + 1).trim())
                .orElse("unknown CPU");
    }
}
