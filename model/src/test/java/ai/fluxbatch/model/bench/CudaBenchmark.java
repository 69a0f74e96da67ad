package ai.fluxbatch.model.bench;

import ai.fluxbatch.kernel.Tensor;
import ai.fluxbatch.kernel.TensorScope;
import ai.fluxbatch.kernel.cuda.CudaBackend;
import ai.fluxbatch.kernel.cuda.CudaDriverDevice;
import ai.fluxbatch.kernel.cuda.CudaModules;
import ai.fluxbatch.kernel.cuda.Device;
import ai.fluxbatch.kernel.cuda.DeviceMemoryPool;
import ai.fluxbatch.kernel.cuda.EmulatedDevice;
import ai.fluxbatch.kernel.cuda.GemmPrecision;
import ai.fluxbatch.kernel.cuda.GpuTernaryLayout;
import ai.fluxbatch.kernel.cuda.KernelArgs;
import ai.fluxbatch.kernel.cuda.OpsKernels;
import ai.fluxbatch.kernel.cuda.TernaryLaunch;
import ai.fluxbatch.model.flux.FluxConfig;
import ai.fluxbatch.model.flux.FluxConfigReader;
import ai.fluxbatch.model.flux.FluxInputs;
import ai.fluxbatch.model.flux.FluxTransformer;
import ai.fluxbatch.model.flux.FluxWeightLoader;
import ai.fluxbatch.model.flux.TapSink;
import ai.fluxbatch.model.quant.TernaryFormat;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.File;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import java.util.SplittableRandom;
import java.util.regex.Pattern;

/**
 * The GPU benchmark of the 1.58-bit FLUX.1-dev transformer (run by {@code bench/gpu/run-on-gpu.sh} on a GPU machine;
 * a test-scope main so that the GPU kit carries it). Two modes:
 *
 * <pre>
 *   kernels [--emulated] [--reps N] [--m 1,4608] [--torch FILE] [--layout FILE]
 *   step    [--emulated] [--tokens 4096] [--txt 512] [--steps N] [--max-seconds S] [--precision bf16|fp32]
 *           [--layout FILE] [--codes periodic|random]
 * </pre>
 *
 * <p>{@code kernels}: for every block linear shape of the layout (FLUX.1-dev: 9216x3072 qkv and single modulation,
 * 3072x3072 proj, 12288x3072 mlp in, 3072x12288 mlp out, 21504x3072 single linear1, 3072x15360 single linear2,
 * 18432x3072 double modulation) and each M (default 1 and 4608), times the 1.58-bit product three ways: the
 * backend's ({@link CudaBackend#ternaryLinear} at BF16 GEMM precision: the SIMT kernel below
 * {@link TernaryLaunch#DENSE_FROM_M} rows, decode + one cuBLAS GEMM + epilogue from there), the SIMT kernel alone
 * ({@link TernaryLaunch#plan} on random codes in {@link GpuTernaryLayout} + scales, through {@link Device#launch}) and
 * decode + GEMM alone; and the baselines: cuBLAS through {@link Device#gemm} in {@link GemmPrecision#FP32} and
 * {@link GemmPrecision#BF16} (float32 storage) with the same weights (the codes times the scales, as floats), and
 * torch's bf16 matmul ({@code --torch}, the JSON of {@code bench/gpu/torch_baseline.py} from the same run). Each:
 * warm-up, then reps back to back, synchronize, wall time / reps. Prints ms per call, TFLOP/s, the weights' GB/s, the
 * speedups (baseline time / 1.58-bit time) and where small enough a check of every result against cuBLAS FP32; then
 * per M the count-weighted sum over the whole transformer and the issue's target, and the weight bytes per shape and
 * over the whole transformer ({@code --layout}: the golden {@code flux1-dev-layout.json}; without it, or when the
 * file is absent, the built-in FLUX.1-dev layout with the same names and shapes).
 *
 * <p>{@code step}: loads the whole transformer onto {@link CudaBackend} from a {@link SyntheticTensorSource} (block
 * linears as packed ternary codes + scales, everything else random BF16; nothing is written to disk), runs one
 * untimed forward pass at {@code --tokens} image + {@code --txt} text tokens (1024 x 1024: 4096 + 512), batch 1,
 * then times up to {@code --steps} more (one forward pass is one denoising step of the guidance-distilled dev model),
 * stopping early when the next one would end past {@code --max-seconds} since the start. Prints s/step, the pool's
 * device memory and the weights' resident bytes against BF16.
 *
 * <p>{@code --emulated} runs either mode on the heap ({@link EmulatedDevice}) at tiny sizes (hidden 64, 1 double +
 * 1 single block) to check the plumbing without a GPU. Without it and without a usable GPU the benchmark fails with
 * a message saying so (exit status 2).
 */
public final class CudaBenchmark {
    /** The targets of the issue. */
    static final double TARGET_SPEEDUP_M1 = 3.0;

    static final double TARGET_SPEEDUP_LARGE_M = 1.0;
    static final double TARGET_MEMORY_RATIO = 5.0;
    /** What the paper reports for the 1.58-bit FLUX transformer's memory against BF16. */
    static final double PAPER_MEMORY_RATIO = 5.1;

    private static final Pattern BLOCK_PREFIX = Pattern.compile("^(double_blocks|single_blocks)\\.\\d+\\.");
    private static final double GIB = 1024.0 * 1024 * 1024;
    private static final int WARMUP = 3;

    private CudaBenchmark() {}

    public static void main(String[] args) {
        int status = run(args, System.out);
        System.out.flush();
        if (status != 0) {
            System.exit(status);
        }
    }

    /** Runs one mode, printing to {@code out}; returns the exit status (2: no GPU, 1: bad arguments). */
    public static int run(String[] args, PrintStream out) {
        Options o;
        try {
            o = Options.parse(args);
        } catch (IllegalArgumentException e) {
            out.println("CudaBenchmark: " + e.getMessage());
            out.println(USAGE);
            return 1;
        }
        try {
            if (o.mode.equals("kernels")) {
                kernels(o, out);
            } else {
                step(o, out);
            }
            return 0;
        } catch (NoGpuException e) {
            out.println("CudaBenchmark: " + e.getMessage());
            return 2;
        }
    }

    static final String USAGE = "usage: CudaBenchmark kernels [--emulated] [--reps N] [--m 1,4608] [--torch FILE]"
            + " [--layout FILE]\n"
            + "       CudaBenchmark step [--emulated] [--tokens 4096] [--txt 512] [--steps N] [--max-seconds S]"
            + " [--precision bf16|fp32] [--layout FILE] [--codes periodic|random]";

    // ---- options -------------------------------------------------------------------------------------------------

    static final class Options {
        String mode;
        boolean emulated;
        int reps; // 0: auto
        int[] ms;
        Path torch;
        Path layout;
        int tokens = -1;
        int txt = -1;
        int steps = 2;
        double maxSeconds = 100;
        GemmPrecision precision = GemmPrecision.BF16;
        boolean randomCodes;
        long seed = 42;

        static Options parse(String[] args) {
            if (args.length == 0 || !(args[0].equals("kernels") || args[0].equals("step"))) {
                throw new IllegalArgumentException("the first argument is the mode: kernels or step");
            }
            Options o = new Options();
            o.mode = args[0];
            for (int i = 1; i < args.length; i++) {
                String a = args[i];
                switch (a) {
                    case "--emulated" -> o.emulated = true;
                    case "--reps" -> o.reps = positive(a, value(args, ++i, a));
                    case "--m" ->
                        o.ms = Arrays.stream(value(args, ++i, a).split(","))
                                .mapToInt(s -> positive(a, s.trim()))
                                .toArray();
                    case "--torch" -> o.torch = Path.of(value(args, ++i, a));
                    case "--layout" -> o.layout = Path.of(value(args, ++i, a));
                    case "--tokens" -> o.tokens = positive(a, value(args, ++i, a));
                    case "--txt" -> o.txt = nonNegative(a, value(args, ++i, a));
                    case "--steps" -> o.steps = positive(a, value(args, ++i, a));
                    case "--max-seconds" -> o.maxSeconds = Double.parseDouble(value(args, ++i, a));
                    case "--precision" -> o.precision = GemmPrecision.parse(value(args, ++i, a));
                    case "--seed" -> o.seed = Long.parseLong(value(args, ++i, a));
                    case "--codes" -> {
                        String c = value(args, ++i, a);
                        if (!c.equals("periodic") && !c.equals("random")) {
                            throw new IllegalArgumentException("--codes " + c + ": expected periodic or random");
                        }
                        o.randomCodes = c.equals("random");
                    }
                    default -> throw new IllegalArgumentException("unknown argument '" + a + "'");
                }
            }
            if (o.ms == null) {
                o.ms = o.emulated ? new int[] {1, 96, 256} : new int[] {1, 4096 + 512};
            }
            if (o.tokens < 0) {
                o.tokens = o.emulated ? 64 : 4096;
            }
            if (o.txt < 0) {
                o.txt = o.emulated ? 8 : 512;
            }
            return o;
        }

        private static String value(String[] args, int i, String option) {
            if (i >= args.length) {
                throw new IllegalArgumentException(option + " needs a value");
            }
            return args[i];
        }

        private static int positive(String option, String v) {
            int n = Integer.parseInt(v);
            if (n < 1) {
                throw new IllegalArgumentException(option + " " + v + ": must be positive");
            }
            return n;
        }

        private static int nonNegative(String option, String v) {
            int n = Integer.parseInt(v);
            if (n < 0) {
                throw new IllegalArgumentException(option + " " + v + ": must not be negative");
            }
            return n;
        }
    }

    static final class NoGpuException extends RuntimeException {
        NoGpuException(String message, Throwable cause) {
            super(message, cause);
        }
    }

    static boolean gpuPresent() {
        return new File("/dev/nvidiactl").exists() || new File("/dev/nvidia0").exists();
    }

    /** The device the benchmark runs on: the emulation, or CUDA device 0 (a clear failure where there is none). */
    static Device openDevice(boolean emulated, GemmPrecision precision) {
        if (emulated) {
            return new EmulatedDevice(Long.MAX_VALUE, precision);
        }
        if (!gpuPresent()) {
            throw new NoGpuException(
                    "no NVIDIA GPU on this machine (/dev/nvidiactl and /dev/nvidia0 are absent):"
                            + " run it on a GPU machine (bash bench/gpu/run-on-gpu.sh), or pass --emulated to check the"
                            + " plumbing on the CPU at tiny sizes",
                    null);
        }
        try {
            return CudaDriverDevice.open(0, precision);
        } catch (IllegalStateException | LinkageError e) {
            throw new NoGpuException("the GPU cannot be used: " + e.getMessage(), e);
        }
    }

    // ---- the machine and the layout ------------------------------------------------------------------------------

    private static void printMachine(PrintStream out, Device device) {
        out.println("machine: " + device.describe());
        out.printf(
                Locale.ROOT,
                "host: %s, %d cores, Java %s (%s), heap max %.1f GiB, %s %s%n",
                cpuModel(),
                Runtime.getRuntime().availableProcessors(),
                System.getProperty("java.version"),
                System.getProperty("java.vm.name"),
                Runtime.getRuntime().maxMemory() / GIB,
                System.getProperty("os.name"),
                System.getProperty("os.version"));
    }

    private static String cpuModel() {
        try {
            for (String line : Files.readAllLines(Path.of("/proc/cpuinfo"))) {
                if (line.startsWith("model name")) {
                    return line.substring(line.indexOf(':') + 1).trim();
                }
            }
        } catch (IOException | RuntimeException e) {
            // not Linux, or not readable
        }
        return System.getProperty("os.arch");
    }

    /** A layout and where it came from. */
    record Layout(String description, Map<String, long[]> tensors) {
        long params() {
            long n = 0;
            for (long[] s : tensors.values()) {
                n += numel(s);
            }
            return n;
        }
    }

    static Layout layout(Options o, PrintStream out) {
        if (o.layout != null && Files.isRegularFile(o.layout)) {
            return new Layout(o.layout.toString(), SyntheticTensorSource.readLayout(o.layout));
        }
        if (o.layout != null) {
            out.println("WARNING: layout file " + o.layout + " is absent: using the built-in "
                    + (o.emulated ? "tiny" : "FLUX.1-dev") + " layout");
        }
        if (o.emulated) {
            return new Layout(
                    "tiny FLUX.1-dev-like layout (hidden 64, 4 heads of 16, mlp 256, 1 double + 1 single"
                            + " block; built in)",
                    tinyLayout());
        }
        return new Layout(
                "FLUX.1-dev (built in, the names and shapes of flux1-dev-layout.json)",
                SyntheticTensorSource.fluxDevLayout());
    }

    static Map<String, long[]> tinyLayout() {
        return SyntheticTensorSource.fluxLayout(64, 16, 256, 1, 1, 16, 32, 16, true);
    }

    static long numel(long[] shape) {
        long n = 1;
        for (long d : shape) {
            n *= d;
        }
        return n;
    }

    /** One distinct shape of the quantized block linears: its roles (e.g. "attn.qkv") and how many there are. */
    static final class LinearShape {
        final int out;
        final int in;
        final Set<String> roles = new LinkedHashSet<>();
        int count;

        LinearShape(int out, int in) {
            this.out = out;
            this.in = in;
        }

        String name() {
            return String.join(" + ", roles);
        }

        String dims() {
            return out + "x" + in;
        }
    }

    static List<LinearShape> blockShapes(Map<String, long[]> layout) {
        Map<String, LinearShape> byDims = new LinkedHashMap<>();
        for (Map.Entry<String, long[]> e : layout.entrySet()) {
            long[] s = e.getValue();
            if (!TernaryFormat.isQuantized(e.getKey(), s)) {
                continue;
            }
            LinearShape ls = byDims.computeIfAbsent(
                    s[0] + "x" + s[1], k -> new LinearShape(Math.toIntExact(s[0]), Math.toIntExact(s[1])));
            ls.count++;
            ls.roles.add(role(e.getKey()));
        }
        return new ArrayList<>(byDims.values());
    }

    /** {@code double_blocks.3.img_attn.qkv.weight -> double attn.qkv}. */
    static String role(String name) {
        String kind = name.startsWith("double_blocks") ? "double " : "single ";
        String r = BLOCK_PREFIX.matcher(name).replaceFirst("");
        r = r.replaceFirst("^(img|txt)_", "").replaceFirst("\\.weight$", "");
        return kind + r;
    }

    // ---- kernels -------------------------------------------------------------------------------------------------

    /** torch's bf16 matmul times from bench/gpu/torch_baseline.py: ms by "out x in @ m". */
    record TorchBaseline(String device, String version, Map<String, Double> ms) {
        Double get(int out, int in, int m) {
            return ms.get(out + "x" + in + "@" + m);
        }
    }

    static TorchBaseline readTorch(Path file, PrintStream out) {
        if (file == null) {
            out.println("torch baseline: none (no --torch FILE): no ratios against torch's BF16 matmul");
            return null;
        }
        if (!Files.isRegularFile(file)) {
            out.println("torch baseline: " + file + " is absent (did bench/gpu/torch_baseline.py fail? see its"
                    + " output): no ratios against torch's BF16 matmul");
            return null;
        }
        try {
            JsonNode root = new ObjectMapper().readTree(file.toFile());
            Map<String, Double> ms = new HashMap<>();
            for (JsonNode r : root.path("results")) {
                ms.put(
                        r.path("out").asInt() + "x" + r.path("in").asInt() + "@"
                                + r.path("m").asInt(),
                        r.path("ms").asDouble());
            }
            TorchBaseline t = new TorchBaseline(
                    root.path("device").asText("?"), root.path("torch").asText("?"), ms);
            out.println("torch baseline: " + file + ": torch " + t.version() + " on " + t.device() + ", " + ms.size()
                    + " timings (torch.matmul, bf16 storage and inputs, x [M, K] @ W[N, K].t())");
            return t;
        } catch (IOException | RuntimeException e) {
            out.println("torch baseline: cannot read " + file + ": " + e + ": no ratios against torch");
            return null;
        }
    }

    /**
     * The measured times of one shape at one M, in ms (NaN when not measured): the backend's 1.58-bit product
     * ({@link CudaBackend#ternaryLinear} at BF16 GEMM precision, the path the model runs at this M), the SIMT kernel
     * of {@code ternary_matmul.cu} alone, the decode + cuBLAS BF16 + epilogue path alone, and the baselines.
     */
    record Timing(
            LinearShape shape,
            int m,
            double backend,
            double kernel,
            double decodeGemm,
            double fp32,
            double bf16,
            double torch) {}

    static void kernels(Options o, PrintStream out) {
        Layout layout = layout(o, out);
        List<LinearShape> shapes = blockShapes(layout.tensors());
        out.println("== CudaBenchmark kernels"
                + (o.emulated ? " (EMULATED: the heap, tiny sizes; plumbing only," + " the times mean nothing)" : ""));
        try (CudaBackend b32 = new CudaBackend(openDevice(o.emulated, GemmPrecision.FP32));
                CudaBackend b16 = new CudaBackend(openDevice(o.emulated, GemmPrecision.BF16))) {
            printMachine(out, b32.device());
            out.println("layout: " + layout.description() + ": " + shapes.size() + " distinct block linear shapes");
            out.println("problem: y [M, N] = x [M, K] . W[N, K]^T, float32 x and y, M in " + Arrays.toString(o.ms)
                    + (o.emulated ? "" : " (4608 = 4096 image + 512 text tokens at 1024 x 1024)"));
            out.println("1.58-bit weights: codes in bit planes (2 bits a weight) + a float32 scale per row; timed as"
                    + " (a) the backend: CudaBackend.ternaryLinear at bf16 GEMM precision, the path the model runs:"
                    + " the SIMT kernel below M = " + TernaryLaunch.DENSE_FROM_M + ", from there the codes decoded"
                    + " to a float32 scratch weight + one cuBLAS GEMM + the scale epilogue; (b) the SIMT kernel "
                    + CudaModules.TERNARY_MATMUL + " alone (" + TernaryLaunch.SMALL_M_KERNEL + " for M <= "
                    + TernaryLaunch.SMALL_M_MAX + ", " + TernaryLaunch.TILED_KERNEL + " above); (c) for M > "
                    + TernaryLaunch.SMALL_M_MAX + ", decode + cuBLAS BF16 + epilogue alone");
            out.println("baselines: cuBLAS FP32 / BF16 = Device.gemm (cublasGemmStridedBatchedEx) on float32 storage,"
                    + " CUBLAS_COMPUTE_32F / CUBLAS_COMPUTE_32F_FAST_16BF, on the same weights (codes x scales as"
                    + " floats); torch BF16 = torch.matmul on bf16 storage (bench/gpu/torch_baseline.py, same run)");
            out.println("timing: " + WARMUP + " warm-up calls, then "
                    + (o.reps > 0 ? o.reps + " reps" : "reps for" + " about " + autoSeconds(o) + " s (3..2000)")
                    + " back to back, synchronize, wall time / reps"
                    + " (System.nanoTime; includes the host's launch overhead)");
            out.println("speedup = baseline ms / 1.58-bit ms (> 1: the 1.58-bit product is faster)");
            TorchBaseline torch = readTorch(o.torch, out);
            List<Timing> timings = new ArrayList<>();
            for (LinearShape s : shapes) {
                timings.addAll(timeShape(o, b32, b16, s, torch, out));
            }
            for (int m : o.ms) {
                summarize(o, timings.stream().filter(t -> t.m() == m).toList(), m, torch != null, out);
            }
            weightBytes(layout, shapes, out);
        }
    }

    private static double autoSeconds(Options o) {
        return o.emulated ? 0.02 : 0.1;
    }

    private static List<Timing> timeShape(
            Options o, CudaBackend b32, CudaBackend b16, LinearShape s, TorchBaseline torch, PrintStream out) {
        Device dev32 = b32.device(), dev16 = b16.device();
        int n = s.out, k = s.in, maxM = Arrays.stream(o.ms).max().orElseThrow();
        SplittableRandom random = new SplittableRandom(o.seed * 31 + (long) n * 7 + k);
        int[] codes = randomCodes(n, k, random);
        float[] scale = new float[n];
        for (int i = 0; i < n; i++) {
            scale[i] = (float) (Math.sqrt(1.5 / k) * (0.75 + 0.5 * random.nextDouble()));
        }
        float[] dense = dense(codes, scale, n, k);
        float[] xAll = new float[Math.multiplyExact(maxM, k)];
        for (int i = 0; i < xAll.length; i++) {
            xAll[i] = (float) (random.nextDouble() * 2 - 1);
        }
        List<Long> on32 = new ArrayList<>(), on16 = new ArrayList<>();
        Tensor wBackend = null;
        List<Timing> timings = new ArrayList<>();
        try {
            // the SIMT kernel and cuBLAS FP32 on the FP32 device; decode + GEMM and cuBLAS BF16 on the BF16 one
            long codes32 = alloc(dev32, on32, GpuTernaryLayout.bytes(n, k)), scale32 = alloc(dev32, on32, 4L * n);
            long dense32 = alloc(dev32, on32, 4L * dense.length), x32 = alloc(dev32, on32, 4L * xAll.length);
            long y32 = alloc(dev32, on32, 4L * maxM * n);
            long codes16 = alloc(dev16, on16, GpuTernaryLayout.bytes(n, k)), scale16 = alloc(dev16, on16, 4L * n);
            long dense16 = alloc(dev16, on16, 4L * dense.length), x16 = alloc(dev16, on16, 4L * xAll.length);
            long y16 = alloc(dev16, on16, 4L * maxM * n), scratch16 = alloc(dev16, on16, 4L * dense.length);
            for (Device d : new Device[] {dev32, dev16}) {
                d.upload(d == dev32 ? codes32 : codes16, codes);
                d.upload(d == dev32 ? scale32 : scale16, scale, 0, n);
                d.upload(d == dev32 ? dense32 : dense16, dense, 0, dense.length);
                d.upload(d == dev32 ? x32 : x16, xAll, 0, xAll.length);
            }
            wBackend = b16.uploadTernary(GpuTernaryLayout.toHfPacked(codes, n, k), n, k, scale);
            for (int m : o.ms) {
                timings.add(timeAtM(
                        o, b16, wBackend, s, m, xAll, torch, out, dev32, codes32, scale32, dense32, x32, y32, dev16,
                        codes16, scale16, dense16, x16, y16, scratch16));
            }
        } finally {
            if (wBackend != null) {
                wBackend.close();
            }
            on32.forEach(dev32::free);
            on16.forEach(dev16::free);
        }
        return timings;
    }

    private static long alloc(Device d, List<Long> owned, long bytes) {
        long p = d.allocate(bytes);
        owned.add(p);
        return p;
    }

    private static Timing timeAtM(
            Options o,
            CudaBackend b16,
            Tensor wBackend,
            LinearShape s,
            int m,
            float[] xAll,
            TorchBaseline torch,
            PrintStream out,
            Device dev32,
            long codes32,
            long scale32,
            long dense32,
            long x32,
            long y32,
            Device dev16,
            long codes16,
            long scale16,
            long dense16,
            long x16,
            long y16,
            long scratch16) {
        int n = s.out, k = s.in;
        boolean check = (long) m * n <= 1L << 22;
        Map<String, float[]> results = new LinkedHashMap<>();
        // (a) the backend's 1.58-bit product, as the model calls it
        Tensor xt = b16.upload(Arrays.copyOf(xAll, m * k), m, k);
        double backendMs;
        try {
            backendMs = time(o, b16.device(), () -> {
                try (TensorScope scope = b16.openScope()) {
                    b16.ternaryLinear(xt, wBackend, null);
                }
            });
            if (check) {
                try (TensorScope scope = b16.openScope()) {
                    results.put("the backend", b16.download(b16.ternaryLinear(xt, wBackend, null)));
                }
            }
        } finally {
            xt.close();
        }
        // (b) the SIMT kernel alone
        TernaryLaunch plan = TernaryLaunch.plan(m, n, k);
        KernelArgs args = new KernelArgs()
                .ptr(x32)
                .ptr(codes32)
                .ptr(scale32)
                .ptr(0)
                .ptr(y32)
                .i(m)
                .i(n)
                .i(k);
        double kernelMs =
                time(o, dev32, () -> dev32.launch(CudaModules.TERNARY_MATMUL, plan.kernel(), plan.geometry(), args));
        download(check, dev32, y32, m * n, "the SIMT kernel", results);
        // (c) decode + cuBLAS BF16 + epilogue alone
        double decodeGemmMs = Double.NaN;
        if (m > TernaryLaunch.SMALL_M_MAX) {
            decodeGemmMs = time(o, dev16, () -> decodeGemm(dev16, codes16, scale16, scratch16, x16, y16, m, n, k));
            download(check, dev16, y16, m * n, "decode + GEMM", results);
        }
        double fp32Ms = time(o, dev32, () -> matmulNt(dev32, x32, dense32, y32, m, n, k));
        download(check, dev32, y32, m * n, "cuBLAS FP32", results);
        double bf16Ms = time(o, dev16, () -> matmulNt(dev16, x16, dense16, y16, m, n, k));
        download(check, dev16, y16, m * n, "cuBLAS BF16", results);
        Double t = torch == null ? null : torch.get(n, k, m);
        double torchMs = t == null || t <= 0 ? Double.NaN : t;

        String backendPath = m >= TernaryLaunch.DENSE_FROM_M ? "decode + GEMM" : plan.kernel();
        double flops = 2.0 * m * n * k;
        long ternaryBytes = GpuTernaryLayout.bytes(n, k) + 4L * n;
        out.printf(Locale.ROOT, "%s %s M=%d%n", s.name(), s.dims(), m);
        row(out, "1.58-bit, the backend (" + backendPath + ")", backendMs, flops, ternaryBytes, Double.NaN, Double.NaN);
        row(out, "1.58-bit, SIMT kernel " + plan.kernel(), kernelMs, flops, ternaryBytes, Double.NaN, Double.NaN);
        if (!Double.isNaN(decodeGemmMs)) {
            row(
                    out,
                    "1.58-bit, decode + cuBLAS BF16 + epilogue",
                    decodeGemmMs,
                    flops,
                    ternaryBytes,
                    Double.NaN,
                    Double.NaN);
        }
        row(out, "cuBLAS FP32 (fp32 storage)", fp32Ms, flops, 4L * n * k, fp32Ms / backendMs, fp32Ms / kernelMs);
        row(out, "cuBLAS BF16 (fp32 storage)", bf16Ms, flops, 4L * n * k, bf16Ms / backendMs, bf16Ms / kernelMs);
        if (torch != null) {
            if (Double.isNaN(torchMs)) {
                out.println("    torch BF16: n/a (no timing for this shape and M in the torch baseline)");
            } else {
                row(
                        out,
                        "torch BF16 (bf16 storage)",
                        torchMs,
                        flops,
                        2L * n * k,
                        torchMs / backendMs,
                        torchMs / kernelMs);
            }
        }
        if (check) {
            float[] reference = results.get("cuBLAS FP32");
            StringBuilder line = new StringBuilder("    check, relative L2 against cuBLAS FP32 on the same weights:");
            for (Map.Entry<String, float[]> e : results.entrySet()) {
                if (e.getValue() != reference) {
                    line.append(String.format(Locale.ROOT, " %s %.2e;", e.getKey(), relL2(e.getValue(), reference)));
                }
            }
            out.println(line);
        }
        out.flush();
        return new Timing(s, m, backendMs, kernelMs, decodeGemmMs, fp32Ms, bf16Ms, torchMs);
    }

    private static void row(
            PrintStream out,
            String what,
            double ms,
            double flops,
            long weightBytes,
            double speedupBackend,
            double speedupKernel) {
        String speedups = Double.isNaN(speedupBackend)
                ? ""
                : String.format(
                        Locale.ROOT,
                        "  speedup of the backend %6.2fx, of the SIMT kernel %6.2fx",
                        speedupBackend,
                        speedupKernel);
        out.printf(
                Locale.ROOT,
                "    %-46s %10.4f ms %8.2f TFLOP/s %8.1f GB/s of weights%s%n",
                what,
                ms,
                flops / ms / 1e9,
                weightBytes / ms / 1e6,
                speedups);
    }

    private static void download(
            boolean check, Device d, long y, int count, String what, Map<String, float[]> results) {
        if (check) {
            float[] v = new float[count];
            d.download(y, v);
            results.put(what, v);
        }
    }

    /** What CudaBackend.ternaryLinear does from DENSE_FROM_M rows on: decode, one GEMM, the epilogue. */
    private static void decodeGemm(
            Device d, long codes, long scale, long scratch, long x, long y, int m, int n, int k) {
        d.launch(
                OpsKernels.MODULE,
                OpsKernels.TERNARY_DECODE,
                OpsKernels.elementwise((long) n * k),
                new KernelArgs().ptr(codes).ptr(scratch).i(n).i(k));
        matmulNt(d, x, scratch, y, m, n, k);
        d.launch(
                OpsKernels.MODULE,
                OpsKernels.SCALE_BIAS_ROWS,
                OpsKernels.elementwise((long) m * n),
                new KernelArgs().ptr(y).ptr(scale).ptr(0).i(m).i(n));
    }

    /** {@code y [M, N] = x [M, K] . w [N, K]^T} in cuBLAS's column-major convention, as CudaBackend.linear does. */
    private static void matmulNt(Device d, long x, long w, long y, int m, int n, int k) {
        d.gemm(true, false, n, m, k, 1f, w, k, 0, x, k, 0, 0f, y, n, 0, 1);
    }

    /** Warm-up, then reps (fixed, or enough for about autoSeconds), synchronized; ms per call. */
    private static double time(Options o, Device d, Runnable call) {
        for (int i = 0; i < WARMUP; i++) {
            call.run();
        }
        d.synchronize();
        int reps = o.reps;
        if (reps <= 0) {
            long t0 = System.nanoTime();
            call.run();
            d.synchronize();
            double one = Math.max(1e-7, (System.nanoTime() - t0) / 1e9);
            reps = (int) Math.max(3, Math.min(2000, Math.ceil(autoSeconds(o) / one)));
        }
        long t0 = System.nanoTime();
        for (int i = 0; i < reps; i++) {
            call.run();
        }
        d.synchronize();
        return (System.nanoTime() - t0) / 1e6 / reps;
    }

    /** Random codes in the GPU layout: +1 and -1 a quarter of the time each, 0 otherwise; padding inputs 0. */
    static int[] randomCodes(int out, int in, SplittableRandom random) {
        int kw = GpuTernaryLayout.chunks(in);
        int[] w = new int[Math.toIntExact(GpuTernaryLayout.words(out, in))];
        int tail = in % GpuTernaryLayout.CHUNK;
        int lastMask = tail == 0 ? -1 : (1 << tail) - 1;
        for (int o = 0; o < out; o++) {
            for (int c = 0; c < kw; c++) {
                int a = random.nextInt(), b = random.nextInt();
                int mask = c == kw - 1 ? lastMask : -1;
                w[2 * (o * kw + c)] = a & b & mask;
                w[2 * (o * kw + c) + 1] = a & ~b & mask;
            }
        }
        return w;
    }

    /** The weights the codes stand for, {@code code x scale} as floats {@code [out, in]}. */
    static float[] dense(int[] codes, float[] scale, int out, int in) {
        float[] w = new float[Math.multiplyExact(out, in)];
        int kw = GpuTernaryLayout.chunks(in);
        for (int o = 0; o < out; o++) {
            float s = scale[o];
            for (int c = 0; c < kw; c++) {
                int plus = codes[2 * (o * kw + c)], minus = codes[2 * (o * kw + c) + 1];
                for (int b = 0, k = c * GpuTernaryLayout.CHUNK; b < GpuTernaryLayout.CHUNK && k < in; b++, k++) {
                    w[o * in + k] = (((plus >>> b) & 1) - ((minus >>> b) & 1)) * s;
                }
            }
        }
        return w;
    }

    static double relL2(float[] a, float[] b) {
        double num = 0, den = 0;
        for (int i = 0; i < a.length; i++) {
            double d = (double) a[i] - b[i];
            num += d * d;
            den += (double) b[i] * b[i];
        }
        return den == 0 ? (num == 0 ? 0 : Double.POSITIVE_INFINITY) : Math.sqrt(num / den);
    }

    private static void summarize(Options o, List<Timing> timings, int m, boolean haveTorch, PrintStream out) {
        double backend = 0, kernel = 0, fp32 = 0, bf16 = 0, torch = 0;
        boolean torchComplete = haveTorch;
        double worstTorch = Double.POSITIVE_INFINITY, worstBf16 = Double.POSITIVE_INFINITY;
        for (Timing t : timings) {
            int c = t.shape().count;
            backend += c * t.backend();
            kernel += c * t.kernel();
            fp32 += c * t.fp32();
            bf16 += c * t.bf16();
            worstBf16 = Math.min(worstBf16, t.bf16() / t.backend());
            if (Double.isNaN(t.torch())) {
                torchComplete = false;
            } else {
                torch += c * t.torch();
                worstTorch = Math.min(worstTorch, t.torch() / t.backend());
            }
        }
        out.printf(
                Locale.ROOT,
                "-- M = %d, all block linears of the transformer (each shape x its count in the"
                        + " layout): 1.58-bit backend %.3f ms, SIMT kernel %.3f ms; cuBLAS FP32 %.3f ms (speedup of the"
                        + " backend %.2fx), cuBLAS BF16 %.3f ms (%.2fx)%s%n",
                m,
                backend,
                kernel,
                fp32,
                fp32 / backend,
                bf16,
                bf16 / backend,
                torchComplete
                        ? String.format(Locale.ROOT, ", torch BF16 %.3f ms (%.2fx)", torch, torch / backend)
                        : "");
        double target = m <= TernaryLaunch.SMALL_M_MAX ? TARGET_SPEEDUP_M1 : TARGET_SPEEDUP_LARGE_M;
        String baseline = torchComplete
                ? "torch BF16 (cuBLAS, bf16 storage)"
                : "cuBLAS BF16 (float32 storage; no" + " torch baseline)";
        double worst = torchComplete ? worstTorch : worstBf16;
        out.printf(
                Locale.ROOT,
                "   target at M = %d: the 1.58-bit product (the backend) at least %.1fx as fast as"
                        + " %s on every shape: slowest shape's speedup %.2fx: %s%s%n",
                m,
                target,
                baseline,
                worst,
                worst >= target ? "MET" : "MISSED",
                o.emulated ? " (emulated: meaningless)" : "");
    }

    private static void weightBytes(Layout layout, List<LinearShape> shapes, PrintStream out) {
        out.println("-- weight bytes in device memory: ternary = bit planes (2 bits a weight) + float32 scale per row;"
                + " BF16 = 2 bytes a parameter");
        for (LinearShape s : shapes) {
            long ternary = GpuTernaryLayout.bytes(s.out, s.in) + 4L * s.out, bf16 = 2L * s.out * s.in;
            out.printf(
                    Locale.ROOT,
                    "%-40s %12s x%-3d ternary %,14d B, BF16 %,14d B: %.2fx smaller%n",
                    s.name(),
                    s.dims(),
                    s.count,
                    ternary,
                    bf16,
                    (double) bf16 / ternary);
        }
        long quantizedParams = 0, otherParams = 0, ternaryBytes = 0;
        for (Map.Entry<String, long[]> e : layout.tensors().entrySet()) {
            long[] s = e.getValue();
            if (TernaryFormat.isQuantized(e.getKey(), s)) {
                int n = Math.toIntExact(s[0]), k = Math.toIntExact(s[1]);
                quantizedParams += (long) n * k;
                ternaryBytes += GpuTernaryLayout.bytes(n, k) + 4L * n;
            } else {
                otherParams += numel(s);
            }
        }
        long params = quantizedParams + otherParams, bf16 = 2 * params;
        long asLoaded = ternaryBytes + 4 * otherParams, otherBf16 = ternaryBytes + 2 * otherParams;
        out.printf(
                Locale.ROOT,
                "whole transformer (%s): %,d parameters, %,d in block linears (%.2f%%)%n",
                layout.description(),
                params,
                quantizedParams,
                100.0 * quantizedParams / params);
        out.printf(Locale.ROOT, "   BF16: %,d B (%.2f GiB)%n", bf16, bf16 / GIB);
        out.printf(
                Locale.ROOT,
                "   1.58-bit as the CUDA backend holds it (codes + scales, other tensors float32):"
                        + " %,d B (%.2f GiB): %.2fx smaller than BF16 (target >= %.1fx: %s; the paper: %.1fx)%n",
                asLoaded,
                asLoaded / GIB,
                (double) bf16 / asLoaded,
                TARGET_MEMORY_RATIO,
                (double) bf16 / asLoaded >= TARGET_MEMORY_RATIO ? "MET" : "MISSED",
                PAPER_MEMORY_RATIO);
        out.printf(
                Locale.ROOT,
                "   1.58-bit with the other tensors in BF16: %,d B (%.2f GiB): %.2fx smaller than" + " BF16%n",
                otherBf16,
                otherBf16 / GIB,
                (double) bf16 / otherBf16);
    }

    // ---- step ----------------------------------------------------------------------------------------------------

    static void step(Options o, PrintStream out) {
        long start = System.nanoTime();
        Layout layout = layout(o, out);
        SyntheticTensorSource weights =
                SyntheticTensorSource.quantized(layout.tensors(), o.seed, layout.description(), !o.randomCodes);
        int headDim = headDim(layout.tensors());
        int[] axes = ropeAxes(headDim);
        ObjectNode json = new ObjectMapper().createObjectNode();
        json.putArray("axes_dims_rope")
                .addAll(Arrays.stream(axes)
                        .mapToObj(a -> (JsonNode) json.numberNode(a))
                        .toList());
        FluxConfig config = FluxConfigReader.derive(
                weights, json, Path.of("(benchmark: axes_dims_rope " + Arrays.toString(axes) + ")"));
        out.println("== CudaBenchmark step"
                + (o.emulated ? " (EMULATED: the heap, tiny sizes; plumbing only, the" + " times mean nothing)" : ""));
        try (CudaBackend backend = new CudaBackend(openDevice(o.emulated, o.precision))) {
            printMachine(out, backend.device());
            out.println("model: " + config + ", synthetic weights from " + layout.description()
                    + ": block linears 1.58-bit ("
                    + (o.randomCodes
                            ? "random codes"
                            : "codes a random pattern of"
                                    + " period 8 along the inputs per row, so that the load's repack runs at full speed; the kernels'"
                                    + " time does not depend on the values")
                    + "), other tensors BF16, generated in memory");
            out.printf(
                    Locale.ROOT,
                    "problem: batch 1, %d image + %d text tokens%s, dense GEMMs (attention, the"
                            + " embedders) at %s, activations float32%n",
                    o.tokens,
                    o.txt,
                    o.emulated ? "" : o.tokens == 4096 ? " (1024 x 1024)" : "",
                    o.precision.optionName());
            long t0 = System.nanoTime();
            FluxTransformer transformer =
                    new FluxTransformer(backend, config, new FluxWeightLoader(weights, backend, config).load());
            backend.device().synchronize();
            double loadS = (System.nanoTime() - t0) / 1e9;
            DeviceMemoryPool.Stats loaded = backend.memory();
            long resident = transformer.residentBytes(), bf16 = 2 * layout.params();
            out.printf(
                    Locale.ROOT,
                    "loaded in %.1f s: weights resident %,d B (%.2f GiB), BF16 would be %,d B (%.2f"
                            + " GiB): %.2fx smaller (target >= %.1fx: %s; the paper: %.1fx); device pool %,d B in use%n",
                    loadS,
                    resident,
                    resident / GIB,
                    bf16,
                    bf16 / GIB,
                    (double) bf16 / resident,
                    TARGET_MEMORY_RATIO,
                    (double) bf16 / resident >= TARGET_MEMORY_RATIO ? "MET" : "MISSED",
                    PAPER_MEMORY_RATIO,
                    loaded.inUseBytes());
            FluxInputs inputs = inputs(config, o.tokens, o.txt, o.seed);
            double first = forward(backend, transformer, inputs, out, "warm-up step (untimed)");
            List<Double> times = new ArrayList<>();
            double last = first;
            for (int i = 0; i < o.steps; i++) {
                double elapsed = (System.nanoTime() - start) / 1e9;
                if (elapsed + last > o.maxSeconds) {
                    out.printf(
                            Locale.ROOT,
                            "stopping after %d timed steps: another would end past --max-seconds"
                                    + " %.0f (%.1f s so far)%n",
                            i,
                            o.maxSeconds,
                            elapsed);
                    break;
                }
                last = forward(backend, transformer, inputs, out, "step " + (i + 1));
                times.add(last);
            }
            double mean =
                    times.stream().mapToDouble(Double::doubleValue).average().orElse(Double.NaN);
            double min = times.stream().mapToDouble(Double::doubleValue).min().orElse(Double.NaN);
            DeviceMemoryPool.Stats stats = backend.memory();
            if (times.isEmpty()) {
                out.printf(
                        Locale.ROOT,
                        "seconds per denoising step: at most %.3f s (the untimed warm-up step only,"
                                + " which includes one-time costs; no timed step fitted in --max-seconds %.0f)%n",
                        first,
                        o.maxSeconds);
            } else {
                out.printf(
                        Locale.ROOT,
                        "seconds per denoising step: %.3f s mean over %d steps (min %.3f s; warm-up"
                                + " %.3f s); 28 steps %.1f s, 50 steps %.1f s%n",
                        mean,
                        times.size(),
                        min,
                        first,
                        28 * mean,
                        50 * mean);
            }
            out.printf(
                    Locale.ROOT,
                    "device memory (the backend's pool): peak %,d B (%.2f GiB) on the device, peak"
                            + " %,d B in live tensors, %d device allocations; weights %,d B of it; BF16 weights alone would"
                            + " be %.2f GiB%n",
                    stats.peakDeviceBytes(),
                    stats.peakDeviceBytes() / GIB,
                    stats.peakInUseBytes(),
                    stats.deviceAllocations(),
                    loaded.inUseBytes(),
                    bf16 / GIB);
        }
    }

    private static double forward(
            CudaBackend backend, FluxTransformer transformer, FluxInputs inputs, PrintStream out, String what) {
        long t0 = System.nanoTime();
        float[] v;
        try (TensorScope scope = backend.openScope()) {
            Tensor velocity = transformer.forward(inputs, TapSink.NONE);
            v = backend.download(velocity);
        }
        double s = (System.nanoTime() - t0) / 1e9;
        long nonFinite = 0;
        for (float f : v) {
            if (!Float.isFinite(f)) {
                nonFinite++;
            }
        }
        out.printf(
                Locale.ROOT,
                "%s: %.3f s (output %d values%s)%n",
                what,
                s,
                v.length,
                nonFinite == 0 ? ", all finite" : ", " + nonFinite + " not finite");
        out.flush();
        return s;
    }

    private static int headDim(Map<String, long[]> layout) {
        for (String n :
                new String[] {"double_blocks.0.img_attn.norm.query_norm.scale", "single_blocks.0.norm.query_norm.scale"
                }) {
            if (layout.containsKey(n)) {
                return Math.toIntExact(layout.get(n)[0]);
            }
        }
        throw new IllegalArgumentException("the layout has no query_norm.scale of block 0: not a FLUX transformer");
    }

    /** FLUX's RoPE axes for a head dimension: 128 -> [16, 56, 56]; 16 -> [4, 6, 6]. */
    static int[] ropeAxes(int headDim) {
        int a = 2 * ((headDim * 7 / 16) / 2);
        return new int[] {headDim - 2 * a, a, a};
    }

    /** Random latent tokens on a grid as close to square as the token count allows, random text, t = 0.75. */
    static FluxInputs inputs(FluxConfig c, int tokens, int txt, long seed) {
        SplittableRandom random = new SplittableRandom(seed);
        int rows = (int) Math.sqrt(tokens);
        while (tokens % rows != 0) {
            rows--;
        }
        int cols = tokens / rows, axes = c.axesDim().length;
        float[] imgIds = new float[tokens * axes];
        for (int r = 0; r < rows; r++) {
            for (int q = 0; q < cols; q++) {
                imgIds[(r * cols + q) * axes + 1] = r;
                imgIds[(r * cols + q) * axes + 2] = q;
            }
        }
        return new FluxInputs(
                1,
                tokens,
                txt,
                gaussian(random, tokens * c.inChannels()),
                imgIds,
                gaussian(random, txt * c.contextDim()),
                new float[txt * axes],
                new float[] {0.75f},
                gaussian(random, c.vecDim()),
                c.guidanceEmbed() ? new float[] {3.5f} : null);
    }

    private static float[] gaussian(SplittableRandom random, int n) {
        float[] x = new float[n];
        for (int i = 0; i < n; i += 2) {
            double u = Math.max(1e-12, random.nextDouble()), v = random.nextDouble();
            double r = Math.sqrt(-2 * Math.log(u));
            x[i] = (float) (r * Math.cos(2 * Math.PI * v));
            if (i + 1 < n) {
                x[i + 1] = (float) (r * Math.sin(2 * Math.PI * v));
            }
        }
        return x;
    }
}
