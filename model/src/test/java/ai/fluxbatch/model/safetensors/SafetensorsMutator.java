package ai.fluxbatch.model.safetensors;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.List;
import java.util.Map;
import java.util.Random;

/**
 * Random corruptions of a valid safetensors file, for fuzz tests: the length prefix, header bytes and digits, JSON
 * edits (dtypes, shapes, offsets, entries, metadata, padding), truncation, appended bytes and flipped data bytes.
 * Each mutation says what a correct reader may do with it: {@link Mutation#mustFail} files are corrupt in a way the
 * format detects; any other file, if accepted, must give every tensor exactly the bytes of {@link Mutation#data} at its
 * data_offsets (so no header mistake may shift or hide data).
 */
public final class SafetensorsMutator {
    private static final ObjectMapper JSON = new ObjectMapper();
    private static final JsonNodeFactory NODES = JsonNodeFactory.instance;
    private static final String[] DTYPES = {
        "F64", "F32", "F16", "BF16", "I64", "I32", "I8", "U8", "BOOL", "F8_E4M3", "bf16", ""
    };

    /** One corrupted file: its bytes, what was done, and what a reader may make of it. */
    public record Mutation(String description, byte[] bytes, boolean mustFail, byte[] data) {}

    private final byte[] original;
    private final long headerLength;
    private final String header;
    private final byte[] data;

    public SafetensorsMutator(byte[] original) {
        this.original = original;
        this.headerLength =
                ByteBuffer.wrap(original).order(ByteOrder.LITTLE_ENDIAN).getLong(0);
        this.header = new String(original, 8, (int) headerLength, StandardCharsets.UTF_8);
        this.data = Arrays.copyOfRange(original, (int) (8 + headerLength), original.length);
    }

    /** The original file's data area (everything after the header). */
    public byte[] data() {
        return data.clone();
    }

    public Mutation mutate(Random r) {
        int kind = r.nextInt(10);
        return switch (kind) {
            case 0 -> lengthPrefix(r);
            case 1 -> headerByte(r);
            case 2 -> headerDigit(r);
            case 3 -> truncate(r);
            case 4 -> append(r);
            case 5 -> dataByte(r);
            case 6 -> padding(r);
            default -> jsonEdit(r);
        };
    }

    private Mutation lengthPrefix(Random r) {
        long[] choices = {
            headerLength - 1,
            headerLength + 1,
            headerLength - 8,
            headerLength + 8,
            headerLength + r.nextInt(33) - 16,
            0,
            -1,
            Long.MIN_VALUE,
            1L << 40,
            original.length,
            original.length - 8,
            Integer.MAX_VALUE + 1L,
            100_000_001
        };
        long n = choices[r.nextInt(choices.length)];
        byte[] b = original.clone();
        ByteBuffer.wrap(b).order(ByteOrder.LITTLE_ENDIAN).putLong(0, n);
        // the data must then start elsewhere yet still end at the end of the file: never consistent
        return new Mutation("header length " + headerLength + " -> " + n, b, n != headerLength, data);
    }

    private Mutation headerByte(Random r) {
        byte[] b = original.clone();
        int at = 8 + r.nextInt((int) headerLength);
        byte old = b[at];
        b[at] = r.nextBoolean() ? (byte) (old ^ (1 << r.nextInt(8))) : (byte) r.nextInt(256);
        return new Mutation(
                String.format("header byte %d: 0x%02x -> 0x%02x", at, old & 0xff, b[at] & 0xff), b, false, data);
    }

    private Mutation headerDigit(Random r) {
        List<Integer> digits = new ArrayList<>();
        for (int i = 0; i < header.length(); i++) {
            if (Character.isDigit(header.charAt(i))) {
                digits.add(i);
            }
        }
        byte[] b = original.clone();
        int at = 8 + digits.get(r.nextInt(digits.size()));
        byte old = b[at];
        b[at] = (byte) ('0' + r.nextInt(10));
        return new Mutation("header digit at " + at + ": " + (char) old + " -> " + (char) b[at], b, false, data);
    }

    private Mutation truncate(Random r) {
        int len = r.nextBoolean() ? r.nextInt(original.length) : original.length - 1 - r.nextInt(16);
        return new Mutation(
                "truncated to " + len + " of " + original.length + " bytes", Arrays.copyOf(original, len), true, data);
    }

    private Mutation append(Random r) {
        int extra = 1 + r.nextInt(r.nextBoolean() ? 8 : 4096);
        byte[] b = Arrays.copyOf(original, original.length + extra);
        if (r.nextBoolean()) {
            for (int i = original.length; i < b.length; i++) {
                b[i] = (byte) r.nextInt(256);
            }
        }
        return new Mutation(extra + " bytes appended", b, true, data);
    }

    private Mutation dataByte(Random r) {
        byte[] b = original.clone();
        int at = (int) (8 + headerLength) + r.nextInt(data.length);
        b[at] ^= (byte) (1 << r.nextInt(8));
        return new Mutation(
                "data byte " + at + " flipped", b, false, Arrays.copyOfRange(b, (int) (8 + headerLength), b.length));
    }

    private Mutation padding(Random r) {
        String json = header.strip();
        StringBuilder pad = new StringBuilder();
        int k = r.nextInt(16);
        for (int i = 0; i < k; i++) {
            pad.append(" \t\n\r".charAt(r.nextInt(4)));
        }
        boolean leading = r.nextInt(4) == 0;
        String text = leading ? pad + json : json + pad;
        return new Mutation(
                (leading ? "leading" : "trailing") + " whitespace " + JSON.valueToTree(pad.toString()),
                assemble(text.getBytes(StandardCharsets.UTF_8)),
                false,
                data);
    }

    private Mutation jsonEdit(Random r) {
        ObjectNode root;
        try {
            root = (ObjectNode) JSON.readTree(header);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        List<String> names = new ArrayList<>();
        root.fieldNames().forEachRemaining(n -> {
            if (!n.equals("__metadata__")) {
                names.add(n);
            }
        });
        String name = names.get(r.nextInt(names.size()));
        ObjectNode t = (ObjectNode) root.get(name);
        ArrayNode shape = (ArrayNode) t.get("shape");
        ArrayNode offsets = (ArrayNode) t.get("data_offsets");
        String what;
        switch (r.nextInt(14)) {
            case 0 -> {
                String d = DTYPES[r.nextInt(DTYPES.length)];
                what = "dtype " + t.get("dtype") + " -> " + d;
                t.put("dtype", d);
            }
            case 1 -> {
                JsonNode v = odd(r);
                what = "dtype -> " + v;
                t.set("dtype", v);
            }
            case 2 -> {
                if (shape.isEmpty()) {
                    shape.add(1);
                    what = "scalar shape -> [1]";
                } else {
                    int i = r.nextInt(shape.size());
                    long[] choices = {
                        shape.get(i).longValue() + 1,
                        shape.get(i).longValue() - 1,
                        2 * shape.get(i).longValue(),
                        0,
                        1L << 32,
                        Long.MAX_VALUE
                    };
                    long v = choices[r.nextInt(choices.length)];
                    what = "shape[" + i + "] " + shape.get(i) + " -> " + v;
                    shape.set(i, NODES.numberNode(v));
                }
            }
            case 3 -> {
                JsonNode v = odd(r);
                what = "shape -> " + v;
                if (!shape.isEmpty() && r.nextBoolean()) {
                    shape.set(0, v);
                } else {
                    t.set("shape", v);
                }
            }
            case 4 -> {
                List<JsonNode> dims = new ArrayList<>();
                shape.forEach(dims::add);
                Collections.reverse(dims);
                what = "shape " + shape + " reversed";
                shape.removeAll();
                dims.forEach(shape::add);
            }
            case 5 -> {
                int i = r.nextInt(2);
                long[] deltas = {1, -1, 2, -2, 8, -8, 4096};
                long v = offsets.get(i).longValue() + deltas[r.nextInt(deltas.length)];
                what = "data_offsets[" + i + "] " + offsets.get(i) + " -> " + v;
                offsets.set(i, NODES.numberNode(v));
            }
            case 6 -> {
                String other = names.get(r.nextInt(names.size()));
                JsonNode theirs = root.get(other).get("data_offsets").deepCopy();
                ((ObjectNode) root.get(other)).set("data_offsets", offsets.deepCopy());
                t.set("data_offsets", theirs);
                what = "data_offsets of '" + name + "' and '" + other + "' swapped";
            }
            case 7 -> {
                root.remove(name);
                what = "tensor removed";
            }
            case 8 -> {
                root.set(name + ".copy", t.deepCopy());
                what = "tensor copied under a second name";
            }
            case 9 -> {
                root.remove(name);
                root.set(name + "_renamed", t);
                what = "tensor renamed";
            }
            case 10 -> {
                t.put(r.nextBoolean() ? "extra" : "offsets", 7);
                what = "extra field";
            }
            case 11 -> {
                root.set(name, odd(r));
                what = "entry -> " + root.get(name);
            }
            case 12 -> {
                JsonNode[] metas = {
                    odd(r),
                    JSON.createObjectNode().put("k", 5),
                    JSON.createObjectNode().put("k", "v"),
                    NODES.nullNode(),
                    JSON.createObjectNode().set("k", JSON.createObjectNode())
                };
                JsonNode m = metas[r.nextInt(metas.length)];
                root.set("__metadata__", m);
                what = "__metadata__ -> " + m;
            }
            default -> {
                List<Map.Entry<String, JsonNode>> all = new ArrayList<>();
                root.fields().forEachRemaining(all::add);
                Collections.shuffle(all, r);
                root.removeAll();
                all.forEach(e -> root.set(e.getKey(), e.getValue()));
                what = "entries reordered";
            }
        }
        byte[] json;
        try {
            json = JSON.writeValueAsBytes(root);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        return new Mutation("tensor '" + name + "': " + what, assemble(pad8(json)), false, data);
    }

    private static JsonNode odd(Random r) {
        JsonNode[] v = {
            NODES.nullNode(),
            NODES.numberNode(-1),
            NODES.numberNode(1.5),
            NODES.textNode("3"),
            NODES.booleanNode(true),
            NODES.arrayNode(),
            NODES.objectNode(),
            NODES.numberNode(new java.math.BigInteger("123456789012345678901234567890"))
        };
        return v[r.nextInt(v.length)];
    }

    private static byte[] pad8(byte[] json) {
        byte[] out = Arrays.copyOf(json, (json.length + 7) & ~7);
        Arrays.fill(out, json.length, out.length, (byte) ' ');
        return out;
    }

    private byte[] assemble(byte[] json) {
        ByteBuffer b = ByteBuffer.allocate(8 + json.length + data.length).order(ByteOrder.LITTLE_ENDIAN);
        return b.putLong(json.length).put(json).put(data).array();
    }
}
