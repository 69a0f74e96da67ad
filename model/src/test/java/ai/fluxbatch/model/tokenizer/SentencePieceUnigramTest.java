package ai.fluxbatch.model.tokenizer;

import static ai.fluxbatch.model.tokenizer.SentencePieceModelTest.piece;
import static ai.fluxbatch.model.tokenizer.SentencePieceModelTest.t5Like;
import static ai.fluxbatch.model.tokenizer.SentencePieceModelTest.t5Trainer;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.fluxbatch.model.ModelException;
import ai.fluxbatch.model.tokenizer.SentencePieceModelTest.Proto;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Viterbi segmentation, unknown handling, user-defined, unused and byte pieces, on small hand-built models. */
class SentencePieceUnigramTest {
    @TempDir
    Path dir;

    /** pad 0, eos 1, unk 2, then: */
    private static final Object[] VOCAB = {
        "▁", -1.0, // 3
        "a", -2.0, // 4
        "b", -2.0, // 5
        "ab", -3.0, // 6
        "▁ab", -10.0, // 7
        "x", -1.0, // 8
        "y", -1.0, // 9
        "xy", -2.0, // 10
        "c", -5.0, // 11
        "qz", -3.0, // 12
        "z", -4.0, // 13
    };

    private static T5Tokenizer tokenizer(Proto model) {
        return T5Tokenizer.fromBytes(model.toBytes(), "test.model");
    }

    private static T5Tokenizer basic() {
        return tokenizer(t5Like(VOCAB)
                .message(2, t5Trainer())
                .message(1, piece("abc", 0, SentencePieceModel.UNUSED)) // 14
                .message(1, piece("<sep>", 0, SentencePieceModel.USER_DEFINED)) // 15
                .message(1, piece("<", -1, 0))
                .message(1, piece("s", -1, 0))
                .message(1, piece("e", -1, 0))
                .message(1, piece("p", -1, 0))
                .message(1, piece(">", -1, 0)));
    }

    @Test
    void bestScoringPathWins() {
        T5Tokenizer t = basic();
        assertEquals(List.of("▁", "ab"), t.pieces("ab")); // -4 beats ▁|a|b (-5) and ▁ab (-10)
        assertArrayEquals(new int[] {3, 6}, t.ids("ab"));
        assertEquals(List.of("▁", "ab", "▁", "x"), t.pieces("ab x"));
        assertArrayEquals(new int[] {3, 6, 1, 0}, t.encode("ab", 4));
    }

    @Test
    void aTieKeepsThePieceFoundFirst() {
        // ▁|x|y and ▁|xy both score -3: the longer piece from the earlier start is found first and kept
        assertEquals(List.of("▁", "xy"), basic().pieces("xy"));
    }

    @Test
    void unusedPiecesAreNeverChosen() {
        assertEquals(List.of("▁", "ab", "c"), basic().pieces("abc"));
    }

    @Test
    void unknownCharactersScoreMinMinusTenAndRunsMerge() {
        T5Tokenizer t = basic();
        assertEquals(List.of("▁", "a", "d"), t.pieces("ad"));
        assertArrayEquals(new int[] {3, 4, 2}, t.ids("ad"));
        assertEquals(List.of("▁", "a", "dd"), t.pieces("add"));
        assertArrayEquals(new int[] {3, 4, 2}, t.ids("add"));
        assertEquals(List.of("▁", "d", "a", "d"), t.pieces("dad"));
        assertArrayEquals(new int[] {3, 2, 4, 2}, t.ids("dad"));
        assertEquals(List.of("▁", "東京"), t.pieces("東京"));
        // 'q' has no piece of its own, only "qz": alone it is unknown, before 'z' the longer piece covers it
        assertEquals(List.of("▁", "qz"), t.pieces("qz"));
        assertArrayEquals(new int[] {3, 2}, t.ids("q"));
        assertEquals(List.of("▁", "q", "a"), t.pieces("qa"));
    }

    @Test
    void userDefinedPiecesWinAndAreKeptByTheNormalizer() {
        T5Tokenizer t = basic();
        assertEquals(List.of("▁", "a", "<sep>", "b"), t.pieces("a<sep>b"));
        assertArrayEquals(new int[] {3, 4, 15, 5}, t.ids("a<sep>b"));
        assertEquals(List.of("▁", "<", "s", "e", "p"), t.pieces("<sep"));
    }

    @Test
    void aUserDefinedPieceScoresLengthTimesMaxScoreMinusATenth() {
        // unigram_model.cc starts max_score from FLT_MIN, so with all scores negative a user-defined piece scores
        // about -0.1; five characters at -0.01 each (-0.05) then beat it, exactly as in SentencePiece
        T5Tokenizer t = tokenizer(t5Like("▁", -0.01, "<", -0.01, "s", -0.01, "e", -0.01, "p", -0.01, ">", -0.01)
                .message(1, piece("<sep>", 0, SentencePieceModel.USER_DEFINED)));
        assertEquals(List.of("▁", "<", "s", "e", "p", ">"), t.pieces("<sep>"));
        T5Tokenizer t2 = tokenizer(t5Like("▁", -0.01, "<", -0.03, "s", -0.03, "e", -0.03, "p", -0.03, ">", -0.03)
                .message(1, piece("<sep>", 0, SentencePieceModel.USER_DEFINED)));
        assertEquals(List.of("▁", "<sep>"), t2.pieces("<sep>"));
    }

    @Test
    void byteFallbackSpellsUnknownCharactersAsBytes() {
        Proto m = new Proto()
                .message(1, piece("<pad>", 0, SentencePieceModel.CONTROL))
                .message(1, piece("</s>", 0, SentencePieceModel.CONTROL))
                .message(1, piece("<unk>", 0, SentencePieceModel.UNKNOWN));
        for (int b = 0; b < 256; b++) {
            m.message(1, piece(String.format("<0x%02X>", b), 0, SentencePieceModel.BYTE));
        }
        m.message(1, piece("▁", -1, 0))
                .message(1, piece("a", -2, 0))
                .message(2, t5Trainer().varint(35, 1));
        T5Tokenizer t = tokenizer(m);
        assertEquals(List.of("▁", "a", "<0xC3>", "<0xA9>"), t.pieces("aé"));
        assertArrayEquals(new int[] {259, 260, 3 + 0xC3, 3 + 0xA9}, t.ids("aé"));
        // no merging: each unknown character is its own bytes
        assertEquals(List.of("▁", "<0x78>", "<0x78>"), t.pieces("xx"));
        assertArrayEquals(new int[] {259, 3 + 0x78, 3 + 0x78, 1, 0}, t.encode("xx", 5));
    }

    @Test
    void viterbiFindsTheBestScoreOfAllSegmentations() {
        Random random = new Random(11);
        String[] alphabet = {"a", "b", "c", "d", "▁"};
        for (int round = 0; round < 30; round++) {
            List<Object> vocab = new ArrayList<>();
            Map<String, Float> scores = new HashMap<>();
            while (scores.size() < 12) {
                StringBuilder p = new StringBuilder();
                int len = 1 + random.nextInt(3);
                for (int i = 0; i < len; i++) {
                    p.append(alphabet[random.nextInt(alphabet.length - 1)]);
                }
                if (random.nextInt(3) == 0) {
                    p.insert(0, "▁");
                }
                String piece = p.toString();
                if (!scores.containsKey(piece)) {
                    float score = -1 - 9 * random.nextFloat();
                    scores.put(piece, score);
                    vocab.add(piece);
                    vocab.add(score);
                }
            }
            T5Tokenizer t = tokenizer(t5Like(vocab.toArray()));
            float unk = scores.values().stream().reduce(Float.MAX_VALUE, Math::min) - 10;
            for (int s = 0; s < 20; s++) {
                StringBuilder text = new StringBuilder();
                int len = 1 + random.nextInt(8);
                for (int i = 0; i < len; i++) {
                    text.append(alphabet[random.nextInt(alphabet.length - 1)]);
                }
                String normalized = t.normalize(text.toString());
                float best = best(normalized, 0, scores, unk, new HashMap<>());
                float got = 0;
                List<String> pieces = t.pieces(text.toString());
                int[] ids = t.ids(text.toString());
                for (int i = 0; i < pieces.size(); i++) {
                    if (ids[i] == 2) {
                        for (int k = 0; k < pieces.get(i).length(); k++) {
                            got += unk;
                        }
                    } else {
                        got += scores.get(pieces.get(i));
                    }
                }
                assertEquals(normalized, String.join("", pieces));
                assertEquals(best, got, 1e-4f, () -> "text " + text + " pieces " + pieces);
            }
        }
    }

    /** Best score of {@code s[from..]} over every segmentation (an unknown character only where no piece covers it alone). */
    private static float best(String s, int from, Map<String, Float> scores, float unk, Map<Integer, Float> memo) {
        if (from == s.length()) {
            return 0;
        }
        Float known = memo.get(from);
        if (known != null) {
            return known;
        }
        float best = Float.NEGATIVE_INFINITY;
        for (int end = from + 1; end <= s.length(); end++) {
            Float score = scores.get(s.substring(from, end));
            if (score != null) {
                best = Math.max(best, score + best(s, end, scores, unk, memo));
            }
        }
        if (!scores.containsKey(s.substring(from, from + 1))) {
            best = Math.max(best, unk + best(s, from + 1, scores, unk, memo));
        }
        memo.put(from, best);
        return best;
    }

    private ModelException refused(Proto model) throws IOException {
        Path file = dir.resolve("spiece.model");
        Files.write(file, model.toBytes());
        ModelException e = assertThrows(ModelException.class, () -> T5Tokenizer.load(file));
        assertTrue(e.getMessage().startsWith(file + ": "), e.getMessage());
        return e;
    }

    @Test
    void badVocabulariesAreRefusedWithTheFileNamed() throws IOException {
        assertTrue(refused(new Proto().message(1, piece("a", -1, 0)).message(1, piece("b", -1, 0)))
                .getMessage()
                .contains("no unknown piece"));
        assertTrue(refused(t5Like("a", -1).message(1, piece("<unk2>", 0, SentencePieceModel.UNKNOWN)))
                .getMessage()
                .contains("pieces 2 and 4 are both UNKNOWN"));
        assertTrue(refused(t5Like("a", -1).message(2, new Proto().varint(3, 2)))
                .getMessage()
                .contains("model_type is BPE (2), expected UNIGRAM"));
        assertTrue(refused(t5Like("a", -1).message(1, piece("<0x41>", 0, SentencePieceModel.BYTE)))
                .getMessage()
                .contains("byte_fallback is false"));
        assertTrue(refused(t5Like("a", -1)
                        .message(1, piece("<0x41>", 0, SentencePieceModel.BYTE))
                        .message(2, new Proto().varint(35, 1)))
                .getMessage()
                .contains("<0x00> is missing"));
        assertTrue(refused(t5Like("a", -1, "a", -2)).getMessage().contains("\"a\" is already defined as piece 3"));
        assertTrue(refused(t5Like("", -1)).getMessage().contains("piece 3 is empty"));
        assertTrue(refused(t5Like("a", -1).message(2, new Proto().varint(43, -1L)))
                .getMessage()
                .contains("trainer_spec.pad_id is -1"));
        assertTrue(refused(t5Like("a", -1).message(2, new Proto().varint(42, 4)))
                .getMessage()
                .contains("trainer_spec.eos_id is 4, expected a piece id in 0..3"));
        assertTrue(refused(t5Like("a", -1).message(2, new Proto().varint(40, 0)))
                .getMessage()
                .contains("unk_id is 0 but the UNKNOWN piece is 2"));
        assertTrue(refused(new Proto()).getMessage().contains("empty file"));
    }

    @Test
    void eosAndPadComeFromTheTrainerSpec() {
        T5Tokenizer defaults = tokenizer(t5Like("▁", -1, "a", -1));
        assertEquals(1, defaults.eosId());
        assertEquals(0, defaults.padId());
        T5Tokenizer custom = tokenizer(
                t5Like("▁", -1, "a", -1).message(2, new Proto().varint(42, 0).varint(43, 1)));
        assertArrayEquals(new int[] {3, 4, 0, 1, 1}, custom.encode("a", 5));
        assertEquals(5, custom.vocabSize());
    }
}
