package ai.fluxbatch.model.tokenizer;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.fluxbatch.model.Golden;
import ai.fluxbatch.model.ModelException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The T5 tokenizer against SentencePiece's own ids and pieces for the golden prompts, PartiPrompts, and bad files. */
class T5TokenizerTest {
    private static final int PAD = 0;
    private static final int EOS = 1;
    private static final int UNK = 2;

    private static Path model;
    private static T5Tokenizer tok;

    @TempDir
    Path dir;

    @BeforeAll
    static void load() {
        model = Golden.path("flux-tiny-dev", "tokenizer_2", "spiece.model");
        tok = T5Tokenizer.load(model);
    }

    @Test
    void goldenIdsAndPieces() throws IOException {
        JsonNode golden = new ObjectMapper()
                .readTree(Golden.path("cases", "tokenizer-golden.json").toFile());
        JsonNode prompts = golden.get("prompts");
        JsonNode ids = golden.get("t5_input_ids");
        JsonNode pieces = golden.get("t5_pieces_no_eos");
        int maxLength = golden.get("t5_max_length").asInt();
        assertEquals(11, prompts.size());
        assertEquals(48, maxLength);
        for (int p = 0; p < prompts.size(); p++) {
            String prompt = prompts.get(p).asText();
            int[] expectedIds = new int[ids.get(p).size()];
            for (int i = 0; i < expectedIds.length; i++) {
                expectedIds[i] = ids.get(p).get(i).asInt();
            }
            List<String> expectedPieces = new ArrayList<>();
            pieces.get(p).forEach(n -> expectedPieces.add(n.asText()));
            assertEquals(expectedPieces, tok.pieces(prompt), () -> "pieces of prompt " + prompt);
            assertArrayEquals(expectedIds, tok.encode(prompt, maxLength), () -> "ids of prompt " + prompt);
        }
    }

    @Test
    void specialIdsAndVocabulary() {
        assertEquals(1500, tok.vocabSize());
        assertEquals(PAD, tok.padId());
        assertEquals(EOS, tok.eosId());
        assertEquals(UNK, tok.unkId());
        assertEquals("<pad>", tok.piece(PAD));
        assertEquals("</s>", tok.piece(EOS));
        assertEquals("<unk>", tok.piece(UNK));
    }

    @Test
    void truncatesToMaxLengthMinusOneThenEos() {
        String text = "a photo of a cat";
        int[] all = tok.ids(text);
        assertArrayEquals(new int[] {3, 252, 7, 3, 71}, all);
        assertArrayEquals(new int[] {3, 252, 7, 3, 71, EOS}, tok.encode(text, 6));
        assertArrayEquals(new int[] {3, 252, 7, 3, 71, EOS, PAD, PAD}, tok.encode(text, 8));
        assertArrayEquals(new int[] {3, 252, EOS}, tok.encode(text, 3));
        assertArrayEquals(new int[] {EOS}, tok.encode(text, 1));
        assertThrows(IllegalArgumentException.class, () -> tok.encode(text, 0));
    }

    @Test
    void emptyAndWhitespaceOnlyTextIsJustEos() {
        for (String s : List.of("", " ", "   ", "\t\n", "\u3000")) {
            assertEquals(List.of(), tok.pieces(s), () -> "pieces of \"" + s + "\"");
            assertArrayEquals(new int[] {EOS, PAD, PAD}, tok.encode(s, 3));
            assertEquals("", tok.normalize(s));
        }
    }

    @Test
    void runsOfUnknownCharactersMergeIntoOneUnknownPiece() {
        // '—' and emoji are not in the tiny vocabulary; two unknown characters in a row are one piece, one id
        assertEquals(List.of("▁", "🐱🚀"), tok.pieces("🐱🚀"));
        assertArrayEquals(new int[] {16, UNK}, tok.ids("🐱🚀"));
        assertEquals(List.of("▁", "🐱", "▁", "🚀"), tok.pieces("🐱 🚀"));
        assertArrayEquals(new int[] {16, UNK, 16, UNK}, tok.ids("🐱 🚀"));
        // control pieces are plain text to SentencePiece: "</s>" in a prompt is not eos
        List<String> p = tok.pieces("</s>");
        assertTrue(p.size() > 1, p::toString);
        assertTrue(Arrays.stream(tok.ids("</s>")).noneMatch(id -> id == EOS));
    }

    @Test
    void unpairedSurrogateIsOneReplacementCharacter() {
        // UTF-8 cannot carry it, so it is read as U+FFFD, which nmt_nfkc turns into a space
        assertEquals("▁a▁b", tok.normalize("a\uD800b"));
        assertEquals(tok.normalize("a\uFFFDb"), tok.normalize("a\uDC00b"));
        assertEquals(List.of("▁a", "▁b"), tok.pieces("a\uD800\uD800b"));
    }

    @Test
    void everyPartiPromptGivesFullLengthIdsEndingInEosThenPad() throws IOException {
        List<String> lines = Files.readAllLines(
                Golden.dir().resolveSibling("prompts").resolve("PartiPrompts.tsv"), StandardCharsets.UTF_8);
        int column = Arrays.asList(lines.get(0).split("\t", -1)).indexOf("Prompt");
        assertTrue(column >= 0, "PartiPrompts.tsv has a Prompt column");
        List<String> prompts = new ArrayList<>();
        for (String line : lines.subList(1, lines.size())) {
            if (!line.isEmpty()) {
                prompts.add(line.split("\t", -1)[column]);
            }
        }
        assertEquals(1632, prompts.size());
        int truncated = 0;
        for (String prompt : prompts) {
            int[] ids = tok.encode(prompt, 512);
            assertEquals(512, ids.length);
            int eos = -1;
            for (int i = 0; i < ids.length; i++) {
                if (ids[i] == EOS) {
                    eos = i;
                    break;
                }
            }
            int at = eos;
            assertTrue(eos > 0, () -> "eos in the ids of " + prompt);
            int[] pieces = tok.ids(prompt);
            assertEquals(Math.min(pieces.length, 511), at, () -> "eos position for " + prompt);
            assertArrayEquals(Arrays.copyOf(pieces, at), Arrays.copyOf(ids, at), () -> "ids of " + prompt);
            for (int i = 0; i < at; i++) {
                assertTrue(ids[i] != PAD && ids[i] != EOS && ids[i] < tok.vocabSize(), () -> "id in " + prompt);
            }
            for (int i = at + 1; i < ids.length; i++) {
                assertEquals(PAD, ids[i], () -> "padding of " + prompt);
            }
            if (pieces.length > 511) {
                truncated++;
            }
        }
        assertEquals(0, truncated, "no PartiPrompt needs more than 511 pieces");
    }

    @Test
    void missingFileIsAClearError() {
        Path missing = dir.resolve("tokenizer_2").resolve("spiece.model");
        ModelException e = assertThrows(ModelException.class, () -> T5Tokenizer.load(missing));
        assertTrue(e.getMessage().contains(missing.toString()), e.getMessage());
        assertTrue(e.getMessage().contains("not found"), e.getMessage());
    }

    @Test
    void truncatedFileNamesTheFieldAndOffset() throws IOException {
        byte[] bytes = Files.readAllBytes(model);
        Path cut = dir.resolve("spiece.model");
        Files.write(cut, Arrays.copyOf(bytes, 1000));
        ModelException e = assertThrows(ModelException.class, () -> T5Tokenizer.load(cut));
        assertTrue(e.getMessage().contains(cut.toString()), e.getMessage());
        assertTrue(e.getMessage().contains("byte offset"), e.getMessage());
        assertTrue(e.getMessage().contains("ModelProto"), e.getMessage());
    }
}
