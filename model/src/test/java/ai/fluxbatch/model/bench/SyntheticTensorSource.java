package ai.fluxbatch.model.bench;

import ai.fluxbatch.model.ModelException;
import ai.fluxbatch.model.quant.TernaryFormat;
import ai.fluxbatch.model.safetensors.DType;
import ai.fluxbatch.model.safetensors.HalfFloats;
import ai.fluxbatch.model.safetensors.SafetensorsException;
import ai.fluxbatch.model.safetensors.TensorInfo;
import ai.fluxbatch.model.safetensors.TensorSource;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Path;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.SortedSet;
import java.util.SplittableRandom;
import java.util.TreeMap;
import java.util.TreeSet;

/**
 * A 1.58-bit FLUX checkpoint that exists only in memory, for benchmarks at full size without writing 3 GB to disk:
 * the tensors of a layout ({@code name -> shape} of the BF16 source checkpoint, e.g. the golden
 * {@code flux1-dev-layout.json}) served as {@link TernaryFormat} stores them: every quantized block weight as U8 codes
 * {@code [ceil(out/4), in]} in the Hugging Face BitNet packing plus {@code <name>_scale} (F32, out); every other tensor
 * as BF16. The data is random and generated lazily, per request, from a seed per tensor and per 64 KiB chunk, so any
 * byte range reads the same bytes every time and nothing is held: codes uniform over {-1, 0, +1}, scales about
 * {@code sqrt(1.5 / in)} (a ternary layer that keeps the variance), other weights uniform with the variance of a
 * 1/sqrt(fan-in) initialisation, biases small, norm scales 1.
 */
public final class SyntheticTensorSource implements TensorSource {
    private static final int CHUNK = 1 << 16;
    /** The 81 bytes whose four 2-bit fields are all valid codes + 1 (0..2), indexed by a random byte mod 81. */
    private static final byte[] VALID_PACKED = validPackedBytes();

    private record Entry(TensorInfo info, long seed, double amplitude, Kind kind, int rowBytes) {}

    private enum Kind {
        CODES,
        PERIODIC_CODES,
        CODE_SCALE,
        WEIGHT,
        BIAS,
        ONES
    }

    /** The period along the inputs of {@link Kind#PERIODIC_CODES}. */
    static final int CODE_PERIOD = 8;

    private final String description;
    private final Map<String, Entry> entries;
    private final SortedSet<String> names;
    private final Map<String, String> metadata;

    private SyntheticTensorSource(String description, Map<String, Entry> entries) {
        this.description = description;
        this.entries = entries;
        this.names = Collections.unmodifiableSortedSet(new TreeSet<>(entries.keySet()));
        Map<String, String> m = new TreeMap<>();
        m.put("format", "pt");
        m.put(TernaryFormat.KEY_FORMAT, TernaryFormat.FORMAT);
        m.put(TernaryFormat.KEY_VERSION, TernaryFormat.VERSION);
        m.put(TernaryFormat.KEY_PACKING, TernaryFormat.PACKING);
        m.put(TernaryFormat.KEY_METHOD, "synthetic-random");
        m.put("synthetic", description);
        this.metadata = Collections.unmodifiableMap(m);
    }

    /**
     * The quantized checkpoint of a BF16 layout ({@code name -> shape}, in the checkpoint's order): the weights that
     * {@link TernaryFormat#isQuantized} selects become packed codes and scales, the rest stay BF16.
     *
     * @param periodicCodes each packed row repeats a random pattern of {@value #CODE_PERIOD} bytes along the inputs
     *                      instead of being random throughout: the codes are still -1, 0 and +1 in every row, but a
     *                      loader's repack that branches on each code (GpuTernaryLayout.fromHfPacked) predicts them
     *                      and runs about 5x faster than on random codes; a kernel's time does not depend on them
     */
    public static SyntheticTensorSource quantized(
            Map<String, long[]> layout, long seed, String description, boolean periodicCodes) {
        return of(layout, seed, description, true, periodicCodes);
    }

    /** The BF16 checkpoint of a layout itself, every tensor as {@link #quantized} serves the ones it keeps. */
    public static SyntheticTensorSource dense(Map<String, long[]> layout, long seed, String description) {
        return of(layout, seed, description, false, false);
    }

    private static SyntheticTensorSource of(
            Map<String, long[]> layout, long seed, String description, boolean quantize, boolean periodicCodes) {
        Map<String, Entry> entries = new LinkedHashMap<>();
        long offset = 0, index = 0;
        for (Map.Entry<String, long[]> e : layout.entrySet()) {
            String name = e.getKey();
            long[] shape = e.getValue();
            long tensorSeed = seed * 1_000_003L + 2 * index++;
            if (quantize && TernaryFormat.isQuantized(name, shape)) {
                int out = Math.toIntExact(shape[0]), in = Math.toIntExact(shape[1]);
                long[] packed = {TernaryFormat.packedRows(out), in};
                offset = add(
                        entries,
                        name,
                        DType.U8,
                        packed,
                        offset,
                        tensorSeed,
                        0,
                        periodicCodes ? Kind.PERIODIC_CODES : Kind.CODES,
                        in);
                offset = add(
                        entries,
                        TernaryFormat.scaleName(name),
                        DType.F32,
                        new long[] {out},
                        offset,
                        tensorSeed + 1,
                        Math.sqrt(1.5 / in),
                        Kind.CODE_SCALE,
                        0);
            } else if (name.endsWith(".scale")) {
                offset = add(entries, name, DType.BF16, shape, offset, tensorSeed, 1, Kind.ONES, 0);
            } else if (name.endsWith(".bias")) {
                offset = add(entries, name, DType.BF16, shape, offset, tensorSeed, 0.01, Kind.BIAS, 0);
            } else {
                double fanIn = shape.length > 1 ? shape[1] : 1;
                offset = add(
                        entries, name, DType.BF16, shape, offset, tensorSeed, Math.sqrt(3.0 / fanIn), Kind.WEIGHT, 0);
            }
        }
        return new SyntheticTensorSource(description, entries);
    }

    private static long add(
            Map<String, Entry> entries,
            String name,
            DType dtype,
            long[] shape,
            long offset,
            long seed,
            double amplitude,
            Kind kind,
            int rowBytes) {
        long numel = 1;
        for (long d : shape) {
            numel = Math.multiplyExact(numel, d);
        }
        long end = offset + numel * dtype.size();
        if (entries.put(
                        name,
                        new Entry(new TensorInfo(name, dtype, shape, offset, end), seed, amplitude, kind, rowBytes))
                != null) {
            throw new ModelException("synthetic checkpoint: tensor '" + name + "' twice in the layout");
        }
        return end;
    }

    // ---- layouts ---------------------------------------------------------------------------------------------------

    /** The {@code tensors} object of a layout file such as {@code flux1-dev-layout.json}, in the file's order. */
    public static Map<String, long[]> readLayout(Path file) {
        JsonNode root;
        try {
            root = new ObjectMapper().readTree(file.toFile());
        } catch (IOException e) {
            throw new UncheckedIOException("cannot read the checkpoint layout " + file + ": " + e.getMessage(), e);
        }
        JsonNode tensors = root == null ? null : root.get("tensors");
        if (tensors == null || !tensors.isObject() || tensors.isEmpty()) {
            throw new ModelException(file + ": expected a 'tensors' object mapping names to shapes");
        }
        Map<String, long[]> layout = new LinkedHashMap<>();
        tensors.fields().forEachRemaining(e -> {
            long[] shape = new long[e.getValue().size()];
            for (int i = 0; i < shape.length; i++) {
                shape[i] = e.getValue().get(i).asLong();
            }
            layout.put(e.getKey(), shape);
        });
        return layout;
    }

    /**
     * The tensors of a FLUX.1 transformer in the reference naming, in the order of the golden layout files:
     * {@code fluxLayout(3072, 128, 12288, 19, 38, 64, 4096, 768, true)} is FLUX.1-dev.
     */
    public static Map<String, long[]> fluxLayout(
            int hidden,
            int headDim,
            int mlpHidden,
            int depth,
            int depthSingle,
            int inChannels,
            int contextDim,
            int vecDim,
            boolean guidance) {
        Map<String, long[]> l = new LinkedHashMap<>();
        int h = hidden;
        linear(l, "img_in", h, inChannels);
        linear(l, "time_in.in_layer", h, 256);
        linear(l, "time_in.out_layer", h, h);
        linear(l, "vector_in.in_layer", h, vecDim);
        linear(l, "vector_in.out_layer", h, h);
        if (guidance) {
            linear(l, "guidance_in.in_layer", h, 256);
            linear(l, "guidance_in.out_layer", h, h);
        }
        linear(l, "txt_in", h, contextDim);
        for (int i = 0; i < depth; i++) {
            for (String s : new String[] {"img", "txt"}) {
                String p = "double_blocks." + i + "." + s + "_";
                linear(l, p + "mod.lin", 6 * h, h);
                linear(l, p + "attn.qkv", 3 * h, h);
                l.put(p + "attn.norm.query_norm.scale", new long[] {headDim});
                l.put(p + "attn.norm.key_norm.scale", new long[] {headDim});
                linear(l, p + "attn.proj", h, h);
                linear(l, p + "mlp.0", mlpHidden, h);
                linear(l, p + "mlp.2", h, mlpHidden);
            }
        }
        for (int i = 0; i < depthSingle; i++) {
            String p = "single_blocks." + i + ".";
            linear(l, p + "linear1", 3 * h + mlpHidden, h);
            linear(l, p + "linear2", h, h + mlpHidden);
            l.put(p + "norm.query_norm.scale", new long[] {headDim});
            l.put(p + "norm.key_norm.scale", new long[] {headDim});
            linear(l, p + "modulation.lin", 3 * h, h);
        }
        linear(l, "final_layer.linear", inChannels, h);
        linear(l, "final_layer.adaLN_modulation.1", 2 * h, h);
        return l;
    }

    /** FLUX.1-dev's layout: the same names and shapes as the golden {@code flux1-dev-layout.json}. */
    public static Map<String, long[]> fluxDevLayout() {
        return fluxLayout(3072, 128, 12288, 19, 38, 64, 4096, 768, true);
    }

    private static void linear(Map<String, long[]> l, String prefix, int out, int in) {
        l.put(prefix + ".weight", new long[] {out, in});
        l.put(prefix + ".bias", new long[] {out});
    }

    // ---- TensorSource ----------------------------------------------------------------------------------------------

    private Entry entry(String name) {
        Entry e = entries.get(name);
        if (e == null) {
            throw new SafetensorsException("tensor '" + name + "' is not in " + describe());
        }
        return e;
    }

    private String describe() {
        return "the synthetic checkpoint (" + description + ")";
    }

    @Override
    public SortedSet<String> names() {
        return names;
    }

    @Override
    public boolean contains(String name) {
        return entries.containsKey(name);
    }

    @Override
    public TensorInfo info(String name) {
        return entry(name).info();
    }

    @Override
    public float[] floats(String name) {
        Entry e = entry(name);
        long numel = e.info().numel();
        if (numel > Integer.MAX_VALUE - 8) {
            throw new SafetensorsException("tensor '" + name + "' has " + numel + " elements, too many for one array");
        }
        ByteBuffer b = bytes(name, 0, Math.toIntExact(e.info().byteLength()));
        float[] out = new float[(int) numel];
        for (int i = 0; i < out.length; i++) {
            out[i] = switch (e.info().dtype()) {
                case U8 -> b.get() & 0xff;
                case F32 -> b.getFloat();
                case BF16 -> HalfFloats.bf16ToFloat(b.getShort());
                default -> throw new IllegalStateException("dtype " + e.info().dtype());
            };
        }
        return out;
    }

    @Override
    public double[] doubles(String name) {
        float[] f = floats(name);
        double[] d = new double[f.length];
        for (int i = 0; i < f.length; i++) {
            d[i] = f[i];
        }
        return d;
    }

    @Override
    public long[] longs(String name) {
        float[] f = floats(name);
        long[] l = new long[f.length];
        for (int i = 0; i < f.length; i++) {
            if (f[i] != Math.rint(f[i])) {
                throw new SafetensorsException("tensor '" + name + "' holds " + f[i] + ", not a whole number");
            }
            l[i] = (long) f[i];
        }
        return l;
    }

    @Override
    public ByteBuffer bytes(String name, long byteOffset, int length) {
        Entry e = entry(name);
        if (byteOffset < 0 || length < 0 || byteOffset + length > e.info().byteLength()) {
            throw new SafetensorsException("tensor '" + name + "': bytes [" + byteOffset + ", " + (byteOffset + length)
                    + ") out of its " + e.info().byteLength());
        }
        byte[] out = new byte[length];
        byte[] chunk = new byte[CHUNK];
        long end = byteOffset + length;
        for (long c = byteOffset / CHUNK; c * CHUNK < end; c++) {
            long start = c * CHUNK;
            int n = (int) Math.min(CHUNK, e.info().byteLength() - start);
            fill(e, c, chunk, n);
            long from = Math.max(start, byteOffset), to = Math.min(start + n, end);
            System.arraycopy(chunk, (int) (from - start), out, (int) (from - byteOffset), (int) (to - from));
        }
        return ByteBuffer.wrap(out).asReadOnlyBuffer().order(ByteOrder.LITTLE_ENDIAN);
    }

    /** Chunk {@code c} of a tensor's bytes ({@code n} of them), the same every time. */
    private static void fill(Entry e, long c, byte[] chunk, int n) {
        SplittableRandom random = new SplittableRandom(e.seed() * 0x9E3779B97F4A7C15L + c);
        ByteBuffer b = ByteBuffer.wrap(chunk, 0, n).order(ByteOrder.LITTLE_ENDIAN);
        switch (e.kind()) {
            case CODES -> {
                for (int i = 0; i < n; i += 8) {
                    long r = random.nextLong();
                    for (int j = 0; j < 8 && i + j < n; j++, r >>>= 8) {
                        chunk[i + j] = VALID_PACKED[(int) ((r & 0xff) % 81)];
                    }
                }
            }
            case PERIODIC_CODES -> {
                int rowBytes = e.rowBytes();
                long row = c * CHUNK / rowBytes;
                int col = (int) (c * CHUNK % rowBytes);
                byte[] pattern = new byte[CODE_PERIOD];
                pattern(e, row, pattern);
                for (int i = 0; i < n; i++) {
                    chunk[i] = pattern[col % CODE_PERIOD];
                    if (++col == rowBytes) {
                        col = 0;
                        pattern(e, ++row, pattern);
                    }
                }
            }
            case CODE_SCALE -> {
                for (int i = 0; i < n; i += 4) {
                    b.putFloat(i, (float) (e.amplitude() * (0.75 + 0.5 * random.nextDouble())));
                }
            }
            case ONES, BIAS, WEIGHT -> {
                for (int i = 0; i < n; i += 2) {
                    float v = e.kind() == Kind.ONES ? 1f : (float) ((random.nextDouble() * 2 - 1) * e.amplitude());
                    b.putShort(i, HalfFloats.floatToBf16(v));
                }
            }
            default -> throw new IllegalStateException(e.kind().toString());
        }
    }

    /** The repeating bytes of packed row {@code row} of a {@link Kind#PERIODIC_CODES} tensor. */
    private static void pattern(Entry e, long row, byte[] pattern) {
        SplittableRandom random = new SplittableRandom(e.seed() * 0x9E3779B97F4A7C15L ^ ~row);
        for (int j = 0; j < pattern.length; j++) {
            pattern[j] = VALID_PACKED[random.nextInt(81)];
        }
    }

    private static byte[] validPackedBytes() {
        byte[] valid = new byte[81];
        int n = 0;
        for (int v = 0; v < 256; v++) {
            boolean ok = true;
            for (int f = 0; f < 4; f++) {
                ok &= ((v >> (2 * f)) & 3) != 3;
            }
            if (ok) {
                valid[n++] = (byte) v;
            }
        }
        if (n != 81) {
            throw new AssertionError(n + " valid packed bytes");
        }
        return valid;
    }

    @Override
    public Map<String, String> metadata() {
        return metadata;
    }

    @Override
    public Path file(String name) {
        entry(name);
        return Path.of("synthetic-" + description.replaceAll("[^A-Za-z0-9.+-]+", "-") + ".safetensors");
    }

    @Override
    public void close() {}

    @Override
    public String toString() {
        return "SyntheticTensorSource[" + description + ", " + entries.size() + " tensors]";
    }
}
