package ai.fluxbatch.model.quant;

import ai.fluxbatch.model.ModelException;
import ai.fluxbatch.model.safetensors.DType;
import ai.fluxbatch.model.safetensors.SafetensorsWriter;
import ai.fluxbatch.model.safetensors.TensorInfo;
import ai.fluxbatch.model.safetensors.TensorSource;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.WritableByteChannel;
import java.nio.file.Path;
import java.util.Map;

/**
 * Streams a checkpoint into the 1.58-bit format tensor by tensor: each block weight is read, checked for NaN/Inf,
 * quantized and written before the next is read, so memory is bounded by the largest tensor, not the model.
 */
public final class CheckpointQuantizer {
    private final TensorSource source;
    private final Path sourceFile;
    private final String sourceSha256;
    private final QuantizeProgress progress;
    private long bytesDone;
    private String group;
    private long started;

    public CheckpointQuantizer(TensorSource source, Path sourceFile, String sourceSha256, QuantizeProgress progress) {
        this.source = source;
        this.sourceFile = sourceFile;
        this.sourceSha256 = sourceSha256;
        this.progress = progress;
    }

    /** Writes the quantized checkpoint to {@code target} (under a temporary name, renamed when complete). */
    public void write(Path target) {
        Map<String, String> meta = source.metadata();
        if (meta.containsKey(TernaryFormat.KEY_FORMAT)) {
            throw new ModelException(sourceFile + " is already quantized (" + TernaryFormat.KEY_FORMAT + " = "
                    + meta.get(TernaryFormat.KEY_FORMAT) + "): expected a full-precision checkpoint");
        }
        long total = 0;
        for (String name : source.names()) {
            total += source.info(name).byteLength();
        }
        long bytesTotal = total;
        SafetensorsWriter writer = new SafetensorsWriter()
                .metadata(TernaryFormat.KEY_FORMAT, TernaryFormat.FORMAT)
                .metadata(TernaryFormat.KEY_VERSION, TernaryFormat.VERSION)
                .metadata(TernaryFormat.KEY_METHOD, AbsmeanQuantizer.METHOD)
                .metadata(TernaryFormat.KEY_PACKING, TernaryFormat.PACKING)
                .metadata(TernaryFormat.KEY_SOURCE, sourceFile.getFileName().toString())
                .metadata(TernaryFormat.KEY_SOURCE_SHA256, sourceSha256)
                .metadata(TernaryFormat.KEY_CALIBRATION, "none")
                .metadata("format", "pt");
        for (String name : source.names()) {
            TensorInfo info = source.info(name);
            if (TernaryFormat.isQuantized(name, info.shape())) {
                addQuantized(writer, info, bytesTotal);
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

    /** Packed codes and scales are computed together when the codes are written, kept until the scales are. */
    private void addQuantized(SafetensorsWriter writer, TensorInfo info, long bytesTotal) {
        int out = Math.toIntExact(info.shape()[0]), in = Math.toIntExact(info.shape()[1]);
        float[][] scale = new float[1][];
        writer.add(info.name(), DType.U8, new long[] {TernaryFormat.packedRows(out), in}, channel -> {
            float[] w = source.floats(info.name());
            requireFinite(info.name(), w);
            AbsmeanQuantizer.Result q = AbsmeanQuantizer.quantize(w, out, in);
            scale[0] = q.scale();
            writeFully(channel, ByteBuffer.wrap(TernaryPacking.pack(q.codes(), out, in)));
            advance(info.name(), info.byteLength(), bytesTotal);
        });
        writer.add(TernaryFormat.scaleName(info.name()), DType.F32, new long[] {out}, channel -> {
            ByteBuffer b = ByteBuffer.allocate(4 * out).order(ByteOrder.LITTLE_ENDIAN);
            b.asFloatBuffer().put(scale[0]);
            writeFully(channel, b);
            scale[0] = null;
        });
    }

    private void requireFinite(String name, float[] w) {
        for (int i = 0; i < w.length; i++) {
            if (!Float.isFinite(w[i])) {
                throw new ModelException("tensor '" + name + "' in " + source.file(name) + " holds " + w[i]
                        + " at flat index " + i + ": expected finite weights; refusing to quantize");
            }
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
    static String groupOf(String name) {
        String[] parts = name.split("\\.");
        return (parts[0].equals("double_blocks") || parts[0].equals("single_blocks")) && parts.length > 2
                ? parts[0] + "." + parts[1] : "other";
    }
}
