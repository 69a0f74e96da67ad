package ai.fluxbatch.model.safetensors;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.core.StreamReadFeature;
import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.json.JsonMapper;
import java.io.EOFException;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.SortedMap;
import java.util.TreeMap;

/** Reads and validates a safetensors header; nothing in it is trusted before it is checked here. */
final class HeaderParser {
    static final long MAX_HEADER_BYTES = 100L << 20;
    static final String METADATA_KEY = "__metadata__";

    static final ObjectMapper JSON = JsonMapper.builder()
            .enable(StreamReadFeature.STRICT_DUPLICATE_DETECTION)
            .enable(DeserializationFeature.FAIL_ON_TRAILING_TOKENS)
            .build();

    /** A validated header: tensors by name, metadata, and where the data area starts in the file. */
    record Header(long dataStart, SortedMap<String, TensorInfo> tensors, Map<String, String> metadata) {}

    private HeaderParser() {}

    static Header read(Path file, FileChannel channel) throws IOException {
        long fileSize = channel.size();
        if (fileSize < 8) {
            throw new SafetensorsException(file + " is " + fileSize + " bytes, shorter than the 8-byte header"
                    + " length that starts every safetensors file");
        }
        ByteBuffer prefix = ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN);
        readFully(channel, prefix, 0);
        long n = prefix.getLong(0);
        if (n == 0) {
            throw new SafetensorsException(
                    "header length in " + file + " is 0; expected the length of a JSON" + " header (at least 2 bytes)");
        }
        if (n < 0 || n > MAX_HEADER_BYTES) {
            throw new SafetensorsException("header length " + Long.toUnsignedString(n) + " in " + file
                    + " is over the limit of " + MAX_HEADER_BYTES + " bytes (100 MiB); the file is " + fileSize
                    + " bytes: it is corrupt or not a safetensors file");
        }
        if (n > fileSize - 8) {
            throw new SafetensorsException("header length " + n + " in " + file + " runs past the end of the"
                    + " file: expected at least 8 + " + n + " = " + (8 + n) + " bytes but the file is " + fileSize
                    + " bytes (truncated, or not a safetensors file)");
        }
        byte[] json = new byte[(int) n];
        readFully(channel, ByteBuffer.wrap(json), 8);
        return parse(file, json, fileSize);
    }

    static Header parse(Path file, byte[] json, long fileSize) {
        long dataStart = 8L + json.length;
        long dataSize = fileSize - dataStart;
        String text = utf8(file, json);
        JsonNode root;
        try {
            root = JSON.readTree(text);
        } catch (JsonProcessingException e) {
            throw new SafetensorsException(
                    "header of " + file + " is not valid JSON: " + e.getOriginalMessage()
                            + (e.getLocation() == null
                                    ? ""
                                    : " (at header character " + e.getLocation().getCharOffset() + ")"),
                    e);
        }
        if (root == null || !root.isObject()) {
            throw new SafetensorsException("header of " + file + " is not a JSON object: found "
                    + (root == null || root.isMissingNode() ? "nothing" : describe(root)));
        }
        if (!text.startsWith("{")) {
            throw new SafetensorsException("header of " + file + " starts with " + describeStart(text)
                    + ", expected '{' as its first byte (as the safetensors format requires)");
        }
        SortedMap<String, TensorInfo> tensors = new TreeMap<>();
        Map<String, String> metadata = Map.of();
        for (Map.Entry<String, JsonNode> e : root.properties()) {
            if (e.getKey().equals(METADATA_KEY)) {
                metadata = e.getValue().isNull() ? Map.of() : metadata(file, e.getValue());
            } else {
                tensors.put(e.getKey(), entry(file, e.getKey(), e.getValue()));
            }
        }
        checkInsideData(file, tensors, dataStart, dataSize, fileSize);
        checkContiguous(file, tensors, dataStart, dataSize, fileSize);
        return new Header(dataStart, Collections.unmodifiableSortedMap(tensors), metadata);
    }

    private static TensorInfo entry(Path file, String name, JsonNode node) {
        String where = "tensor '" + name + "' in " + file;
        if (!node.isObject()) {
            throw new SafetensorsException(where + ": header entry is not a JSON object: found " + describe(node));
        }
        JsonNode dtypeNode = field(where, node, "dtype");
        JsonNode shapeNode = field(where, node, "shape");
        JsonNode offsetsNode = field(where, node, "data_offsets");
        if (!dtypeNode.isTextual()) {
            throw new SafetensorsException(where + ": dtype should be a string but is " + describe(dtypeNode));
        }
        DType dtype;
        try {
            dtype = DType.fromName(dtypeNode.textValue());
        } catch (SafetensorsException e) {
            throw new SafetensorsException(where + ": " + e.getMessage());
        }
        long[] shape = longs(where, "shape", shapeNode, -1, "a list of non-negative integers");
        long[] offsets = longs(where, "data_offsets", offsetsNode, 2, "two non-negative integers [begin, end]");
        long begin = offsets[0];
        long end = offsets[1];
        if (begin > end) {
            throw new SafetensorsException(where + ": data_offsets " + Arrays.toString(offsets)
                    + " begin after they end; expected begin <= end");
        }
        long bytes;
        try {
            long numel = 1;
            for (long d : shape) {
                numel = Math.multiplyExact(numel, d);
            }
            bytes = Math.multiplyExact(numel, (long) dtype.size());
        } catch (ArithmeticException e) {
            throw new SafetensorsException(
                    where + ": dtype " + dtype + " x shape " + Arrays.toString(shape) + " is more than 2^63 bytes");
        }
        if (bytes != end - begin) {
            throw new SafetensorsException(where + ": dtype " + dtype + " x shape " + Arrays.toString(shape) + " = "
                    + bytes + " bytes but data_offsets " + Arrays.toString(offsets) + " span " + (end - begin));
        }
        return new TensorInfo(name, dtype, shape, begin, end);
    }

    private static JsonNode field(String where, JsonNode node, String key) {
        JsonNode v = node.get(key);
        if (v == null) {
            throw new SafetensorsException(where + ": header entry has no \"" + key
                    + "\"; expected \"dtype\", \"shape\" and \"data_offsets\", found " + abbreviate(node.toString()));
        }
        return v;
    }

    /** A JSON array of non-negative integers that fit in a long, of the given length (-1: any). */
    private static long[] longs(String where, String key, JsonNode node, int length, String expected) {
        if (!node.isArray() || (length >= 0 && node.size() != length)) {
            throw new SafetensorsException(where + ": " + key + " is " + describe(node) + "; expected " + expected);
        }
        long[] out = new long[node.size()];
        for (int i = 0; i < out.length; i++) {
            JsonNode v = node.get(i);
            if (!v.isIntegralNumber() || !v.canConvertToLong() || v.longValue() < 0) {
                throw new SafetensorsException(where + ": " + key + " " + abbreviate(node.toString()) + " has "
                        + describe(v) + " at index " + i + "; expected " + expected);
            }
            out[i] = v.longValue();
        }
        return out;
    }

    private static Map<String, String> metadata(Path file, JsonNode node) {
        if (!node.isObject()) {
            throw new SafetensorsException(
                    METADATA_KEY + " in " + file + " should be an object of strings but is " + describe(node));
        }
        Map<String, String> out = new LinkedHashMap<>();
        for (Map.Entry<String, JsonNode> e : node.properties()) {
            if (!e.getValue().isTextual()) {
                throw new SafetensorsException(METADATA_KEY + " entry '" + e.getKey() + "' in " + file
                        + " should be a string but is " + describe(e.getValue()));
            }
            out.put(e.getKey(), e.getValue().textValue());
        }
        return Collections.unmodifiableMap(out);
    }

    private static void checkInsideData(
            Path file, Map<String, TensorInfo> tensors, long dataStart, long dataSize, long fileSize) {
        TensorInfo last = tensors.values().stream()
                .max(Comparator.comparingLong(TensorInfo::end))
                .orElse(null);
        if (last != null && last.end() > dataSize) {
            throw new SafetensorsException("tensor '" + last.name() + "' in " + file + ": data_offsets end "
                    + last.end() + " is past the end of the data area (" + dataSize + " bytes); the header needs a"
                    + " file of " + (dataStart + last.end()) + " bytes but the file is " + fileSize
                    + " bytes: the file may be truncated");
        }
    }

    /**
     * As the reference reader validates: the tensors, in the order of their offsets, tile the data area from byte 0 to
     * the end of the file with no gap, overlap or trailing byte. A header length that is off by a few bytes, a tensor
     * dropped from the header or bytes appended to the file would otherwise shift or hide data silently.
     */
    private static void checkContiguous(
            Path file, Map<String, TensorInfo> tensors, long dataStart, long dataSize, long fileSize) {
        List<TensorInfo> sorted = new ArrayList<>(tensors.values());
        sorted.sort(Comparator.comparingLong(TensorInfo::begin)
                .thenComparingLong(TensorInfo::end)
                .thenComparing(TensorInfo::name));
        TensorInfo previous = null;
        long reached = 0;
        for (TensorInfo t : sorted) {
            if (t.begin() < reached) {
                throw new SafetensorsException("tensors '" + previous.name() + "' [" + previous.begin() + ", "
                        + previous.end() + ") and '" + t.name() + "' [" + t.begin() + ", " + t.end() + ") in " + file
                        + " overlap; expected each tensor to have its own bytes, each starting where the one before"
                        + " it ends");
            }
            if (t.begin() > reached) {
                throw new SafetensorsException("tensor '" + t.name() + "' in " + file + ": data_offsets ["
                        + t.begin() + ", " + t.end() + "] start at " + t.begin() + " but "
                        + (previous == null
                                ? "the data area starts at 0"
                                : "the tensor before it, '" + previous.name() + "', ends at " + reached)
                        + "; expected contiguous data_offsets (no gap of "
                        + (t.begin() - reached) + " bytes)");
            }
            reached = t.end();
            previous = t;
        }
        if (reached != dataSize) {
            throw new SafetensorsException(file + " has " + (dataSize - reached) + " bytes after the end of the last"
                    + " tensor's data" + (previous == null ? "" : " ('" + previous.name() + "')") + ": the header ("
                    + (dataStart - 8) + " bytes) describes a file of " + (dataStart + reached) + " bytes but the file"
                    + " is " + fileSize + " bytes; expected the data to end exactly at the end of the file (a wrong"
                    + " header length, a tensor missing from the header, or extra bytes appended)");
        }
    }

    private static String utf8(Path file, byte[] json) {
        try {
            return StandardCharsets.UTF_8
                    .newDecoder()
                    .onMalformedInput(CodingErrorAction.REPORT)
                    .onUnmappableCharacter(CodingErrorAction.REPORT)
                    .decode(ByteBuffer.wrap(json))
                    .toString();
        } catch (CharacterCodingException e) {
            throw new SafetensorsException("header of " + file + " is not valid UTF-8 text: " + e.getMessage(), e);
        }
    }

    private static String describeStart(String text) {
        if (text.isEmpty()) {
            return "nothing";
        }
        int c = text.codePointAt(0);
        return c >= 0x20 && c < 0x7f ? "'" + (char) c + "'" : String.format(Locale.ROOT, "character U+%04X", c);
    }

    static String describe(JsonNode node) {
        return node.getNodeType().name().toLowerCase(Locale.ROOT) + " " + abbreviate(node.toString());
    }

    private static String abbreviate(String s) {
        return s.length() <= 80 ? s : s.substring(0, 77) + "...";
    }

    private static void readFully(FileChannel channel, ByteBuffer dst, long position) throws IOException {
        while (dst.hasRemaining()) {
            int n = channel.read(dst, position);
            if (n < 0) {
                throw new EOFException("end of file at byte " + position);
            }
            position += n;
        }
    }
}
