package ai.fluxbatch.model.tokenizer;

import ai.fluxbatch.model.ModelException;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * The parts of a SentencePiece {@code ModelProto} (src/sentencepiece_model.proto) that encoding needs, read from the
 * protobuf wire format by hand: the model module has no protobuf library and this format is small (varints,
 * fixed32 floats, length-delimited strings and messages). Fields this class does not know are skipped by wire type;
 * a singular message that occurs twice is merged and a repeated scalar keeps its last value, as protobuf does.
 */
final class SentencePieceModel {
    /** {@code ModelProto.SentencePiece.Type}. */
    static final int NORMAL = 1;

    static final int UNKNOWN = 2;
    static final int CONTROL = 3;
    static final int USER_DEFINED = 4;
    static final int UNUSED = 5;
    static final int BYTE = 6;

    /** {@code TrainerSpec.ModelType.UNIGRAM}. */
    static final int MODEL_UNIGRAM = 1;

    /** Where the model came from, for messages. */
    final String source;
    /** The vocabulary, in id order: the piece text, its UTF-8 bytes, score and type. */
    final String[] pieces;

    final byte[][] pieceBytes;
    final float[] scores;
    final int[] types;
    final TrainerSpec trainer;
    final NormalizerSpec normalizer;

    /** The {@code TrainerSpec} fields encoding uses; {@code has*} tells whether the file set the field. */
    static final class TrainerSpec {
        int modelType = MODEL_UNIGRAM;
        boolean byteFallback;
        boolean treatWhitespaceAsSuffix;
        int unkId = 0;
        int bosId = 1;
        int eosId = 2;
        int padId = -1;
        boolean hasUnkId;
        boolean hasEosId;
        boolean hasPadId;
    }

    /** {@code NormalizerSpec}, with the proto's defaults. */
    static final class NormalizerSpec {
        String name = "";
        byte[] precompiledCharsmap = new byte[0];
        boolean addDummyPrefix = true;
        boolean removeExtraWhitespaces = true;
        boolean escapeWhitespaces = true;
    }

    private SentencePieceModel(
            String source,
            String[] pieces,
            byte[][] pieceBytes,
            float[] scores,
            int[] types,
            TrainerSpec trainer,
            NormalizerSpec normalizer) {
        this.source = source;
        this.pieces = pieces;
        this.pieceBytes = pieceBytes;
        this.scores = scores;
        this.types = types;
        this.trainer = trainer;
        this.normalizer = normalizer;
    }

    int size() {
        return pieces.length;
    }

    /** Reads and parses a model file; a missing, unreadable or corrupt file is a {@link ModelException} naming it. */
    static SentencePieceModel read(Path file) {
        byte[] bytes;
        try {
            bytes = Files.readAllBytes(file);
        } catch (NoSuchFileException e) {
            throw new ModelException(
                    "SentencePiece model " + file + " not found: expected the T5 tokenizer's"
                            + " spiece.model (tokenizer_2/spiece.model in a FLUX.1 snapshot)",
                    e);
        } catch (IOException e) {
            throw new ModelException("cannot read SentencePiece model " + file + ": " + e, e);
        }
        return parse(bytes, file.toString());
    }

    /** Parses a serialized {@code ModelProto}; {@code source} names it in messages. */
    static SentencePieceModel parse(byte[] bytes, String source) {
        if (bytes.length == 0) {
            throw new ModelException(source + ": empty file, expected a serialized SentencePiece ModelProto");
        }
        List<byte[]> pieceList = new ArrayList<>();
        List<String> pieceText = new ArrayList<>();
        List<Float> scoreList = new ArrayList<>();
        List<Integer> typeList = new ArrayList<>();
        TrainerSpec trainer = new TrainerSpec();
        NormalizerSpec normalizer = new NormalizerSpec();

        Wire in = new Wire(bytes, 0, bytes.length, source, "ModelProto");
        while (in.more()) {
            int tagAt = in.pos;
            int key = in.tag();
            int field = key >>> 3;
            int wire = key & 7;
            switch (field) {
                case 1 -> {
                    String ctx = "ModelProto.pieces[" + pieceList.size() + "]";
                    Wire p = in.message(field, wire, tagAt, ctx);
                    readPiece(p, pieceList, pieceText, scoreList, typeList);
                }
                case 2 -> readTrainerSpec(in.message(field, wire, tagAt, "ModelProto.trainer_spec"), trainer);
                case 3 -> readNormalizerSpec(in.message(field, wire, tagAt, "ModelProto.normalizer_spec"), normalizer);
                default -> in.skip(field, wire, tagAt);
            }
        }
        int n = pieceList.size();
        String[] pieces = pieceText.toArray(new String[0]);
        byte[][] pieceBytes = pieceList.toArray(new byte[0][]);
        float[] scores = new float[n];
        int[] types = new int[n];
        for (int i = 0; i < n; i++) {
            scores[i] = scoreList.get(i);
            types[i] = typeList.get(i);
        }
        return new SentencePieceModel(source, pieces, pieceBytes, scores, types, trainer, normalizer);
    }

    private static void readPiece(
            Wire p, List<byte[]> pieceList, List<String> pieceText, List<Float> scoreList, List<Integer> typeList) {
        byte[] piece = new byte[0];
        float score = 0f;
        int type = NORMAL;
        while (p.more()) {
            int tagAt = p.pos;
            int key = p.tag();
            int field = key >>> 3;
            int wire = key & 7;
            switch (field) {
                case 1 -> piece = p.bytes(field, wire, tagAt, "piece");
                case 2 -> score = Float.intBitsToFloat(p.fixed32(field, wire, tagAt, "score"));
                case 3 -> {
                    long t = p.varint(field, wire, tagAt, "type");
                    if (t < NORMAL || t > BYTE) {
                        throw p.corrupt(
                                tagAt,
                                "type (field 3) is " + t + ", expected a piece type 1..6"
                                        + " (NORMAL, UNKNOWN, CONTROL, USER_DEFINED, UNUSED, BYTE)");
                    }
                    type = (int) t;
                }
                default -> p.skip(field, wire, tagAt);
            }
        }
        pieceList.add(piece);
        pieceText.add(new String(piece, StandardCharsets.UTF_8));
        scoreList.add(score);
        typeList.add(type);
    }

    private static void readTrainerSpec(Wire t, TrainerSpec spec) {
        while (t.more()) {
            int tagAt = t.pos;
            int key = t.tag();
            int field = key >>> 3;
            int wire = key & 7;
            switch (field) {
                case 3 -> spec.modelType = (int) t.varint(field, wire, tagAt, "model_type");
                case 24 ->
                    spec.treatWhitespaceAsSuffix = t.varint(field, wire, tagAt, "treat_whitespace_as_suffix") != 0;
                case 35 -> spec.byteFallback = t.varint(field, wire, tagAt, "byte_fallback") != 0;
                case 40 -> {
                    spec.unkId = (int) t.varint(field, wire, tagAt, "unk_id");
                    spec.hasUnkId = true;
                }
                case 41 -> spec.bosId = (int) t.varint(field, wire, tagAt, "bos_id");
                case 42 -> {
                    spec.eosId = (int) t.varint(field, wire, tagAt, "eos_id");
                    spec.hasEosId = true;
                }
                case 43 -> {
                    spec.padId = (int) t.varint(field, wire, tagAt, "pad_id");
                    spec.hasPadId = true;
                }
                default -> t.skip(field, wire, tagAt);
            }
        }
    }

    private static void readNormalizerSpec(Wire s, NormalizerSpec spec) {
        while (s.more()) {
            int tagAt = s.pos;
            int key = s.tag();
            int field = key >>> 3;
            int wire = key & 7;
            switch (field) {
                case 1 -> spec.name = new String(s.bytes(field, wire, tagAt, "name"), StandardCharsets.UTF_8);
                case 2 -> spec.precompiledCharsmap = s.bytes(field, wire, tagAt, "precompiled_charsmap");
                case 3 -> spec.addDummyPrefix = s.varint(field, wire, tagAt, "add_dummy_prefix") != 0;
                case 4 -> spec.removeExtraWhitespaces = s.varint(field, wire, tagAt, "remove_extra_whitespaces") != 0;
                case 5 -> spec.escapeWhitespaces = s.varint(field, wire, tagAt, "escape_whitespaces") != 0;
                default -> s.skip(field, wire, tagAt);
            }
        }
    }

    /**
     * A cursor over one protobuf message, {@code [pos, end)} of the file's bytes. Offsets in messages are absolute
     * file offsets.
     */
    static final class Wire {
        static final int VARINT = 0;
        static final int FIXED64 = 1;
        static final int LENGTH_DELIMITED = 2;
        static final int START_GROUP = 3;
        static final int END_GROUP = 4;
        static final int FIXED32 = 5;

        private final byte[] buf;
        int pos;
        private final int end;
        private final String source;
        private final String context;

        Wire(byte[] buf, int pos, int end, String source, String context) {
            this.buf = buf;
            this.pos = pos;
            this.end = end;
            this.source = source;
            this.context = context;
        }

        boolean more() {
            return pos < end;
        }

        ModelException corrupt(int at, String what) {
            return new ModelException(source + ": truncated or corrupt SentencePiece model: " + context + ", " + what
                    + ", at byte offset " + at);
        }

        /** Reads a field key and checks its field number and wire type. */
        int tag() {
            int at = pos;
            long key = rawVarint(at, "a field key");
            if (key > 0xFFFF_FFFFL || (key >>> 3) == 0) {
                throw corrupt(at, "field key " + key + " has field number " + (key >>> 3) + ", expected 1..536870911");
            }
            int wire = (int) (key & 7);
            if (wire > FIXED32) {
                throw corrupt(at, "field " + (key >>> 3) + " has wire type " + wire + ", expected 0..5");
            }
            return (int) key;
        }

        private long rawVarint(int at, String what) {
            long value = 0;
            for (int shift = 0; shift < 64; shift += 7) {
                if (pos >= end) {
                    throw corrupt(at, what + " (a varint) runs past the end of the message at byte " + end);
                }
                int b = buf[pos++] & 0xFF;
                value |= (long) (b & 0x7F) << shift;
                if (b < 0x80) {
                    return value;
                }
            }
            throw corrupt(at, what + " is a varint longer than 10 bytes");
        }

        private void expect(int field, int wire, int expected, int tagAt, String name) {
            if (wire != expected) {
                throw corrupt(
                        tagAt,
                        name + " (field " + field + ") has wire type " + wire + ", expected " + expected + " ("
                                + wireName(expected) + ")");
            }
        }

        long varint(int field, int wire, int tagAt, String name) {
            expect(field, wire, VARINT, tagAt, name);
            return rawVarint(pos, name + " (field " + field + ")");
        }

        int fixed32(int field, int wire, int tagAt, String name) {
            expect(field, wire, FIXED32, tagAt, name);
            if (end - pos < 4) {
                throw corrupt(
                        pos,
                        name + " (field " + field + ") needs 4 bytes, only " + (end - pos)
                                + " left before the end of the message at byte " + end);
            }
            int v = (buf[pos] & 0xFF)
                    | (buf[pos + 1] & 0xFF) << 8
                    | (buf[pos + 2] & 0xFF) << 16
                    | (buf[pos + 3] & 0xFF) << 24;
            pos += 4;
            return v;
        }

        private int length(int field, int tagAt, String name) {
            int at = pos;
            long len = rawVarint(at, name + " (field " + field + ") length");
            if (len > end - pos) {
                throw corrupt(
                        tagAt,
                        name + " (field " + field + ") has length " + len + " but only " + (end - pos)
                                + " bytes are left before the end of the message at byte " + end);
            }
            return (int) len;
        }

        byte[] bytes(int field, int wire, int tagAt, String name) {
            expect(field, wire, LENGTH_DELIMITED, tagAt, name);
            int len = length(field, tagAt, name);
            byte[] out = new byte[len];
            System.arraycopy(buf, pos, out, 0, len);
            pos += len;
            return out;
        }

        /** A nested message field: a cursor over its bytes; this cursor moves past it. */
        Wire message(int field, int wire, int tagAt, String nestedContext) {
            String name = nestedContext.substring(nestedContext.lastIndexOf('.') + 1);
            expect(field, wire, LENGTH_DELIMITED, tagAt, name);
            int len = length(field, tagAt, name);
            Wire nested = new Wire(buf, pos, pos + len, source, nestedContext);
            pos += len;
            return nested;
        }

        /** Skips a field this reader does not use, by its wire type (groups included). */
        void skip(int field, int wire, int tagAt) {
            String name = "unknown field " + field;
            switch (wire) {
                case VARINT -> rawVarint(pos, name);
                case FIXED64, FIXED32 -> {
                    int n = wire == FIXED64 ? 8 : 4;
                    if (end - pos < n) {
                        throw corrupt(
                                tagAt,
                                name + " needs " + n + " bytes, only " + (end - pos)
                                        + " left before the end of the message at byte " + end);
                    }
                    pos += n;
                }
                case LENGTH_DELIMITED -> {
                    int len = length(field, tagAt, name);
                    pos += len;
                }
                case START_GROUP -> {
                    while (true) {
                        if (!more()) {
                            throw corrupt(
                                    tagAt,
                                    "group " + field + " has no end-group marker before the end of"
                                            + " the message at byte " + end);
                        }
                        int at = pos;
                        int key = tag();
                        if ((key & 7) == END_GROUP) {
                            if (key >>> 3 != field) {
                                throw corrupt(
                                        at, "end-group marker for field " + (key >>> 3) + " inside group " + field);
                            }
                            return;
                        }
                        skip(key >>> 3, key & 7, at);
                    }
                }
                default -> throw corrupt(tagAt, "unexpected end-group marker for field " + field);
            }
        }

        private static String wireName(int wire) {
            return switch (wire) {
                case VARINT -> "varint";
                case FIXED64 -> "64-bit";
                case LENGTH_DELIMITED -> "length-delimited";
                case FIXED32 -> "32-bit";
                default -> "group";
            };
        }
    }
}
