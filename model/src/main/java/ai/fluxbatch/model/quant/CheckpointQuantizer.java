package ai.fluxbatch.model.quant;

import ai.fluxbatch.model.FiniteValues;
import ai.fluxbatch.model.ModelException;
import ai.fluxbatch.model.calib.CalibrationFile;
import ai.fluxbatch.model.safetensors.DType;
import ai.fluxbatch.model.safetensors.SafetensorsWriter;
import ai.fluxbatch.model.safetensors.TensorInfo;
import ai.fluxbatch.model.safetensors.TensorSource;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.WritableByteChannel;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.function.Predicate;

/**
 * Streams a checkpoint into the 1.58-bit format tensor by tensor: each block weight is read, checked for NaN/Inf,
 * quantized and written before the next is read, so memory is bounded by the largest tensor, not the model.
 */
public final class CheckpointQuantizer {
    private final TensorSource source;
    private final Path sourceFile;
    private final String sourceSha256;
    private final QuantizeProgress progress;
    private final QuantizeRecipe recipe;
    private final Map<String, Pending> pending = new HashMap<>();
    private long bytesDone;
    private String group;
    private long started;

    /** A quantized layer's codes, scales and bias shift, kept until each of its tensors has been written. */
    private static final class Pending {
        final LayerQuantizer.Result result;
        int uses;

        Pending(LayerQuantizer.Result result, int uses) {
            this.result = result;
            this.uses = uses;
        }
    }

    public CheckpointQuantizer(TensorSource source, Path sourceFile, String sourceSha256, QuantizeProgress progress) {
        this(source, sourceFile, sourceSha256, progress, QuantizeRecipe.ABSMEAN);
    }

    public CheckpointQuantizer(
            TensorSource source,
            Path sourceFile,
            String sourceSha256,
            QuantizeProgress progress,
            QuantizeRecipe recipe) {
        this.recipe = recipe;
        this.source = source;
        this.sourceFile = sourceFile;
        this.sourceSha256 = sourceSha256;
        this.progress = progress;
    }

    /** Writes the quantized checkpoint to {@code target} (under a temporary name, renamed when complete). */
    public void write(Path target) {
        write(target, name -> true);
    }

    /**
     * Writes to {@code target} the part of the quantized checkpoint made from the source tensors {@code part} selects:
     * those tensors, and the scales of the layers among them, with the same bytes and the same metadata as {@link
     * #write(Path)} writes them, so that parts written separately over disjoint selections add up to the whole
     * checkpoint. A layer's weight and bias must be in the same part; the recipe's statistics need to hold the layers
     * of the part only. Checks the whole source as {@link #write(Path)} does, and the statistics of the part's layers.
     */
    public void write(Path target, Predicate<String> part) {
        checkSource();
        for (String name : source.names()) {
            if (shiftsBias(name) && part.test(name) != part.test(weightOf(name))) {
                String in = part.test(name) ? name : weightOf(name), out = part.test(name) ? weightOf(name) : name;
                throw new IllegalArgumentException("a part must hold a quantized layer's weight and bias together,"
                        + " but it holds " + in + " and not " + out);
            }
        }
        recipe.check(source, name -> quantizesNow(name) && part.test(name));
        long total = 0;
        for (String name : source.names()) {
            if (part.test(name)) {
                total += source.info(name).byteLength();
            }
        }
        long bytesTotal = total;
        SafetensorsWriter writer = new SafetensorsWriter();
        metadata().forEach(writer::metadata);
        for (String name : source.names()) {
            if (!part.test(name)) {
                continue;
            }
            TensorInfo info = source.info(name);
            if (quantizesNow(name)) {
                addQuantized(writer, info, bytesTotal);
            } else if (shiftsBias(name)) {
                addShiftedBias(writer, info, bytesTotal);
            } else {
                writer.add(name, info.dtype(), info.shape(), out -> {
                    copy(info, out);
                    advance(name, info.byteLength(), bytesTotal);
                });
            }
        }
        started = System.nanoTime();
        writer.write(target);
        if (group != null) {
            progress.groupDone(group, bytesDone, bytesTotal, (System.nanoTime() - started) / 1e9);
        }
    }

    /**
     * Checks what {@link #write(Path)} checks before it writes anything, with the statistics of each layer described
     * by {@code statistics} (from {@link CalibrationFile#summarize}) instead of read: for a driver that leaves the
     * reading of the statistics to the workers that quantize the layers.
     */
    public void check(Map<String, CalibrationFile.LayerSummary> statistics) {
        checkSource();
        recipe.check(source, this::quantizesNow, statistics::get);
    }

    /** The quantized checkpoint's metadata, in the order its header lists them. */
    public Map<String, String> metadata() {
        Map<String, String> meta = source.metadata();
        boolean partial = meta.containsKey(TernaryFormat.KEY_FORMAT);
        Map<String, String> out = new LinkedHashMap<>();
        out.put(TernaryFormat.KEY_FORMAT, TernaryFormat.FORMAT);
        out.put(TernaryFormat.KEY_VERSION, TernaryFormat.VERSION);
        out.put(TernaryFormat.KEY_METHOD, recipe.method().name());
        out.put(TernaryFormat.KEY_PACKING, TernaryFormat.PACKING);
        out.put(TernaryFormat.KEY_SOURCE, sourceFile.getFileName().toString());
        out.put(TernaryFormat.KEY_SOURCE_SHA256, sourceSha256);
        out.put("format", "pt");
        if (partial) {
            out.putAll(meta); // the original source and the calibrations of the earlier passes
        }
        recipe.metadata()
                .forEach((k, v) -> out.put(
                        k,
                        partial && meta.containsKey(k) && k.startsWith(TernaryFormat.KEY_CALIBRATION)
                                ? meta.get(k) + ";" + v
                                : v));
        return out;
    }

    /** Refuses a source with nothing left to quantize, or partly quantized with another method. */
    private void checkSource() {
        Map<String, String> meta = source.metadata();
        boolean partial = meta.containsKey(TernaryFormat.KEY_FORMAT);
        if (source.names().stream().noneMatch(this::quantizesNow)) {
            throw new ModelException(
                    partial
                            ? sourceFile + " is already quantized (" + TernaryFormat.KEY_FORMAT + " = "
                                    + meta.get(TernaryFormat.KEY_FORMAT) + ") and no full-precision block weight"
                                    + (recipe.layers() == null ? "" : " matching --layers " + recipe.layers())
                                    + " is left: expected a"
                                    + " full-precision or partly quantized checkpoint"
                            : "--layers " + recipe.layers() + " matches no block weight of " + sourceFile
                                    + " (names such as double_blocks.0.img_attn.qkv)");
        }
        String earlier = meta.getOrDefault(TernaryFormat.KEY_METHOD, "");
        if (partial && !recipe.method().name().equals(TernaryFormat.baseMethod(earlier))) {
            throw new ModelException(
                    sourceFile + " is partly quantized with method " + earlier + ": continue with" + " --method "
                            + TernaryFormat.baseMethod(earlier) + ", or start from the full-precision checkpoint");
        }
    }

    /**
     * A layer is quantized when the first of its tensors (bias, packed codes, scales) is written, and kept until the
     * last of them is, so memory holds one layer at a time.
     */
    private void addQuantized(SafetensorsWriter writer, TensorInfo info, long bytesTotal) {
        int out = Math.toIntExact(info.shape()[0]), in = Math.toIntExact(info.shape()[1]);
        writer.add(info.name(), DType.U8, new long[] {TernaryFormat.packedRows(out), in}, channel -> {
            LayerQuantizer.Result q = use(info);
            writeFully(channel, ByteBuffer.wrap(TernaryPacking.pack(q.codes(), out, in)));
            advance(info.name(), info.byteLength(), bytesTotal);
        });
        writer.add(TernaryFormat.scaleName(info.name()), DType.F32, new long[] {out}, channel -> {
            ByteBuffer b = ByteBuffer.allocate(4 * out).order(ByteOrder.LITTLE_ENDIAN);
            b.asFloatBuffer().put(use(info).scale());
            writeFully(channel, b);
        });
    }

    /** A quantized layer's bias, written as float32 with the method's shift added. */
    private void addShiftedBias(SafetensorsWriter writer, TensorInfo bias, long bytesTotal) {
        TensorInfo weight = source.info(weightOf(bias.name()));
        writer.add(bias.name(), DType.F32, bias.shape(), channel -> {
            float[] b = source.floats(bias.name());
            float[] shift = use(weight).biasShift();
            for (int i = 0; i < b.length; i++) {
                b[i] += shift[i];
            }
            ByteBuffer buf = ByteBuffer.allocate(4 * b.length).order(ByteOrder.LITTLE_ENDIAN);
            buf.asFloatBuffer().put(b);
            writeFully(channel, buf);
            advance(bias.name(), bias.byteLength(), bytesTotal);
        });
    }

    /** A full-precision block weight the recipe selects: quantized by this pass (a packed one is copied as it is). */
    private boolean quantizesNow(String name) {
        return TernaryFormat.isQuantized(name, source.info(name).shape())
                && !source.contains(TernaryFormat.scaleName(name))
                && recipe.selects(name.substring(0, name.length() - ".weight".length()));
    }

    private boolean shiftsBias(String name) {
        if (!recipe.method().needsStatistics() || !name.endsWith(".bias")) {
            return false;
        }
        String weight = weightOf(name);
        return source.contains(weight) && quantizesNow(weight);
    }

    private static String weightOf(String biasName) {
        return biasName.substring(0, biasName.length() - ".bias".length()) + ".weight";
    }

    private LayerQuantizer.Result use(TensorInfo weight) {
        String name = weight.name();
        Pending p = pending.get(name);
        if (p == null) {
            int out = Math.toIntExact(weight.shape()[0]), in = Math.toIntExact(weight.shape()[1]);
            float[] w = source.floats(name);
            requireFinite(name, w);
            String layer = name.substring(0, name.length() - ".weight".length());
            boolean shifting = shiftsBias(layer + ".bias");
            p = new Pending(recipe.quantize(layer, w, out, in, shifting), shifting ? 3 : 2);
            pending.put(name, p);
        }
        if (--p.uses == 0) {
            pending.remove(name);
        }
        return p.result;
    }

    private void requireFinite(String name, float[] w) {
        int i = FiniteValues.firstNonFinite(w);
        if (i >= 0) {
            throw new ModelException("tensor '" + name + "' in " + source.file(name) + " holds " + w[i]
                    + " at flat index " + i + ": expected finite weights; refusing to quantize");
        }
    }

    private void copy(TensorInfo info, WritableByteChannel out) throws IOException {
        long n = info.byteLength();
        for (long at = 0; at < n; ) {
            int len = (int) Math.min(n - at, 1 << 26);
            writeFully(out, source.bytes(info.name(), at, len));
            at += len;
        }
    }

    private static void writeFully(WritableByteChannel out, ByteBuffer b) throws IOException {
        while (b.hasRemaining()) {
            out.write(b);
        }
    }

    private void advance(String name, long bytes, long bytesTotal) {
        String g = groupOf(name);
        if (group != null && !group.equals(g)) {
            progress.groupDone(group, bytesDone, bytesTotal, (System.nanoTime() - started) / 1e9);
        }
        group = g;
        bytesDone += bytes;
    }

    /** {@code double_blocks.7.img_attn.qkv.weight -> double_blocks.7}; every other tensor is in "other". */
    public static String groupOf(String name) {
        String[] parts = name.split("\\.");
        return (parts[0].equals("double_blocks") || parts[0].equals("single_blocks")) && parts.length > 2
                ? parts[0] + "." + parts[1]
                : "other";
    }
}
