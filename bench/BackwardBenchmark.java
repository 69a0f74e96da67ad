import ai.fluxbatch.kernel.Backend;
import ai.fluxbatch.kernel.Tensor;
import ai.fluxbatch.kernel.cpu.CpuBackend;
import java.lang.management.ManagementFactory;
import java.lang.management.ThreadMXBean;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Random;
import java.util.function.Supplier;

/**
 * The CPU backend's reverse-mode operations against their forwards at the flux-shapes-dev miniature's sizes: hidden
 * 128, 4 heads of 32, L = 528 tokens, linear layers [896, 128], [128, 640], [640, 128] and [128, 128], batch B
 * (argument {@code b=N}, default 2). The whole table runs twice and the second pass is printed, so every kernel is
 * compiled by C2 before it is timed; per op the median of 15 timed calls after 5 more: wall time with one thread and
 * with all cores, and the calling thread's CPU time with one thread (steadier on a shared machine). Run with
 * bench/backward.sh.
 */
public final class BackwardBenchmark {
    private static final ThreadMXBean MX = ManagementFactory.getThreadMXBean();
    private static final int L = 528, C = 128, HEADS = 4;
    private static final int[][] LINEAR = {{896, 128}, {128, 640}, {640, 128}, {128, 128}};

    private interface Op {
        Supplier<Object> bind(Backend be);
    }

    private record Row(String name, Op op) {}

    private static final java.util.List<Row> ROWS = new java.util.ArrayList<>();

    public static void main(String[] args) throws Exception {
        int b = 2;
        for (String a : args) {
            if (a.startsWith("b=")) {
                b = Integer.parseInt(a.substring(2));
            } else {
                throw new IllegalArgumentException("unknown argument " + a + " (b=N)");
            }
        }
        printMachine();
        int threads = Runtime.getRuntime().availableProcessors();
        try (Backend one = new CpuBackend(1);
                Backend all = new CpuBackend(threads)) {
            int bb = b, d = C / HEADS;
            float scale = (float) (1 / Math.sqrt(d));
            row("attention", be -> {
                Tensor[] t = tensors(be, 3, bb, L, C);
                return () -> be.attention(t[0], t[1], t[2], HEADS);
            });
            row("attentionBackward", be -> {
                Tensor[] t = tensors(be, 4, bb, L, C);
                return () -> be.attentionBackward(t[0], t[1], t[2], t[3], HEADS, scale);
            });
            for (int[] s : LINEAR) {
                int out = s[0], in = s[1];
                String shape = "[" + out + ", " + in + "]";
                row("ternaryLinear " + shape, be -> {
                    Tensor x = tensors(be, 1, bb, L, in)[0], w = ternary(be, out, in);
                    return () -> be.ternaryLinear(x, w, null);
                });
                row("ternaryLinearBackward " + shape, be -> {
                    Tensor x = tensors(be, 1, bb, L, in)[0],
                            dy = tensors(be, 1, bb, L, out)[0],
                            w = ternary(be, out, in);
                    return () -> be.ternaryLinearBackward(x, w, dy, true);
                });
                row("  without the input gradient", be -> {
                    Tensor x = tensors(be, 1, bb, L, in)[0],
                            dy = tensors(be, 1, bb, L, out)[0],
                            w = ternary(be, out, in);
                    return () -> be.ternaryLinearBackward(x, w, dy, false);
                });
                row("linear " + shape, be -> {
                    Tensor x = tensors(be, 1, bb, L, in)[0], w = tensors(be, 1, out, in)[0];
                    return () -> be.linear(x, w, null);
                });
                row("linearBackward " + shape, be -> {
                    Tensor dy = tensors(be, 1, bb, L, out)[0], w = tensors(be, 1, out, in)[0];
                    return () -> be.linearBackward(dy, w);
                });
            }
            row("layerNormBackward", be -> {
                Tensor[] t = tensors(be, 2, bb, L, C);
                return () -> be.layerNormBackward(t[0], t[1], 1e-6f);
            });
            row("rmsNormBackward", be -> {
                Tensor[] t = tensors(be, 2, bb, L, C);
                Tensor s = tensors(be, 1, C)[0];
                return () -> be.rmsNormBackward(t[0], s, t[1], 1e-6f);
            });
            row("geluBackward [B, L, 4C]", be -> {
                Tensor[] t = tensors(be, 2, bb, L, 4 * C);
                return () -> be.geluBackward(t[0], t[1]);
            });
            row("siluBackward [B, C]", be -> {
                Tensor[] t = tensors(be, 2, bb, C);
                return () -> be.siluBackward(t[0], t[1]);
            });
            row("modulateBackward", be -> {
                Tensor[] t = tensors(be, 2, bb, L, C);
                Tensor s = tensors(be, 1, bb, C)[0];
                return () -> be.modulateBackward(t[0], s, t[1]);
            });
            row("gatedAddBackward", be -> {
                Tensor[] t = tensors(be, 2, bb, L, C);
                Tensor g = tensors(be, 1, bb, C)[0];
                return () -> be.gatedAddBackward(g, t[0], t[1]);
            });
            row("ropeBackward", be -> {
                Tensor dy = tensors(be, 1, bb, L, HEADS, d)[0], pe = tensors(be, 1, bb, L, d / 2, 2, 2)[0];
                return () -> be.ropeBackward(dy, pe);
            });
            for (Row r : ROWS) { // the first pass: JIT compilation
                Supplier<Object> f1 = r.op().bind(one), fa = r.op().bind(all);
                for (int i = 0; i < 20; i++) {
                    f1.get();
                    fa.get();
                }
            }
            System.out.printf("B = %d, L = %d, C = %d, %d heads; median ms of 15 calls%n", b, L, C, HEADS);
            System.out.printf("%-40s %12s %12s %14s%n", "operation", "1t wall", threads + "t wall", "1t thread CPU");
            for (Row r : ROWS) {
                double[] single = time(r.op().bind(one));
                double[] multi = time(r.op().bind(all));
                System.out.printf("%-40s %12.2f %12.2f %14.2f%n", r.name(), single[0], multi[0], single[1]);
            }
        }
    }

    private static void row(String name, Op op) {
        ROWS.add(new Row(name, op));
    }

    /** Median wall and calling-thread CPU milliseconds. */
    private static double[] time(Supplier<Object> f) {
        for (int i = 0; i < 5; i++) {
            f.get();
        }
        double[] wall = new double[15], cpu = new double[15];
        for (int i = 0; i < wall.length; i++) {
            long c0 = MX.getCurrentThreadCpuTime(), t0 = System.nanoTime();
            f.get();
            wall[i] = (System.nanoTime() - t0) / 1e6;
            cpu[i] = (MX.getCurrentThreadCpuTime() - c0) / 1e6;
        }
        Arrays.sort(wall);
        Arrays.sort(cpu);
        return new double[] {wall[7], cpu[7]};
    }

    private static Tensor[] tensors(Backend be, int count, int... shape) {
        Random r = new Random(Arrays.hashCode(shape) + count);
        int n = Arrays.stream(shape).reduce(1, (a, c) -> a * c);
        Tensor[] t = new Tensor[count];
        for (int i = 0; i < count; i++) {
            float[] a = new float[n];
            for (int j = 0; j < n; j++) {
                a[j] = (float) r.nextGaussian();
            }
            t[i] = be.upload(a, shape);
        }
        return t;
    }

    /** Random codes in the Hugging Face BitNet packing (field values 0..2 only) and a random scale. */
    private static Tensor ternary(Backend be, int out, int in) {
        Random r = new Random(out * 31L + in);
        byte[] packed = new byte[(out + 3) / 4 * in];
        for (int i = 0; i < packed.length; i++) {
            int v = 0;
            for (int f = 0; f < 4; f++) {
                v |= r.nextInt(3) << (2 * f);
            }
            packed[i] = (byte) v;
        }
        float[] scale = new float[out];
        for (int o = 0; o < out; o++) {
            scale[o] = (float) (0.02 * r.nextGaussian());
        }
        return be.uploadTernary(packed, out, in, scale);
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
