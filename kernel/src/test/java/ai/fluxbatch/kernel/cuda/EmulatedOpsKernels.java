package ai.fluxbatch.kernel.cuda;

import java.util.Arrays;
import java.util.HashMap;
import java.util.Map;

/**
 * Java ports of the kernels of module {@link OpsKernels#MODULE}, for {@link EmulatedDevice}: each checks its
 * arguments against the kernel's parameter list ({@link Signature}), its launch geometry against the one
 * {@link OpsKernels} prescribes, and computes what {@link OpsKernels} documents, element by element in float32,
 * reading and writing device memory through {@link Memory} (so pointers with byte offsets work and every access is
 * bounds-checked). The reductions of the row kernels are sequential float32 sums (two-pass mean and variance), so
 * they may differ from the GPU's tree reductions in the last bits.
 */
final class EmulatedOpsKernels {
    private EmulatedOpsKernels() {}

    /** Device memory as the ports see it. */
    interface Memory {
        /**
         * A view of {@code count} 4-byte words at device address {@code pointer}.
         *
         * @throws IllegalStateException when the range is not inside one live allocation; the message starts with
         *                               {@code what}
         */
        Words words(long pointer, long count, String what);
    }

    /** Words of device memory: {@code count} ints of {@code array} from {@code base}. */
    static final class Words {
        final int[] array;
        final int base;
        final int count;

        Words(int[] array, int base, int count) {
            this.array = array;
            this.base = base;
            this.count = count;
        }

        float f(long i) {
            return Float.intBitsToFloat(array[index(i)]);
        }

        void f(long i, float v) {
            array[index(i)] = Float.floatToRawIntBits(v);
        }

        int i(long i) {
            return array[index(i)];
        }

        void i(long i, int v) {
            array[index(i)] = v;
        }

        private int index(long i) {
            if (i < 0 || i >= count) {
                throw new IndexOutOfBoundsException("word " + i + " of a view of " + count);
            }
            return base + (int) i;
        }

        float[] toFloats() {
            float[] a = new float[count];
            for (int k = 0; k < count; k++) {
                a[k] = Float.intBitsToFloat(array[base + k]);
            }
            return a;
        }

        int[] toInts() {
            int[] a = new int[count];
            System.arraycopy(array, base, a, 0, count);
            return a;
        }

        void set(float[] v) {
            if (v.length != count) {
                throw new IllegalArgumentException(v.length + " floats into a view of " + count);
            }
            for (int k = 0; k < count; k++) {
                array[base + k] = Float.floatToRawIntBits(v[k]);
            }
        }

        boolean overlaps(Words o) {
            return array == o.array && base < o.base + o.count && o.base < base + count;
        }
    }

    /**
     * A kernel's parameter list, parsed from its C-like signature, e.g.
     * {@code fb_add(ptr a, ptr b, ptr y, int n)}; {@code ptr?} is a pointer that may be null.
     */
    static final class Signature {
        final String kernel;
        final String text;
        final KernelArgs.Kind[] kinds;
        final boolean[] nullable;
        final String[] names;

        Signature(String text) {
            this.text = text;
            int open = text.indexOf('('), close = text.lastIndexOf(')');
            this.kernel = text.substring(0, open);
            String[] params = text.substring(open + 1, close).split(",");
            kinds = new KernelArgs.Kind[params.length];
            nullable = new boolean[params.length];
            names = new String[params.length];
            for (int p = 0; p < params.length; p++) {
                String[] tn = params[p].trim().split(" ");
                names[p] = tn[1];
                switch (tn[0]) {
                    case "ptr" -> kinds[p] = KernelArgs.Kind.POINTER;
                    case "ptr?" -> {
                        kinds[p] = KernelArgs.Kind.POINTER;
                        nullable[p] = true;
                    }
                    case "int" -> kinds[p] = KernelArgs.Kind.INT;
                    case "float" -> kinds[p] = KernelArgs.Kind.FLOAT;
                    default -> throw new IllegalArgumentException("bad parameter type in " + text);
                }
            }
        }

        /** @throws IllegalArgumentException naming the kernel when the arguments do not match the parameters */
        void check(KernelArgs args) {
            if (args.size() != kinds.length) {
                throw new IllegalArgumentException("kernel " + kernel + ": " + args.size() + " arguments "
                        + describe(args) + ", expected " + kinds.length + ": " + text);
            }
            for (int p = 0; p < kinds.length; p++) {
                KernelArgs.Arg a = args.get(p);
                if (a.kind() != kinds[p]) {
                    throw new IllegalArgumentException("kernel " + kernel + ": argument " + p + " (" + names[p]
                            + ") is " + a.kind() + ", expected " + kinds[p] + ": " + text + ", got " + describe(args));
                }
                if (a.kind() == KernelArgs.Kind.POINTER && a.pointer() == 0 && !nullable[p]) {
                    throw new IllegalArgumentException("kernel " + kernel + ": argument " + p + " (" + names[p]
                            + ") is a null pointer, which " + text + " does not allow");
                }
            }
        }

        static String describe(KernelArgs args) {
            StringBuilder s = new StringBuilder("(");
            for (int p = 0; p < args.size(); p++) {
                KernelArgs.Arg a = args.get(p);
                s.append(p == 0 ? "" : ", ")
                        .append(
                                switch (a.kind()) {
                                    case POINTER -> "ptr 0x" + Long.toHexString(a.pointer());
                                    case INT -> "int " + a.intValue();
                                    case FLOAT -> "float " + a.floatValue();
                                });
            }
            return s.append(')').toString();
        }

        long ptr(KernelArgs args, String name) {
            return args.get(index(name)).pointer();
        }

        int i(KernelArgs args, String name) {
            return args.get(index(name)).intValue();
        }

        float f(KernelArgs args, String name) {
            return args.get(index(name)).floatValue();
        }

        /** An int parameter that must be at least {@code min}. */
        int atLeast(KernelArgs args, String name, int min) {
            int v = i(args, name);
            if (v < min) {
                throw new IllegalArgumentException(
                        "kernel " + kernel + ": " + name + " = " + v + " must be at least " + min);
            }
            return v;
        }

        private int index(String name) {
            for (int p = 0; p < names.length; p++) {
                if (names[p].equals(name)) {
                    return p;
                }
            }
            throw new IllegalArgumentException(kernel + " has no parameter " + name);
        }
    }

    @FunctionalInterface
    private interface Port {
        void run(Signature sig, Memory mem, LaunchGeometry g, KernelArgs a);
    }

    private record Kernel(Signature signature, Port port) {}

    private static final Map<String, Kernel> KERNELS = new HashMap<>();

    private static void define(String signature, Port port) {
        Signature s = new Signature(signature);
        KERNELS.put(s.kernel, new Kernel(s, port));
    }

    static {
        define(OpsKernels.ADD + "(ptr a, ptr b, ptr y, int n)", (s, m, g, a) -> binary(s, m, g, a, false));
        define(OpsKernels.MUL + "(ptr a, ptr b, ptr y, int n)", (s, m, g, a) -> binary(s, m, g, a, true));
        define(
                OpsKernels.GELU_TANH + "(ptr x, ptr y, int n)",
                (s, m, g, a) -> unary(s, m, g, a, x -> {
                    float inner = (float) Math.sqrt(2.0 / Math.PI) * (x + 0.044715f * x * x * x);
                    return 0.5f * x * (1f + (float) Math.tanh(inner));
                }));
        define(
                OpsKernels.SILU + "(ptr x, ptr y, int n)",
                (s, m, g, a) -> unary(s, m, g, a, x -> x / (1f + (float) Math.exp(-x))));
        define(
                OpsKernels.QUICK_GELU + "(ptr x, ptr y, int n)",
                (s, m, g, a) -> unary(s, m, g, a, x -> x / (1f + (float) Math.exp(-1.702f * x))));
        define(
                OpsKernels.MODULATE + "(ptr x, ptr shift, ptr scale, ptr y, int B, int L, int C)",
                EmulatedOpsKernels::modulate);
        define(
                OpsKernels.GATED_ADD + "(ptr x, ptr gate, ptr v, ptr y, int B, int L, int C)",
                EmulatedOpsKernels::gatedAdd);
        define(OpsKernels.ADD_BIAS_ROWS + "(ptr y, ptr bias, int rows, int cols)", EmulatedOpsKernels::addBiasRows);
        define(OpsKernels.TERNARY_DECODE + "(ptr w, ptr y, int N, int K)", EmulatedOpsKernels::ternaryDecode);
        define(
                OpsKernels.SCALE_BIAS_ROWS + "(ptr y, ptr scale, ptr? bias, int rows, int cols)",
                EmulatedOpsKernels::scaleBiasRows);
        define(
                OpsKernels.ADD_BIAS_CHANNELS + "(ptr y, ptr bias, int B, int C, int HW)",
                EmulatedOpsKernels::addBiasChannels);
        define(OpsKernels.ROPE + "(ptr x, ptr pe, ptr y, int B, int L, int H, int D)", EmulatedOpsKernels::rope);
        define(OpsKernels.EMBEDDING + "(ptr table, ptr ids, ptr y, int n, int C)", EmulatedOpsKernels::embedding);
        define(OpsKernels.BF16_WIDEN + "(ptr w, ptr y, int n)", EmulatedOpsKernels::bf16Widen);
        define(
                OpsKernels.EMBEDDING_BF16 + "(ptr table, ptr ids, ptr y, int n, int C)",
                EmulatedOpsKernels::embeddingBf16);
        define(
                OpsKernels.IM2COL + "(ptr x, ptr col, int C, int H, int W, int kh, int kw, int stride, int padTop,"
                        + " int padLeft, int Wo, int p0, int P)",
                EmulatedOpsKernels::im2col);
        define(OpsKernels.UPSAMPLE_NEAREST_2X + "(ptr x, ptr y, int BC, int H, int W)", EmulatedOpsKernels::upsample);
        define(
                OpsKernels.LAYER_NORM + "(ptr x, ptr? weight, ptr? bias, ptr y, int rows, int cols, float eps)",
                EmulatedOpsKernels::layerNorm);
        define(
                OpsKernels.RMS_NORM + "(ptr x, ptr scale, ptr y, int rows, int cols, float eps)",
                EmulatedOpsKernels::rmsNorm);
        define(
                OpsKernels.SOFTMAX_ROWS + "(ptr s, ptr? bias, int rows, int cols, int Lq, int causal)",
                EmulatedOpsKernels::softmaxRows);
        for (String flash : new String[] {
            OpsKernels.FLASH_ATTENTION_D32, OpsKernels.FLASH_ATTENTION_D64, OpsKernels.FLASH_ATTENTION_D128
        }) {
            define(
                    flash + "(ptr q, ptr k, ptr v, ptr? bias, ptr y, int B, int L, int H, int D, float scale,"
                            + " int causal)",
                    EmulatedOpsKernels::flashAttention);
        }
        define(
                OpsKernels.GROUP_NORM + "(ptr x, ptr weight, ptr bias, ptr y, int B, int C, int HW, int groups,"
                        + " float eps)",
                EmulatedOpsKernels::groupNorm);
        define(OpsKernels.TRANSPOSE_LAST2 + "(ptr x, ptr y, int M, int N)", EmulatedOpsKernels::transpose);
        define(OpsKernels.FILL + "(ptr y, float value, int n)", EmulatedOpsKernels::fill);
        define(
                OpsKernels.GELU_TANH_BACKWARD + "(ptr x, ptr dy, ptr y, int n)",
                (s, m, g, a) -> activationBackward(s, m, g, a, (x, dy) -> {
                    float c = 0.7978845608028654f;
                    float t = (float) Math.tanh(c * (x + 0.044715f * x * x * x));
                    return dy * (0.5f * (1f + t) + 0.5f * x * (1f - t * t) * c * (1f + 0.134145f * x * x));
                }));
        define(
                OpsKernels.SILU_BACKWARD + "(ptr x, ptr dy, ptr y, int n)",
                (s, m, g, a) -> activationBackward(s, m, g, a, (x, dy) -> {
                    float sig = 1f / (1f + (float) Math.exp(-x));
                    return dy * (sig * (1f + x * (1f - sig)));
                }));
        define(
                OpsKernels.MUL_PER_SAMPLE + "(ptr x, ptr v, float offset, ptr y, int B, int L, int C)",
                EmulatedOpsKernels::mulPerSample);
        define(
                OpsKernels.ROPE_BACKWARD + "(ptr dy, ptr pe, ptr y, int B, int L, int H, int D)",
                EmulatedOpsKernels::ropeBackward);
        define(
                OpsKernels.LAYER_NORM_BACKWARD + "(ptr x, ptr dy, ptr y, int rows, int cols, float eps)",
                EmulatedOpsKernels::layerNormBackward);
        define(
                OpsKernels.RMS_NORM_BACKWARD + "(ptr x, ptr scale, ptr dy, ptr y, int rows, int cols, float eps)",
                EmulatedOpsKernels::rmsNormBackward);
        define(
                OpsKernels.SOFTMAX_BACKWARD_ROWS + "(ptr p, ptr g, int rows, int cols)",
                EmulatedOpsKernels::softmaxBackwardRows);
        define(OpsKernels.SUM_ROWS + "(ptr a, ptr? v, ptr y, int B, int L, int C)", EmulatedOpsKernels::sumRows);
    }

    /** Whether module {@link OpsKernels#MODULE} has kernel {@code kernel}. */
    static boolean has(String kernel) {
        return KERNELS.containsKey(kernel);
    }

    /** The signature of kernel {@code kernel}, e.g. {@code fb_add(ptr a, ptr b, ptr y, int n)}. */
    static String signature(String kernel) {
        Kernel k = KERNELS.get(kernel);
        if (k == null) {
            throw new IllegalArgumentException("module " + OpsKernels.MODULE + " has no kernel " + kernel);
        }
        return k.signature.text;
    }

    /**
     * Runs kernel {@code kernel} of module {@link OpsKernels#MODULE}.
     *
     * @throws IllegalArgumentException on an unknown kernel, arguments that do not match its parameters, invalid
     *                                  counts or a launch geometry other than the prescribed one
     * @throws IllegalStateException    on an access outside live device memory
     */
    static void launch(Memory mem, String kernel, LaunchGeometry geometry, KernelArgs args) {
        Kernel k = KERNELS.get(kernel);
        if (k == null) {
            throw new IllegalArgumentException("module " + OpsKernels.MODULE + " has no kernel " + kernel);
        }
        k.signature.check(args);
        k.port.run(k.signature, mem, geometry, args);
    }

    // ---- geometry --------------------------------------------------------------------------------------------

    static void expectGeometry(String kernel, LaunchGeometry expected, LaunchGeometry actual, String what) {
        if (!expected.equals(actual)) {
            throw new IllegalArgumentException(
                    "kernel " + kernel + ": launched with " + actual + ", expected " + expected + " for " + what);
        }
    }

    private static void elementwise(Signature s, LaunchGeometry g, long space) {
        LaunchGeometry expected;
        try {
            expected = OpsKernels.elementwise(space);
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException("kernel " + s.kernel + ": " + e.getMessage(), e);
        }
        expectGeometry(s.kernel, expected, g, "the index space of " + space + " (OpsKernels.elementwise)");
    }

    private static void rows(Signature s, LaunchGeometry g, long rows) {
        if (rows > Integer.MAX_VALUE) {
            throw new IllegalArgumentException("kernel " + s.kernel + ": " + rows + " rows do not fit a grid");
        }
        LaunchGeometry expected;
        try {
            expected = OpsKernels.rows((int) rows);
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException("kernel " + s.kernel + ": " + e.getMessage(), e);
        }
        expectGeometry(s.kernel, expected, g, rows + " rows (OpsKernels.rows)");
    }

    private static Words words(Signature s, Memory mem, KernelArgs a, String name, long count) {
        return mem.words(s.ptr(a, name), count, "kernel " + s.kernel + ", argument " + name);
    }

    private static void noOverlap(Signature s, Words out, String outName, Words in, String inName) {
        if (out.overlaps(in)) {
            throw new IllegalArgumentException("kernel " + s.kernel + ": output " + outName + " overlaps input "
                    + inName + ", which this kernel does not allow");
        }
    }

    // ---- element-wise ----------------------------------------------------------------------------------------

    @FunctionalInterface
    private interface FloatOp {
        float apply(float x);
    }

    private static void binary(Signature s, Memory mem, LaunchGeometry g, KernelArgs a, boolean mul) {
        int n = s.atLeast(a, "n", 1);
        elementwise(s, g, n);
        Words x = words(s, mem, a, "a", n), y = words(s, mem, a, "b", n), out = words(s, mem, a, "y", n);
        for (int i = 0; i < n; i++) {
            out.f(i, mul ? x.f(i) * y.f(i) : x.f(i) + y.f(i));
        }
    }

    private static void unary(Signature s, Memory mem, LaunchGeometry g, KernelArgs a, FloatOp op) {
        int n = s.atLeast(a, "n", 1);
        elementwise(s, g, n);
        Words x = words(s, mem, a, "x", n), y = words(s, mem, a, "y", n);
        for (int i = 0; i < n; i++) {
            y.f(i, op.apply(x.f(i)));
        }
    }

    private static void modulate(Signature s, Memory mem, LaunchGeometry g, KernelArgs a) {
        int B = s.atLeast(a, "B", 1), L = s.atLeast(a, "L", 1), C = s.atLeast(a, "C", 1);
        long space = (long) B * L * C;
        elementwise(s, g, space);
        Words x = words(s, mem, a, "x", space), shift = words(s, mem, a, "shift", (long) B * C);
        Words scale = words(s, mem, a, "scale", (long) B * C), y = words(s, mem, a, "y", space);
        for (long i = 0; i < space; i++) {
            long c = i % C, b = i / ((long) L * C), bc = b * C + c;
            y.f(i, (1f + scale.f(bc)) * x.f(i) + shift.f(bc));
        }
    }

    private static void gatedAdd(Signature s, Memory mem, LaunchGeometry g, KernelArgs a) {
        int B = s.atLeast(a, "B", 1), L = s.atLeast(a, "L", 1), C = s.atLeast(a, "C", 1);
        long space = (long) B * L * C;
        elementwise(s, g, space);
        Words x = words(s, mem, a, "x", space), gate = words(s, mem, a, "gate", (long) B * C);
        Words v = words(s, mem, a, "v", space), y = words(s, mem, a, "y", space);
        for (long i = 0; i < space; i++) {
            long c = i % C, b = i / ((long) L * C);
            y.f(i, x.f(i) + gate.f(b * C + c) * v.f(i));
        }
    }

    private static void addBiasRows(Signature s, Memory mem, LaunchGeometry g, KernelArgs a) {
        int rows = s.atLeast(a, "rows", 1), cols = s.atLeast(a, "cols", 1);
        long space = (long) rows * cols;
        elementwise(s, g, space);
        Words y = words(s, mem, a, "y", space), bias = words(s, mem, a, "bias", cols);
        for (long i = 0; i < space; i++) {
            y.f(i, y.f(i) + bias.f(i % cols));
        }
    }

    private static void ternaryDecode(Signature s, Memory mem, LaunchGeometry g, KernelArgs a) {
        int n = s.atLeast(a, "N", 1), k = s.atLeast(a, "K", 1);
        long space = (long) n * k;
        elementwise(s, g, space);
        Words w = words(s, mem, a, "w", GpuTernaryLayout.words(n, k)), y = words(s, mem, a, "y", space);
        noOverlap(s, y, "y", w, "w");
        int kw = GpuTernaryLayout.chunks(k);
        for (long i = 0; i < space; i++) {
            long o = i / k, col = i % k, word = 2 * (o * kw + col / 32);
            int bit = (int) (col % 32);
            y.f(i, ((w.i(word) >>> bit) & 1) - ((w.i(word + 1) >>> bit) & 1));
        }
    }

    private static void scaleBiasRows(Signature s, Memory mem, LaunchGeometry g, KernelArgs a) {
        int rows = s.atLeast(a, "rows", 1), cols = s.atLeast(a, "cols", 1);
        long space = (long) rows * cols;
        elementwise(s, g, space);
        Words y = words(s, mem, a, "y", space), scale = words(s, mem, a, "scale", cols);
        Words bias = s.ptr(a, "bias") != 0 ? words(s, mem, a, "bias", cols) : null;
        for (long i = 0; i < space; i++) {
            float v = y.f(i) * scale.f(i % cols);
            y.f(i, bias != null ? v + bias.f(i % cols) : v);
        }
    }

    private static void addBiasChannels(Signature s, Memory mem, LaunchGeometry g, KernelArgs a) {
        int B = s.atLeast(a, "B", 1), C = s.atLeast(a, "C", 1), HW = s.atLeast(a, "HW", 1);
        long space = (long) B * C * HW;
        elementwise(s, g, space);
        Words y = words(s, mem, a, "y", space), bias = words(s, mem, a, "bias", C);
        for (long i = 0; i < space; i++) {
            y.f(i, y.f(i) + bias.f(i / HW % C));
        }
    }

    private static void rope(Signature s, Memory mem, LaunchGeometry g, KernelArgs a) {
        int B = s.atLeast(a, "B", 1), L = s.atLeast(a, "L", 1), H = s.atLeast(a, "H", 1), D = s.atLeast(a, "D", 2);
        if (D % 2 != 0) {
            throw new IllegalArgumentException("kernel " + s.kernel + ": D = " + D + " must be even");
        }
        int half = D / 2;
        long space = (long) B * L * H * half;
        elementwise(s, g, space);
        Words x = words(s, mem, a, "x", (long) B * L * H * D), y = words(s, mem, a, "y", (long) B * L * H * D);
        Words pe = words(s, mem, a, "pe", (long) B * L * half * 4);
        for (long idx = 0; idx < space; idx++) {
            long i = idx % half, rest = idx / half, h = rest % H, bl = rest / H;
            long xo = (bl * H + h) * D + 2 * i, po = (bl * half + i) * 4;
            float x0 = x.f(xo), x1 = x.f(xo + 1);
            float y0 = pe.f(po) * x0 + pe.f(po + 1) * x1;
            float y1 = pe.f(po + 2) * x0 + pe.f(po + 3) * x1;
            y.f(xo, y0);
            y.f(xo + 1, y1);
        }
    }

    /** bfloat16 element {@code i} of words holding two each, the first in the low half, widened to float32. */
    private static float bf16(Words w, long i) {
        int word = w.i(i / 2);
        int bits = (i % 2 == 0 ? word : word >>> 16) & 0xFFFF;
        return Float.intBitsToFloat(bits << 16);
    }

    private static void bf16Widen(Signature s, Memory mem, LaunchGeometry g, KernelArgs a) {
        int n = s.atLeast(a, "n", 1);
        elementwise(s, g, n);
        Words w = words(s, mem, a, "w", (n + 1L) / 2), y = words(s, mem, a, "y", n);
        noOverlap(s, y, "y", w, "w");
        for (long i = 0; i < n; i++) {
            y.f(i, bf16(w, i));
        }
    }

    private static void embeddingBf16(Signature s, Memory mem, LaunchGeometry g, KernelArgs a) {
        int n = s.atLeast(a, "n", 1), C = s.atLeast(a, "C", 1);
        long space = (long) n * C;
        elementwise(s, g, space);
        Words ids = words(s, mem, a, "ids", n), y = words(s, mem, a, "y", space);
        noOverlap(s, y, "y", ids, "ids");
        long table = s.ptr(a, "table");
        for (int i = 0; i < n; i++) {
            int id = ids.i(i);
            if (id < 0) {
                throw new IllegalStateException(
                        "kernel " + s.kernel + ": ids[" + i + "] = " + id + " is negative: an access before the table");
            }
            // the row's 16-bit values from element id C on: the words that hold them (a row may start mid-word)
            long first = (long) id * C, firstWord = first / 2, lastWord = (first + C - 1) / 2;
            Words row = mem.words(
                    table + 4 * firstWord,
                    lastWord - firstWord + 1,
                    "kernel " + s.kernel + ", table row ids[" + i + "] = " + id);
            noOverlap(s, y, "y", row, "table");
            for (int c = 0; c < C; c++) {
                y.f((long) i * C + c, bf16(row, first % 2 + c));
            }
        }
    }

    private static void embedding(Signature s, Memory mem, LaunchGeometry g, KernelArgs a) {
        int n = s.atLeast(a, "n", 1), C = s.atLeast(a, "C", 1);
        long space = (long) n * C;
        elementwise(s, g, space);
        Words ids = words(s, mem, a, "ids", n), y = words(s, mem, a, "y", space);
        noOverlap(s, y, "y", ids, "ids");
        long table = s.ptr(a, "table");
        for (int i = 0; i < n; i++) {
            int id = ids.i(i);
            if (id < 0) {
                throw new IllegalStateException(
                        "kernel " + s.kernel + ": ids[" + i + "] = " + id + " is negative: an access before the table");
            }
            Words row = mem.words(table + 4L * id * C, C, "kernel " + s.kernel + ", table row ids[" + i + "] = " + id);
            noOverlap(s, y, "y", row, "table");
            for (int c = 0; c < C; c++) {
                y.f((long) i * C + c, row.f(c));
            }
        }
    }

    private static void im2col(Signature s, Memory mem, LaunchGeometry g, KernelArgs a) {
        int C = s.atLeast(a, "C", 1), H = s.atLeast(a, "H", 1), W = s.atLeast(a, "W", 1);
        int kh = s.atLeast(a, "kh", 1), kw = s.atLeast(a, "kw", 1), stride = s.atLeast(a, "stride", 1);
        int padTop = s.atLeast(a, "padTop", 0), padLeft = s.atLeast(a, "padLeft", 0);
        int Wo = s.atLeast(a, "Wo", 1), p0 = s.atLeast(a, "p0", 0), P = s.atLeast(a, "P", 1);
        long space = (long) C * kh * kw * P;
        elementwise(s, g, space);
        Words x = words(s, mem, a, "x", (long) C * H * W), col = words(s, mem, a, "col", space);
        noOverlap(s, col, "col", x, "x");
        for (long idx = 0; idx < space; idx++) {
            long q = idx % P, row = idx / P;
            long j = row % kw, i = row / kw % kh, c = row / ((long) kw * kh);
            long p = p0 + q, oy = p / Wo, ox = p % Wo;
            long iy = oy * stride - padTop + i, ix = ox * stride - padLeft + j;
            col.f(idx, iy >= 0 && iy < H && ix >= 0 && ix < W ? x.f((c * H + iy) * W + ix) : 0f);
        }
    }

    private static void upsample(Signature s, Memory mem, LaunchGeometry g, KernelArgs a) {
        int BC = s.atLeast(a, "BC", 1), H = s.atLeast(a, "H", 1), W = s.atLeast(a, "W", 1);
        long space = 4L * BC * H * W;
        elementwise(s, g, space);
        Words x = words(s, mem, a, "x", (long) BC * H * W), y = words(s, mem, a, "y", space);
        noOverlap(s, y, "y", x, "x");
        for (long idx = 0; idx < space; idx++) {
            long j = idx % (2L * W), i = idx / (2L * W) % (2L * H), n = idx / (4L * H * W);
            y.f(idx, x.f((n * H + i / 2) * W + j / 2));
        }
    }

    // ---- row kernels -----------------------------------------------------------------------------------------

    /** Two-pass float32 mean and biased variance of {@code count} words of {@code x} from {@code from}. */
    private static float[] meanVar(Words x, long from, long count) {
        float sum = 0f;
        for (long k = 0; k < count; k++) {
            sum += x.f(from + k);
        }
        float mean = sum / count;
        float sq = 0f;
        for (long k = 0; k < count; k++) {
            float d = x.f(from + k) - mean;
            sq += d * d;
        }
        return new float[] {mean, sq / count};
    }

    private static void layerNorm(Signature s, Memory mem, LaunchGeometry g, KernelArgs a) {
        int rows = s.atLeast(a, "rows", 1), cols = s.atLeast(a, "cols", 1);
        float eps = s.f(a, "eps");
        rows(s, g, rows);
        boolean affine = s.ptr(a, "weight") != 0;
        if (affine != (s.ptr(a, "bias") != 0)) {
            throw new IllegalArgumentException("kernel " + s.kernel + ": weight and bias must be both null or both"
                    + " not null, got weight 0x" + Long.toHexString(s.ptr(a, "weight")) + ", bias 0x"
                    + Long.toHexString(s.ptr(a, "bias")));
        }
        long n = (long) rows * cols;
        Words x = words(s, mem, a, "x", n), y = words(s, mem, a, "y", n);
        Words w = affine ? words(s, mem, a, "weight", cols) : null, b = affine ? words(s, mem, a, "bias", cols) : null;
        for (long r = 0; r < rows; r++) {
            long o = r * cols;
            float[] mv = meanVar(x, o, cols);
            float sd = (float) Math.sqrt(mv[1] + eps);
            for (int c = 0; c < cols; c++) {
                float v = (x.f(o + c) - mv[0]) / sd;
                y.f(o + c, affine ? v * w.f(c) + b.f(c) : v);
            }
        }
    }

    private static void rmsNorm(Signature s, Memory mem, LaunchGeometry g, KernelArgs a) {
        int rows = s.atLeast(a, "rows", 1), cols = s.atLeast(a, "cols", 1);
        float eps = s.f(a, "eps");
        rows(s, g, rows);
        long n = (long) rows * cols;
        Words x = words(s, mem, a, "x", n), y = words(s, mem, a, "y", n), scale = words(s, mem, a, "scale", cols);
        for (long r = 0; r < rows; r++) {
            long o = r * cols;
            float sq = 0f;
            for (int c = 0; c < cols; c++) {
                float v = x.f(o + c);
                sq += v * v;
            }
            float rms = (float) Math.sqrt(sq / cols + eps);
            for (int c = 0; c < cols; c++) {
                y.f(o + c, x.f(o + c) / rms * scale.f(c));
            }
        }
    }

    private static void softmaxRows(Signature s, Memory mem, LaunchGeometry g, KernelArgs a) {
        int rows = s.atLeast(a, "rows", 1), cols = s.atLeast(a, "cols", 1), lq = s.atLeast(a, "Lq", 1);
        boolean causal = s.i(a, "causal") != 0;
        rows(s, g, rows);
        long n = (long) rows * cols;
        Words sc = words(s, mem, a, "s", n);
        Words bias = s.ptr(a, "bias") != 0 ? words(s, mem, a, "bias", n) : null;
        float[] row = new float[cols];
        for (long r = 0; r < rows; r++) {
            long o = r * cols, i = r % lq;
            float max = Float.NEGATIVE_INFINITY;
            for (int j = 0; j < cols; j++) {
                float v = sc.f(o + j);
                if (bias != null) {
                    v += bias.f(o + j);
                }
                if (causal && j > i) {
                    v = Float.NEGATIVE_INFINITY;
                }
                row[j] = v;
                max = Math.max(max, v);
            }
            float sum = 0f;
            for (int j = 0; j < cols; j++) {
                row[j] = (float) Math.exp(row[j] - max);
                sum += row[j];
            }
            for (int j = 0; j < cols; j++) {
                sc.f(o + j, row[j] / sum);
            }
        }
    }

    /**
     * The flash attention kernels: the kernel must be the one {@link OpsKernels#flashAttentionKernel} picks for D and
     * the grid {@link OpsKernels#flashAttention}. Per query row, in float32 as the kernel: scores one fma chain over
     * the features in order, times scale, plus bias; key tiles of the kernel's size in order, each with the tile's
     * maximum, the rescale by {@code exp(m - m')}, {@code p = exp(s - m')}, the sum and {@code o += p v} key after key
     * (the GPU sums a row's p in 32 lane partials, so the sums may differ in the last bits); {@code y = o (1 / sum)}.
     */
    private static void flashAttention(Signature s, Memory mem, LaunchGeometry g, KernelArgs a) {
        int B = s.atLeast(a, "B", 1), L = s.atLeast(a, "L", 1), H = s.atLeast(a, "H", 1), D = s.atLeast(a, "D", 1);
        float scale = s.f(a, "scale");
        boolean causal = s.i(a, "causal") != 0;
        String want;
        try {
            want = OpsKernels.flashAttentionKernel(D);
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException("kernel " + s.kernel + ": " + e.getMessage(), e);
        }
        if (!want.equals(s.kernel)) {
            throw new IllegalArgumentException(
                    "kernel " + s.kernel + " launched for heads of " + D + " features, which take " + want);
        }
        expectGeometry(
                s.kernel,
                OpsKernels.flashAttention(B, L, H),
                g,
                B + " samples, " + L + " tokens, " + H + " heads (OpsKernels.flashAttention)");
        int tile = s.kernel.equals(OpsKernels.FLASH_ATTENTION_D128) ? 32 : 64;
        long c = (long) H * D, n = (long) B * L * c;
        Words qw = words(s, mem, a, "q", n), kw = words(s, mem, a, "k", n), vw = words(s, mem, a, "v", n);
        Words yw = words(s, mem, a, "y", n);
        Words bw = s.ptr(a, "bias") != 0 ? words(s, mem, a, "bias", (long) H * L * L) : null;
        noOverlap(s, yw, "y", qw, "q");
        noOverlap(s, yw, "y", kw, "k");
        noOverlap(s, yw, "y", vw, "v");
        float[] q = qw.toFloats(), k = kw.toFloats(), v = vw.toFloats(), y = new float[(int) n];
        float[] bias = bw == null ? null : bw.toFloats();
        float[] p = new float[tile], o = new float[D];
        for (int b = 0; b < B; b++) {
            for (int h = 0; h < H; h++) {
                int base = (int) ((long) b * L * c) + h * D;
                for (int i = 0; i < L; i++) {
                    int qi = base + i * (int) c;
                    float m = Float.NEGATIVE_INFINITY, sum = 0f;
                    Arrays.fill(o, 0f);
                    int end = causal ? i + 1 : L;
                    for (int k0 = 0; k0 < end; k0 += tile) {
                        int kn = Math.min(tile, end - k0);
                        float tmax = Float.NEGATIVE_INFINITY;
                        for (int t = 0; t < kn; t++) {
                            int kj = base + (k0 + t) * (int) c;
                            float dot = 0f;
                            for (int f = 0; f < D; f++) {
                                dot = Math.fma(q[qi + f], k[kj + f], dot);
                            }
                            float x = dot * scale;
                            if (bias != null) {
                                x += bias[(h * L + i) * L + k0 + t];
                            }
                            p[t] = x;
                            tmax = Math.max(tmax, x);
                        }
                        float mNew = Math.max(m, tmax);
                        float mu = mNew == Float.NEGATIVE_INFINITY ? 0f : mNew;
                        float alpha = (float) Math.exp(m - mu);
                        m = mNew;
                        float tileSum = 0f;
                        for (int f = 0; f < D; f++) {
                            o[f] *= alpha;
                        }
                        for (int t = 0; t < kn; t++) {
                            float e = (float) Math.exp(p[t] - mu);
                            tileSum += e;
                            int vj = base + (k0 + t) * (int) c;
                            for (int f = 0; f < D; f++) {
                                o[f] = Math.fma(e, v[vj + f], o[f]);
                            }
                        }
                        sum = sum * alpha + tileSum;
                    }
                    float inv = 1f / sum;
                    for (int f = 0; f < D; f++) {
                        y[qi + f] = o[f] * inv;
                    }
                }
            }
        }
        yw.set(y);
    }

    private static void groupNorm(Signature s, Memory mem, LaunchGeometry g, KernelArgs a) {
        int B = s.atLeast(a, "B", 1), C = s.atLeast(a, "C", 1), HW = s.atLeast(a, "HW", 1);
        int groups = s.atLeast(a, "groups", 1);
        float eps = s.f(a, "eps");
        if (C % groups != 0) {
            throw new IllegalArgumentException(
                    "kernel " + s.kernel + ": C = " + C + " is not a multiple of groups = " + groups);
        }
        rows(s, g, (long) B * groups);
        long n = (long) B * C * HW;
        Words x = words(s, mem, a, "x", n), y = words(s, mem, a, "y", n);
        Words w = words(s, mem, a, "weight", C), b = words(s, mem, a, "bias", C);
        int cpg = C / groups;
        for (long bg = 0; bg < (long) B * groups; bg++) {
            long o = bg * cpg * HW;
            float[] mv = meanVar(x, o, (long) cpg * HW);
            float sd = (float) Math.sqrt(mv[1] + eps);
            for (long k = 0; k < (long) cpg * HW; k++) {
                int c = (int) ((bg % groups) * cpg + k / HW);
                y.f(o + k, (x.f(o + k) - mv[0]) / sd * w.f(c) + b.f(c));
            }
        }
    }

    private static void transpose(Signature s, Memory mem, LaunchGeometry g, KernelArgs a) {
        int M = s.atLeast(a, "M", 1), N = s.atLeast(a, "N", 1);
        int batch = g.gridZ();
        expectGeometry(
                s.kernel,
                OpsKernels.transpose(batch, M, N),
                g,
                "[batch = gridZ = " + batch + ", M = " + M + ", N = " + N + "] (OpsKernels.transpose)");
        long n = (long) batch * M * N;
        Words x = words(s, mem, a, "x", n), y = words(s, mem, a, "y", n);
        noOverlap(s, y, "y", x, "x");
        for (long b = 0; b < batch; b++) {
            long o = b * M * N;
            for (long i = 0; i < M; i++) {
                for (long j = 0; j < N; j++) {
                    y.f(o + j * M + i, x.f(o + i * N + j));
                }
            }
        }
    }

    // ---- reverse mode ----------------------------------------------------------------------------------------

    @FunctionalInterface
    private interface FloatOp2 {
        float apply(float x, float dy);
    }

    private static void fill(Signature s, Memory mem, LaunchGeometry g, KernelArgs a) {
        int n = s.atLeast(a, "n", 1);
        elementwise(s, g, n);
        Words y = words(s, mem, a, "y", n);
        float v = s.f(a, "value");
        for (int i = 0; i < n; i++) {
            y.f(i, v);
        }
    }

    private static void activationBackward(Signature s, Memory mem, LaunchGeometry g, KernelArgs a, FloatOp2 op) {
        int n = s.atLeast(a, "n", 1);
        elementwise(s, g, n);
        Words x = words(s, mem, a, "x", n), dy = words(s, mem, a, "dy", n), y = words(s, mem, a, "y", n);
        for (int i = 0; i < n; i++) {
            y.f(i, op.apply(x.f(i), dy.f(i)));
        }
    }

    private static void mulPerSample(Signature s, Memory mem, LaunchGeometry g, KernelArgs a) {
        int B = s.atLeast(a, "B", 1), L = s.atLeast(a, "L", 1), C = s.atLeast(a, "C", 1);
        float offset = s.f(a, "offset");
        long space = (long) B * L * C;
        elementwise(s, g, space);
        Words x = words(s, mem, a, "x", space), v = words(s, mem, a, "v", (long) B * C);
        Words y = words(s, mem, a, "y", space);
        for (long i = 0; i < space; i++) {
            long c = i % C, b = i / ((long) L * C);
            y.f(i, (offset + v.f(b * C + c)) * x.f(i));
        }
    }

    private static void ropeBackward(Signature s, Memory mem, LaunchGeometry g, KernelArgs a) {
        int B = s.atLeast(a, "B", 1), L = s.atLeast(a, "L", 1), H = s.atLeast(a, "H", 1), D = s.atLeast(a, "D", 2);
        if (D % 2 != 0) {
            throw new IllegalArgumentException("kernel " + s.kernel + ": D = " + D + " must be even");
        }
        int half = D / 2;
        long space = (long) B * L * H * half;
        elementwise(s, g, space);
        Words dy = words(s, mem, a, "dy", (long) B * L * H * D), y = words(s, mem, a, "y", (long) B * L * H * D);
        Words pe = words(s, mem, a, "pe", (long) B * L * half * 4);
        for (long idx = 0; idx < space; idx++) {
            long i = idx % half, rest = idx / half, h = rest % H, bl = rest / H;
            long xo = (bl * H + h) * D + 2 * i, po = (bl * half + i) * 4;
            float d0 = dy.f(xo), d1 = dy.f(xo + 1);
            float y0 = pe.f(po) * d0 + pe.f(po + 2) * d1;
            float y1 = pe.f(po + 1) * d0 + pe.f(po + 3) * d1;
            y.f(xo, y0);
            y.f(xo + 1, y1);
        }
    }

    private static void layerNormBackward(Signature s, Memory mem, LaunchGeometry g, KernelArgs a) {
        int rows = s.atLeast(a, "rows", 1), cols = s.atLeast(a, "cols", 1);
        float eps = s.f(a, "eps");
        rows(s, g, rows);
        long n = (long) rows * cols;
        Words x = words(s, mem, a, "x", n), dy = words(s, mem, a, "dy", n), y = words(s, mem, a, "y", n);
        noOverlap(s, y, "y", x, "x");
        noOverlap(s, y, "y", dy, "dy");
        for (long r = 0; r < rows; r++) {
            long o = r * cols;
            float[] mv = meanVar(x, o, cols);
            float rstd = 1f / (float) Math.sqrt(mv[1] + eps);
            float s1 = 0f, s2 = 0f;
            for (int c = 0; c < cols; c++) {
                float gv = dy.f(o + c);
                s1 += gv;
                s2 += gv * ((x.f(o + c) - mv[0]) * rstd);
            }
            float ma = s1 / cols, mb = s2 / cols;
            for (int c = 0; c < cols; c++) {
                float xhat = (x.f(o + c) - mv[0]) * rstd;
                y.f(o + c, rstd * (dy.f(o + c) - ma - xhat * mb));
            }
        }
    }

    private static void rmsNormBackward(Signature s, Memory mem, LaunchGeometry g, KernelArgs a) {
        int rows = s.atLeast(a, "rows", 1), cols = s.atLeast(a, "cols", 1);
        float eps = s.f(a, "eps");
        rows(s, g, rows);
        long n = (long) rows * cols;
        Words x = words(s, mem, a, "x", n), dy = words(s, mem, a, "dy", n), y = words(s, mem, a, "y", n);
        Words scale = words(s, mem, a, "scale", cols);
        noOverlap(s, y, "y", x, "x");
        noOverlap(s, y, "y", dy, "dy");
        for (long r = 0; r < rows; r++) {
            long o = r * cols;
            float q = 0f, p = 0f;
            for (int c = 0; c < cols; c++) {
                float v = x.f(o + c);
                q += v * v;
                p += dy.f(o + c) * scale.f(c) * v;
            }
            float ms = q / cols, gx = p / cols;
            float rr = 1f / (float) Math.sqrt(ms + eps);
            float k = rr * rr * gx;
            for (int c = 0; c < cols; c++) {
                y.f(o + c, rr * (dy.f(o + c) * scale.f(c) - x.f(o + c) * k));
            }
        }
    }

    private static void softmaxBackwardRows(Signature s, Memory mem, LaunchGeometry g, KernelArgs a) {
        int rows = s.atLeast(a, "rows", 1), cols = s.atLeast(a, "cols", 1);
        rows(s, g, rows);
        long n = (long) rows * cols;
        Words p = words(s, mem, a, "p", n), gr = words(s, mem, a, "g", n);
        noOverlap(s, gr, "g", p, "p");
        for (long r = 0; r < rows; r++) {
            long o = r * cols;
            float total = 0f;
            for (int c = 0; c < cols; c++) {
                total += gr.f(o + c) * p.f(o + c);
            }
            for (int c = 0; c < cols; c++) {
                gr.f(o + c, p.f(o + c) * (gr.f(o + c) - total));
            }
        }
    }

    /** The kernel's own order: per column, rows ty, ty + 8, ... for each ty, then the 8 partials in order. */
    private static void sumRows(Signature s, Memory mem, LaunchGeometry g, KernelArgs a) {
        int B = s.atLeast(a, "B", 1), L = s.atLeast(a, "L", 1), C = s.atLeast(a, "C", 1);
        expectGeometry(
                s.kernel,
                OpsKernels.sumRows(B, C),
                g,
                "[B = " + B + ", L = " + L + ", C = " + C + "] (OpsKernels.sumRows)");
        long n = (long) B * L * C;
        Words x = words(s, mem, a, "a", n), y = words(s, mem, a, "y", (long) B * C);
        Words v = s.ptr(a, "v") != 0 ? words(s, mem, a, "v", n) : null;
        noOverlap(s, y, "y", x, "a");
        if (v != null) {
            noOverlap(s, y, "y", v, "v");
        }
        int lanes = OpsKernels.SUM_ROWS_PARALLEL;
        float[] part = new float[lanes];
        for (long b = 0; b < B; b++) {
            for (long c = 0; c < C; c++) {
                for (int ty = 0; ty < lanes; ty++) {
                    float acc = 0f;
                    for (long l = ty; l < L; l += lanes) {
                        long i = (b * L + l) * C + c;
                        acc = v != null ? Math.fma(x.f(i), v.f(i), acc) : acc + x.f(i);
                    }
                    part[ty] = acc;
                }
                float total = part[0];
                for (int ty = 1; ty < lanes; ty++) {
                    total += part[ty];
                }
                y.f(b * C + c, total);
            }
        }
    }
}
