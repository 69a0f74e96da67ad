import ai.fluxbatch.model.calib.CalibrationStats;
import ai.fluxbatch.model.calib.LayerStats;
import ai.fluxbatch.model.quant.QuantizeMethods;
import ai.fluxbatch.model.quant.TernaryFormat;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.ByteArrayOutputStream;
import java.io.ObjectOutputStream;
import java.lang.management.ManagementFactory;
import java.nio.file.Path;
import java.util.Locale;
import java.util.Map;
import java.util.Random;
import java.util.TreeMap;
import java.util.regex.Pattern;

/**
 * What calibration statistics cost an executor at full FLUX.1-dev layer sizes: the planned bytes per --layers choice,
 * then one selection allocated for real (heap measured after GC), merged with a second partial result as
 * treeAggregate's combine step does, and Java-serialized as Spark ships a task result. Then the time ternary GPTQ
 * takes on full-size layers of 3072 inputs (attention, modulation) and 12288 inputs (the MLP's second linear).
 *   java -cp ... bench/CalibrationMemory.java LAYOUT.json [REGEX]
 */
public final class CalibrationMemory {
    public static void main(String[] args) throws Exception {
        JsonNode tensors =
                new ObjectMapper().readTree(Path.of(args[0]).toFile()).get("tensors");
        Map<String, Integer> inputs = new TreeMap<>();
        tensors.fields().forEachRemaining(e -> {
            long[] shape = {
                e.getValue().get(0).asLong(),
                e.getValue().size() > 1 ? e.getValue().get(1).asLong() : 0
            };
            if (e.getValue().size() == 2 && TernaryFormat.isQuantized(e.getKey(), shape)) {
                inputs.put(e.getKey().substring(0, e.getKey().length() - ".weight".length()), (int) shape[1]);
            }
        });
        System.out.printf(
                Locale.ROOT,
                "machine: %s, %d cores, max heap %.1f GiB%n",
                cpu(),
                Runtime.getRuntime().availableProcessors(),
                Runtime.getRuntime().maxMemory() / gib());
        System.out.println("problem: FLUX.1-dev block linear layers (" + inputs.size() + "), float32 Gram matrices");
        for (String regex : new String[] {
            ".*",
            "double_blocks\\.0\\..*",
            "single_blocks\\.0\\..*",
            "double_blocks\\.[0-4]\\..*",
            "single_blocks\\.(\\d|1\\d)\\..*"
        }) {
            long diag = 0, gram = 0;
            int n = 0;
            for (var e : inputs.entrySet()) {
                if (Pattern.matches(regex, e.getKey())) {
                    n++;
                    diag += LayerStats.bytes(e.getValue(), false);
                    gram += LayerStats.bytes(e.getValue(), true);
                }
            }
            System.out.printf(
                    Locale.ROOT,
                    "planned --layers '%s': %d layers, %.2f MiB without --gram, %.2f GiB with%n",
                    regex,
                    n,
                    diag / mib(),
                    gram / gib());
        }
        String regex = args.length > 1 ? args[1] : "single_blocks\\.0\\..*";
        long before = usedAfterGc();
        CalibrationStats a = allocate(inputs, regex);
        long one = usedAfterGc() - before;
        CalibrationStats b = allocate(inputs, regex);
        long two = usedAfterGc() - before;
        long t0 = System.nanoTime();
        a.merge(b);
        double mergeSeconds = (System.nanoTime() - t0) / 1e9;
        long planned = 0;
        for (var e : a.layers().entrySet()) {
            planned += LayerStats.bytes(e.getValue().inFeatures(), true);
        }
        ByteArrayOutputStream bytes = new ByteArrayOutputStream();
        try (ObjectOutputStream out = new ObjectOutputStream(bytes)) {
            out.writeObject(b);
        }
        System.out.printf(
                Locale.ROOT,
                "measured --layers '%s' --gram: %d layers, planned %.3f GiB; heap %.3f GiB for one"
                        + " partial result (%.3fx planned), %.3f GiB for two (a combine step); merge %.2f s; serialized"
                        + " %.3f GiB (%.3fx planned)%n",
                regex,
                a.layers().size(),
                planned / gib(),
                one / gib(),
                one / (double) planned,
                two / gib(),
                mergeSeconds,
                bytes.size() / gib(),
                bytes.size() / (double) planned);
        b = null;
        bytes = null;
        gptq(3072, 3072);
        gptq(3072, 12288);
    }

    private static CalibrationStats allocate(Map<String, Integer> inputs, String regex) {
        CalibrationStats s = new CalibrationStats();
        Random r = new Random(1);
        for (var e : inputs.entrySet()) {
            if (Pattern.matches(regex, e.getKey())) {
                float[] row = new float[e.getValue()];
                for (int i = 0; i < row.length; i++) {
                    row[i] = (float) r.nextGaussian();
                }
                s.layer(e.getKey(), e.getValue(), true).addRows(row, 1);
            }
        }
        return s;
    }

    /** Ternary GPTQ on one layer of {@code out x in}: a covariance of unit noise plus four strong directions. */
    private static void gptq(int out, int in) {
        Random r = new Random(2);
        long tokens = 100_000;
        float[] gram = new float[in * in];
        double[] sumSq = new double[in];
        double[][] v = new double[4][in];
        for (double[] vk : v) {
            for (int i = 0; i < in; i++) {
                vk[i] = r.nextGaussian() * 100;
            }
        }
        for (int i = 0; i < in; i++) {
            for (int j = 0; j < in; j++) {
                double g = i == j ? tokens : 0;
                for (double[] vk : v) {
                    g += vk[i] * vk[j];
                }
                gram[i * in + j] = (float) g;
            }
            sumSq[i] = gram[i * in + i];
        }
        LayerStats s = new LayerStats(in, tokens, new double[in], sumSq, new float[in], gram);
        float[] w = new float[out * in];
        for (int i = 0; i < w.length; i++) {
            w[i] = (float) (r.nextGaussian() * 0.02);
        }
        long t0 = System.nanoTime();
        QuantizeMethods.byName("gptq").quantize(w, out, in, s, true);
        double gptq = (System.nanoTime() - t0) / 1e9;
        t0 = System.nanoTime();
        QuantizeMethods.byName("absmean").quantize(w, out, in, null, true);
        double absmean = (System.nanoTime() - t0) / 1e9;
        System.out.printf(
                Locale.ROOT,
                "gptq on one %d x %d layer: %.1f s; absmean on it: %.3f s (gptq %.0fx absmean)%n",
                out,
                in,
                gptq,
                absmean,
                gptq / absmean);
    }

    private static long usedAfterGc() {
        for (int i = 0; i < 3; i++) {
            System.gc();
        }
        var heap = ManagementFactory.getMemoryMXBean().getHeapMemoryUsage();
        return heap.getUsed();
    }

    private static String cpu() throws Exception {
        return java.nio.file.Files.readAllLines(Path.of("/proc/cpuinfo")).stream()
                .filter(l -> l.startsWith("model name"))
                .findFirst()
                .map(l -> l.substring(l.indexOf(':') + 1).trim())
                .orElse("unknown CPU");
    }

    private static double gib() {
        return 1024.0 * 1024 * 1024;
    }

    private static double mib() {
        return 1024.0 * 1024;
    }
}
