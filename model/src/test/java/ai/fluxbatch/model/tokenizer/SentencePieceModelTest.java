package ai.fluxbatch.model.tokenizer;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.fluxbatch.model.Golden;
import ai.fluxbatch.model.ModelException;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The hand-written ModelProto reader: the golden model's fields, proto2 defaults, skipping, merging, bad bytes. */
class SentencePieceModelTest {
    @TempDir
    Path dir;

    /** Writes protobuf wire format, for building small models in tests. */
    static final class Proto {
        private final ByteArrayOutputStream out = new ByteArrayOutputStream();

        Proto key(int field, int wire) {
            return raw(((long) field << 3) | wire);
        }

        Proto raw(long v) {
            while ((v & ~0x7FL) != 0) {
                out.write((int) ((v & 0x7F) | 0x80));
                v >>>= 7;
            }
            out.write((int) v);
            return this;
        }

        Proto varint(int field, long v) {
            return key(field, 0).raw(v);
        }

        Proto fixed32(int field, int bits) {
            key(field, 5);
            for (int i = 0; i < 4; i++) {
                out.write(bits >>> (8 * i) & 0xFF);
            }
            return this;
        }

        Proto fixed64(int field, long bits) {
            key(field, 1);
            for (int i = 0; i < 8; i++) {
                out.write((int) (bits >>> (8 * i) & 0xFF));
            }
            return this;
        }

        Proto bytes(int field, byte[] b) {
            key(field, 2).raw(b.length);
            out.writeBytes(b);
            return this;
        }

        Proto string(int field, String s) {
            return bytes(field, s.getBytes(StandardCharsets.UTF_8));
        }

        Proto message(int field, Proto m) {
            return bytes(field, m.toBytes());
        }

        byte[] toBytes() {
            return out.toByteArray();
        }
    }

    /** A {@code ModelProto.SentencePiece}; type 0 leaves the field out (NORMAL by default). */
    static Proto piece(String text, float score, int type) {
        Proto p = new Proto().string(1, text).fixed32(2, Float.floatToIntBits(score));
        return type == 0 ? p : p.varint(3, type);
    }

    /** A unigram model: T5's special pieces (pad 0, eos 1, unk 2), then {@code pieces} as NORMAL pieces. */
    static Proto t5Like(Object... textScore) {
        Proto m = new Proto()
                .message(1, piece("<pad>", 0, SentencePieceModel.CONTROL))
                .message(1, piece("</s>", 0, SentencePieceModel.CONTROL))
                .message(1, piece("<unk>", 0, SentencePieceModel.UNKNOWN));
        for (int i = 0; i < textScore.length; i += 2) {
            m.message(1, piece((String) textScore[i], ((Number) textScore[i + 1]).floatValue(), 0));
        }
        return m;
    }

    static Proto t5Trainer() {
        return new Proto()
                .varint(3, 1)
                .varint(40, 2)
                .varint(41, -1L)
                .varint(42, 1)
                .varint(43, 0);
    }

    @Test
    void readsTheGoldenModel() {
        SentencePieceModel m = SentencePieceModel.read(Golden.path("flux-tiny-dev", "tokenizer_2", "spiece.model"));
        assertEquals(1500, m.size());
        assertEquals(
                List.of("<pad>", "</s>", "<unk>", "▁a", "▁and"),
                Arrays.asList(m.pieces).subList(0, 5));
        assertArrayEquals(new int[] {3, 3, 2, 1, 1}, Arrays.copyOf(m.types, 5));
        assertEquals(-2.206841230392456f, m.scores[3]);
        assertArrayEquals("▁a".getBytes(StandardCharsets.UTF_8), m.pieceBytes[3]);
        assertEquals(SentencePieceModel.MODEL_UNIGRAM, m.trainer.modelType);
        assertEquals(2, m.trainer.unkId);
        assertEquals(-1, m.trainer.bosId);
        assertEquals(1, m.trainer.eosId);
        assertEquals(0, m.trainer.padId);
        assertFalse(m.trainer.byteFallback);
        assertEquals("nmt_nfkc", m.normalizer.name);
        assertEquals(237561, m.normalizer.precompiledCharsmap.length);
        assertTrue(m.normalizer.addDummyPrefix);
        assertTrue(m.normalizer.removeExtraWhitespaces);
        assertTrue(m.normalizer.escapeWhitespaces);
    }

    @Test
    void absentFieldsTakeTheProtoDefaults() {
        byte[] bytes = new Proto().message(1, new Proto().string(1, "x")).toBytes();
        SentencePieceModel m = SentencePieceModel.parse(bytes, "m");
        assertEquals(SentencePieceModel.NORMAL, m.types[0]);
        assertEquals(0f, m.scores[0]);
        assertEquals(SentencePieceModel.MODEL_UNIGRAM, m.trainer.modelType);
        assertFalse(m.trainer.hasEosId || m.trainer.hasPadId || m.trainer.hasUnkId);
        assertEquals(0, m.normalizer.precompiledCharsmap.length);
        assertTrue(
                m.normalizer.addDummyPrefix && m.normalizer.removeExtraWhitespaces && m.normalizer.escapeWhitespaces);
    }

    @Test
    void unknownFieldsOfEveryWireTypeAreSkipped() {
        Proto unknowns = new Proto()
                .varint(99, 12345)
                .fixed64(98, -1L)
                .string(97, "skip me")
                .fixed32(96, 7)
                .key(95, 3)
                .varint(1, 5)
                .key(94, 3)
                .string(2, "nested")
                .key(94, 4)
                .key(95, 4);
        Proto piece = piece("ab", -1.5f, SentencePieceModel.USER_DEFINED);
        piece.out.writeBytes(unknowns.toBytes());
        Proto trainer = new Proto().varint(4, 8000);
        trainer.out.writeBytes(unknowns.toBytes());
        trainer.varint(35, 1).varint(24, 1);
        Proto normalizer = new Proto().string(1, "identity");
        normalizer.out.writeBytes(unknowns.toBytes());
        normalizer.varint(4, 0);
        Proto model = new Proto();
        model.out.writeBytes(unknowns.toBytes());
        model.message(1, piece)
                .message(2, trainer)
                .message(4, new Proto().string(1, "self test"))
                .message(3, normalizer)
                .message(5, new Proto().string(1, "denormalizer"));
        model.out.writeBytes(unknowns.toBytes());

        SentencePieceModel m = SentencePieceModel.parse(model.toBytes(), "m");
        assertEquals(1, m.size());
        assertEquals("ab", m.pieces[0]);
        assertEquals(-1.5f, m.scores[0]);
        assertEquals(SentencePieceModel.USER_DEFINED, m.types[0]);
        assertTrue(m.trainer.byteFallback);
        assertTrue(m.trainer.treatWhitespaceAsSuffix);
        assertEquals("identity", m.normalizer.name);
        assertFalse(m.normalizer.removeExtraWhitespaces);
    }

    @Test
    void aRepeatedSpecMessageMergesAndLastScalarWins() {
        byte[] bytes = new Proto()
                .message(3, new Proto().string(1, "first").bytes(2, new byte[] {1, 2, 3, 4, 5}))
                .message(2, new Proto().varint(42, 7))
                .message(3, new Proto().varint(3, 0))
                .message(2, new Proto().varint(42, 9).varint(43, 3))
                .toBytes();
        SentencePieceModel m = SentencePieceModel.parse(bytes, "m");
        assertEquals("first", m.normalizer.name);
        assertEquals(5, m.normalizer.precompiledCharsmap.length);
        assertFalse(m.normalizer.addDummyPrefix);
        assertEquals(9, m.trainer.eosId);
        assertEquals(3, m.trainer.padId);
    }

    private static ModelException corrupt(byte[] bytes) {
        return assertThrows(ModelException.class, () -> SentencePieceModel.parse(bytes, "/models/spiece.model"));
    }

    @Test
    void corruptBytesNameTheFieldAndOffset() {
        byte[] good = t5Like("▁a", -1).toBytes();

        // a piece message cut short: its length runs past the end of the file
        ModelException e = corrupt(Arrays.copyOf(good, good.length - 2));
        assertTrue(
                e.getMessage().startsWith("/models/spiece.model: truncated or corrupt SentencePiece model"),
                e.getMessage());
        assertTrue(e.getMessage().contains("ModelProto, pieces[3] (field 1) has length"), e.getMessage());
        assertTrue(
                e.getMessage()
                        .contains("at byte offset "
                                + (good.length
                                        - new Proto()
                                                .message(1, piece("▁a", -1, 0))
                                                .toBytes()
                                                .length)),
                e.getMessage());

        // inside a piece: the score's 4 bytes are cut
        byte[] score = new Proto()
                .message(1, new Proto().string(1, "x").key(2, 5).raw(0))
                .toBytes();
        e = corrupt(score);
        assertTrue(e.getMessage().contains("ModelProto.pieces[0], score (field 2) needs 4 bytes"), e.getMessage());

        // a varint that never ends
        e = corrupt(new byte[] {0x48, (byte) 0x80, (byte) 0x80});
        assertTrue(e.getMessage().contains("runs past the end"), e.getMessage());
        assertTrue(e.getMessage().contains("at byte offset 1"), e.getMessage());
        e = corrupt(new byte[] {0x48, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, 1});
        assertTrue(e.getMessage().contains("longer than 10 bytes"), e.getMessage());

        // field number 0, wire types 6 and 7, a stray end-group, a group without its end
        assertTrue(corrupt(new byte[] {0x00}).getMessage().contains("field number 0"));
        assertTrue(corrupt(new byte[] {0x0E}).getMessage().contains("wire type 6"));
        assertTrue(corrupt(new byte[] {0x0F}).getMessage().contains("wire type 7"));
        assertTrue(corrupt(new Proto().key(7, 4).toBytes()).getMessage().contains("end-group"));
        assertTrue(corrupt(new Proto().key(7, 3).varint(1, 1).toBytes())
                .getMessage()
                .contains("no end-group"));

        // a known field with the wrong wire type, an unknown piece type
        e = corrupt(new Proto().varint(1, 5).toBytes());
        assertTrue(
                e.getMessage().contains("pieces[0] (field 1) has wire type 0, expected 2 (length-delimited)"),
                e.getMessage());
        e = corrupt(
                new Proto().message(1, new Proto().string(1, "x").varint(3, 9)).toBytes());
        assertTrue(e.getMessage().contains("type (field 3) is 9"), e.getMessage());
        e = corrupt(new Proto().message(2, new Proto().string(3, "unigram")).toBytes());
        assertTrue(
                e.getMessage().contains("ModelProto.trainer_spec, model_type (field 3) has wire type 2"),
                e.getMessage());

        assertTrue(corrupt(new byte[0]).getMessage().contains("empty file"));
    }

    @Test
    void everyTruncationOrByteFlipIsAModelExceptionOrAValidModel() throws IOException {
        byte[] golden = Files.readAllBytes(Golden.path("flux-tiny-dev", "tokenizer_2", "spiece.model"));
        // the charsmap is most of the file; the pieces come first
        for (int n = 0; n < 4000; n++) {
            tryLoad(Arrays.copyOf(golden, n));
        }
        Random random = new Random(7);
        for (int i = 0; i < 300; i++) {
            byte[] b = golden.clone();
            for (int k = 0; k < 3; k++) {
                b[random.nextInt(b.length)] = (byte) random.nextInt(256);
            }
            tryLoad(b);
        }
    }

    /** Loads and, when that works, encodes a few texts: anything but a ModelException is a bug. */
    private static void tryLoad(byte[] bytes) {
        try {
            T5Tokenizer t = T5Tokenizer.fromBytes(bytes, "fuzz");
            for (String s : List.of("a photo of a cat", "café ＡＢＣ ﬁ 東京 🐱", "\t x \u200b")) {
                int[] ids = t.encode(s, 16);
                assertEquals(16, ids.length);
                assertEquals(t.pieces(s).size(), t.ids(s).length);
            }
        } catch (ModelException expected) {
            assertTrue(expected.getMessage().startsWith("fuzz: "), expected.getMessage());
        }
    }

    @Test
    void readingAFileNamesIt() throws IOException {
        Path p = dir.resolve("spiece.model");
        Files.write(p, new byte[] {0x0A, 0x7F});
        ModelException e = assertThrows(ModelException.class, () -> SentencePieceModel.read(p));
        assertTrue(e.getMessage().startsWith(p + ": truncated or corrupt"), e.getMessage());
        Path folder = Files.createDirectory(dir.resolve("folder"));
        e = assertThrows(ModelException.class, () -> SentencePieceModel.read(folder));
        assertTrue(e.getMessage().contains(folder.toString()), e.getMessage());
    }
}
