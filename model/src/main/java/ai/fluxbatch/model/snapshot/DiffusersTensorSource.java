package ai.fluxbatch.model.snapshot;

import ai.fluxbatch.model.ModelException;
import ai.fluxbatch.model.quant.TernaryPacking;
import ai.fluxbatch.model.safetensors.DType;
import ai.fluxbatch.model.safetensors.SafetensorsException;
import ai.fluxbatch.model.safetensors.SafetensorsWriter;
import ai.fluxbatch.model.safetensors.TensorDecoder;
import ai.fluxbatch.model.safetensors.TensorInfo;
import ai.fluxbatch.model.safetensors.TensorSource;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.WritableByteChannel;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.SortedSet;
import java.util.TreeSet;

/**
 * A diffusers-layout checkpoint seen under the reference names, through {@link DiffusersNames}: every reference
 * tensor the map makes from the checkpoint's tensors, with its shape, dtype and bytes, so the model code reads a
 * diffusers snapshot exactly as it reads the original one. Renamed, concatenated and 1 x 1 tensors are read in place
 * (their bytes are the parts' bytes one after another); only the packed 1.58-bit codes of a concatenated layer are
 * unpacked, joined and packed again. {@link #writeInDiffusersNames} goes the other way, for a checkpoint made from
 * this one (quantized) that is to keep the diffusers layout. Owns and closes the checkpoint it reads.
 */
public final class DiffusersTensorSource implements TensorSource {
    private final TensorSource parts;
    private final DiffusersNames.NameMap map;
    private final String where;
    private final SortedSet<String> names;
    private final Map<String, TensorInfo> infos = new LinkedHashMap<>();

    private DiffusersTensorSource(TensorSource parts, DiffusersNames.NameMap map, String where) {
        this.parts = parts;
        this.map = map;
        this.where = where;
        SortedSet<String> present = new TreeSet<>();
        for (DiffusersNames.Entry e : map.entries()) {
            if (parts.contains(e.parts().get(0))) {
                present.add(e.reference());
            }
        }
        this.names = Collections.unmodifiableSortedSet(present);
    }

    /**
     * Opens the view over {@code diffusers} (taken over: closed with the view, or here when refused), checking before
     * anything is read that the map uses every tensor, finds every required one, and that each reference tensor's
     * parts fit together (dtypes, columns, row counts); {@code where} names the checkpoint in messages.
     */
    public static DiffusersTensorSource open(TensorSource diffusers, DiffusersNames.NameMap map, String where) {
        return open(diffusers, map, where, true);
    }

    /**
     * {@link #open(TensorSource, DiffusersNames.NameMap, String)} for one shard of a checkpoint: its tensors must
     * still be whole entries of the map, but the entries it lacks are other shards' business.
     */
    public static DiffusersTensorSource openShard(TensorSource diffusers, DiffusersNames.NameMap map, String where) {
        return open(diffusers, map, where, false);
    }

    private static DiffusersTensorSource open(
            TensorSource diffusers, DiffusersNames.NameMap map, String where, boolean whole) {
        try {
            List<String> problems = map.problems(diffusers.names(), where, whole);
            if (!problems.isEmpty()) {
                throw new ModelException(String.join("; ", problems));
            }
            DiffusersTensorSource view = new DiffusersTensorSource(diffusers, map, where);
            for (String name : view.names) {
                view.info(name);
            }
            return view;
        } catch (RuntimeException e) {
            try {
                diffusers.close();
            } catch (RuntimeException suppressed) {
                e.addSuppressed(suppressed);
            }
            throw e;
        }
    }

    /** The checkpoint under its own (diffusers) names. */
    public TensorSource diffusersTensors() {
        return parts;
    }

    public DiffusersNames.NameMap nameMap() {
        return map;
    }

    @Override
    public SortedSet<String> names() {
        return names;
    }

    @Override
    public boolean contains(String name) {
        return names.contains(name);
    }

    @Override
    public synchronized TensorInfo info(String name) {
        TensorInfo known = infos.get(name);
        if (known == null) {
            known = derive(entry(name));
            infos.put(name, known);
        }
        return known;
    }

    @Override
    public float[] floats(String name) {
        TensorInfo t = info(name);
        return TensorDecoder.floats(t, file(name), (off, len) -> bytes(name, off, len));
    }

    @Override
    public double[] doubles(String name) {
        TensorInfo t = info(name);
        return TensorDecoder.doubles(t, file(name), (off, len) -> bytes(name, off, len));
    }

    @Override
    public long[] longs(String name) {
        TensorInfo t = info(name);
        return TensorDecoder.longs(t, file(name), (off, len) -> bytes(name, off, len));
    }

    @Override
    public ByteBuffer bytes(String name, long byteOffset, int length) {
        TensorInfo t = info(name);
        if (byteOffset < 0 || length < 0 || byteOffset > t.byteLength() - length) {
            throw new SafetensorsException("tensor '" + name + "' of " + where + ": cannot read " + length
                    + " bytes at offset " + byteOffset + "; the tensor has " + t.byteLength() + " bytes");
        }
        DiffusersNames.Entry e = entry(name);
        if (isPacked(e)) {
            return ByteBuffer.wrap(joinedCodes(e), (int) byteOffset, length)
                    .slice()
                    .order(ByteOrder.LITTLE_ENDIAN)
                    .asReadOnlyBuffer()
                    .order(ByteOrder.LITTLE_ENDIAN);
        }
        List<Segment> segments = segments(e);
        ByteBuffer out = null;
        long at = 0;
        for (Segment s : segments) {
            long from = Math.max(byteOffset, at), to = Math.min(byteOffset + length, at + s.length());
            if (from < to) {
                ByteBuffer piece = parts.bytes(s.part(), s.offset() + (from - at), (int) (to - from));
                if (from == byteOffset && to == byteOffset + length) {
                    return piece; // all in one part: read in place
                }
                if (out == null) {
                    out = ByteBuffer.allocate(length).order(ByteOrder.LITTLE_ENDIAN);
                }
                out.position((int) (from - byteOffset));
                out.put(piece);
            }
            at += s.length();
        }
        if (out == null) {
            out = ByteBuffer.allocate(0);
        }
        return out.clear().asReadOnlyBuffer().order(ByteOrder.LITTLE_ENDIAN);
    }

    @Override
    public Map<String, String> metadata() {
        return parts.metadata();
    }

    @Override
    public Path file(String name) {
        return parts.file(entry(name).parts().get(0));
    }

    @Override
    public void close() {
        parts.close();
    }

    @Override
    public String toString() {
        return where + " (diffusers layout, read under the reference names)";
    }

    /**
     * Adds to {@code writer}, under this checkpoint's diffusers names, every tensor of {@code converted}: a checkpoint
     * under the reference names made from this one (a quantized transformer), each tensor cut into the parts this
     * checkpoint has, row for row (packed codes unpacked, cut and packed per part; scales and biases cut alike).
     * Tensors are produced while the writer writes, one part at a time.
     */
    public void writeInDiffusersNames(TensorSource converted, SafetensorsWriter writer) {
        for (String name : converted.names()) {
            DiffusersNames.Entry e = map.forReference(name);
            if (e == null) {
                throw new ModelException("tensor " + name + " of " + converted + " has no diffusers name in the "
                        + map.component() + " name map: cannot write it in the diffusers layout");
            }
            TensorInfo t = converted.info(name);
            long[] shape = t.shape();
            boolean packed = t.dtype() == DType.U8 && converted.contains(name + "_scale");
            int[] rows = new int[e.parts().size()];
            for (int k = 0; k < rows.length; k++) {
                rows[k] = partRows(e.parts().get(k));
            }
            int total = Arrays.stream(rows).sum();
            long expected = packed ? (total + 3) / 4 : e.join() == DiffusersNames.Join.CONCAT_ROWS ? total : shape[0];
            if (shape.length == 0 || shape[0] != expected) {
                throw new ModelException("tensor " + name + " of " + converted + " has shape " + Arrays.toString(shape)
                        + ", which does not cut into the rows " + Arrays.toString(rows) + " of " + e.parts()
                        + " in " + where);
            }
            long rowBytes = t.byteLength() / Math.max(1, shape[0]);
            long at = 0;
            for (int k = 0; k < rows.length; k++) {
                String part = e.parts().get(k);
                long[] partShape = shape.clone();
                partShape[0] =
                        packed ? (rows[k] + 3) / 4 : e.join() == DiffusersNames.Join.CONCAT_ROWS ? rows[k] : shape[0];
                if (e.join() == DiffusersNames.Join.CONV_1X1 && shape.length == 4) {
                    partShape = new long[] {shape[0], shape[1]};
                }
                long offset = at;
                int index = k;
                SafetensorsWriter.TensorWriter body;
                if (packed) {
                    int in = Math.toIntExact(shape[1]);
                    body = out -> {
                        byte[] codes = TernaryPacking.unpack(all(converted, name), total, in);
                        int first = Arrays.stream(rows, 0, index).sum();
                        byte[] mine = Arrays.copyOfRange(codes, first * in, (first + rows[index]) * in);
                        writeFully(out, ByteBuffer.wrap(TernaryPacking.pack(mine, rows[index], in)));
                    };
                } else if (e.join() == DiffusersNames.Join.SWAP_HALVES) {
                    body = out -> {
                        long half = t.byteLength() / 2;
                        writeFully(out, converted.bytes(name, half, (int) half));
                        writeFully(out, converted.bytes(name, 0, (int) half));
                    };
                } else {
                    long length = e.join() == DiffusersNames.Join.CONCAT_ROWS ? rows[k] * rowBytes : t.byteLength();
                    body = out -> writeFully(out, converted.bytes(name, offset, Math.toIntExact(length)));
                    at += length;
                }
                writer.add(part, t.dtype(), partShape, body);
            }
        }
    }

    /**
     * Rewrites the reference-named checkpoint {@code referenceNamed} (made from this one) to {@code target} under
     * this checkpoint's diffusers names (see {@link #writeInDiffusersNames}), with the same metadata; {@code target}
     * is written under a temporary name and renamed when complete.
     */
    public void rewriteInDiffusersNames(Path referenceNamed, Path target) {
        try (TensorSource converted = ai.fluxbatch.model.safetensors.SafetensorsFile.open(referenceNamed)) {
            SafetensorsWriter writer = new SafetensorsWriter();
            converted.metadata().forEach(writer::metadata);
            writeInDiffusersNames(converted, writer);
            writer.write(target);
        }
    }

    /** The rows a part has in this checkpoint: a weight's, or for a packed weight its scale's; a bias or scale as its weight. */
    private int partRows(String part) {
        if (parts.contains(part)) {
            TensorInfo t = parts.info(part);
            if (t.dtype() == DType.U8 && parts.contains(part + "_scale")) {
                return Math.toIntExact(parts.info(part + "_scale").shape()[0]);
            }
            return Math.toIntExact(t.shape()[0]);
        }
        for (String suffix : List.of(".weight_scale", ".bias")) {
            if (part.endsWith(suffix)) {
                return partRows(part.substring(0, part.length() - suffix.length()) + ".weight");
            }
        }
        throw new ModelException("no tensor " + part + " in " + where + " to take its rows from");
    }

    private DiffusersNames.Entry entry(String name) {
        DiffusersNames.Entry e = map.forReference(name);
        if (e == null || !names.contains(name)) {
            throw new SafetensorsException("tensor '" + name + "' is not in " + where
                    + (e == null
                            ? ""
                            : " (its diffusers name" + (e.parts().size() > 1 ? "s " : " ") + e.parts() + ")"));
        }
        return e;
    }

    /** A reference tensor of packed 1.58-bit codes joined from several parts. */
    private boolean isPacked(DiffusersNames.Entry e) {
        return e.join() == DiffusersNames.Join.CONCAT_ROWS
                && parts.info(e.parts().get(0)).dtype() == DType.U8
                && parts.contains(e.parts().get(0) + "_scale");
    }

    private byte[] joinedCodes(DiffusersNames.Entry e) {
        TensorInfo first = parts.info(e.parts().get(0));
        int in = Math.toIntExact(first.shape()[1]);
        int total = 0;
        List<byte[]> codes = new ArrayList<>();
        for (String p : e.parts()) {
            int out = partRows(p);
            codes.add(TernaryPacking.unpack(all(parts, p), out, in));
            total += out;
        }
        byte[] joined = new byte[total * in];
        int at = 0;
        for (byte[] c : codes) {
            System.arraycopy(c, 0, joined, at, c.length);
            at += c.length;
        }
        return TernaryPacking.pack(joined, total, in);
    }

    private record Segment(String part, long offset, long length) {}

    private List<Segment> segments(DiffusersNames.Entry e) {
        List<Segment> out = new ArrayList<>();
        if (e.join() == DiffusersNames.Join.SWAP_HALVES) {
            long half = parts.info(e.parts().get(0)).byteLength() / 2;
            out.add(new Segment(e.parts().get(0), half, half));
            out.add(new Segment(e.parts().get(0), 0, half));
        } else {
            for (String p : e.parts()) {
                out.add(new Segment(p, 0, parts.info(p).byteLength()));
            }
        }
        return out;
    }

    /** The reference tensor's header entry, checking that its parts fit together. */
    private TensorInfo derive(DiffusersNames.Entry e) {
        List<TensorInfo> infos = new ArrayList<>();
        for (String p : e.parts()) {
            infos.add(parts.info(p));
        }
        TensorInfo first = infos.get(0);
        long[] shape = first.shape();
        String name = e.reference();
        switch (e.join()) {
            case RENAME -> {}
            case CONV_1X1 -> {
                if (shape.length == 2) {
                    shape = new long[] {shape[0], shape[1], 1, 1};
                } else if (!(shape.length == 4 && shape[2] == 1 && shape[3] == 1)) {
                    throw mismatch(e, "a linear weight [out, in] (or [out, in, 1, 1])", infos);
                }
            }
            case SWAP_HALVES -> {
                if (shape.length == 0 || shape[0] % 2 != 0) {
                    throw mismatch(e, "an even number of rows (shift and scale halves)", infos);
                }
            }
            case CONCAT_ROWS -> {
                boolean packed = isPacked(e);
                long rows = 0;
                for (int k = 0; k < infos.size(); k++) {
                    TensorInfo t = infos.get(k);
                    long[] s = t.shape();
                    if (t.dtype() != first.dtype()
                            || s.length != shape.length
                            || s.length == 0
                            || !Arrays.equals(
                                    Arrays.copyOfRange(s, 1, s.length), Arrays.copyOfRange(shape, 1, s.length))) {
                        throw mismatch(e, "parts of one dtype and the same columns", infos);
                    }
                    int partRows = partRows(e.parts().get(k));
                    if (packed && s[0] != (partRows + 3) / 4) {
                        throw mismatch(
                                e, "packed codes of ceil(rows / 4) rows for the rows of each part's scale", infos);
                    }
                    rows += partRows;
                }
                // q, k and v (the first three parts) always have the same rows: the hidden size
                if (partRows(e.parts().get(0)) != partRows(e.parts().get(1))
                        || partRows(e.parts().get(0)) != partRows(e.parts().get(2))) {
                    throw mismatch(e, "q, k and v parts of the same size", infos);
                }
                shape[0] = packed ? (rows + 3) / 4 : rows;
            }
        }
        long numel = 1;
        for (long d : shape) {
            numel = Math.multiplyExact(numel, d);
        }
        return new TensorInfo(
                name, first.dtype(), shape, 0, numel * first.dtype().size());
    }

    private ModelException mismatch(DiffusersNames.Entry e, String expected, List<TensorInfo> infos) {
        StringBuilder found = new StringBuilder();
        for (TensorInfo t : infos) {
            found.append(found.length() == 0 ? "" : ", ")
                    .append(t.name())
                    .append(' ')
                    .append(t.dtype())
                    .append(Arrays.toString(t.shape()));
        }
        return new ModelException("diffusers tensors of " + e.reference() + " in " + where + " do not fit: expected "
                + expected + ", found " + found);
    }

    private static byte[] all(TensorSource source, String name) {
        TensorInfo t = source.info(name);
        byte[] b = new byte[Math.toIntExact(t.byteLength())];
        source.bytes(name, 0, b.length).get(b);
        return b;
    }

    private static void writeFully(WritableByteChannel out, ByteBuffer b) throws IOException {
        while (b.hasRemaining()) {
            out.write(b);
        }
    }
}
