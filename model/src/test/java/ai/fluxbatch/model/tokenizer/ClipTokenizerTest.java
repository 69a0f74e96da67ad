package ai.fluxbatch.model.tokenizer;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
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
import java.util.Arrays;
import java.util.List;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The CLIP tokenizer against the golden ids of the original tokenizer, its clean-up, truncation and bad files. */
class ClipTokenizerTest {
    private static final int SOT = 49406;
    private static final int EOT = 49407;

    private static ClipTokenizer tok;

    @TempDir
    Path dir;

    @BeforeAll
    static void load() {
        tok = ClipTokenizer.load(Golden.path("flux-tiny-dev", "tokenizer"));
    }

    @Test
    void goldenPrompts() throws IOException {
        JsonNode golden = new ObjectMapper()
                .readTree(Golden.path("cases", "tokenizer-golden.json").toFile());
        JsonNode prompts = golden.get("prompts");
        JsonNode ids = golden.get("clip_input_ids");
        assertEquals(11, prompts.size());
        assertEquals(77, golden.get("clip_max_length").asInt());
        for (int p = 0; p < prompts.size(); p++) {
            int[] expected = new int[ids.get(p).size()];
            for (int i = 0; i < expected.length; i++) {
                expected[i] = ids.get(p).get(i).asInt();
            }
            String prompt = prompts.get(p).asText();
            assertArrayEquals(expected, tok.encode(prompt), () -> "prompt " + prompt);
        }
    }

    @Test
    void vocabSize() {
        assertEquals(49408, tok.vocabSize());
    }

    @Test
    void simplePrompt() {
        assertEquals(List.of("a</w>", "photo</w>", "of</w>", "a</w>", "cat</w>"), tok.bpeTokens("A Photo of a CAT"));
        int[] ids = tok.encode("a photo of a cat");
        assertEquals(77, ids.length);
        assertArrayEquals(new int[] {SOT, 320, 1125, 539, 320, 2368, EOT, EOT}, Arrays.copyOf(ids, 8));
        assertEquals(EOT, ids[76]);
    }

    @Test
    void emptyAndBlankPrompts() {
        int[] expected = new int[77];
        Arrays.fill(expected, EOT);
        expected[0] = SOT;
        assertArrayEquals(expected, tok.encode(""));
        assertArrayEquals(expected, tok.encode(" \t\n\u00a0\u3000 "));
        assertEquals(List.of(), tok.bpeTokens("\u0000\u0007"));
    }

    @Test
    void nbspAndUnicodeWhitespaceAreSpaces() {
        assertArrayEquals(tok.encode("a cat"), tok.encode("a\u00a0cat"));
        assertArrayEquals(tok.encode("a cat on a mat"), tok.encode("a\u2003cat\u202fon\u3000a\u2028mat"));
        assertArrayEquals(tok.encode("x y z"), tok.encode("x\r\ny\rz"));
        // ftfy reads the C1 control U+0085 (NEL) as Windows-1252 0x85 before it fixes line breaks: an ellipsis
        assertArrayEquals(tok.encode("x y\u2026z"), tok.encode("x\r\ny\u0085z"));
    }

    @Test
    void zeroWidthSpaceIsNotWhitespaceAndGoesThroughBpeAsBytes() {
        // U+200B is not \s in Python: it is a token of its own, UTF-8 e2 80 8b as bytes_to_unicode characters
        assertEquals(List.of("a</w>", "\u00e2\u0122\u012d</w>", "cat</w>"), tok.bpeTokens("a\u200bcat"));
        assertArrayEquals(new int[] {SOT, 320, 9844, 2368, EOT}, Arrays.copyOf(tok.encode("a\u200bcat"), 5));
    }

    @Test
    void fullWidthLettersBecomeAscii() {
        assertArrayEquals(
                tok.encode("abc hello, 123!"),
                tok.encode("\uff21\uff22\uff23\u3000\uff48\uff45\uff4c\uff4c\uff4f\uff0c\uff11\uff12\uff13\uff01"));
    }

    @Test
    void latinLigaturesAreBroken() {
        assertArrayEquals(
                tok.encode("fish flower office waffle"), tok.encode("\ufb01sh \ufb02ower o\ufb03ce wa\ufb04e"));
        assertNotEquals(Arrays.toString(tok.encode("fish")), Arrays.toString(tok.encode("\u00e6sh")), "æ is kept");
    }

    @Test
    void combiningAccentsAreComposed() {
        assertArrayEquals(tok.encode("caf\u00e9"), tok.encode("cafe\u0301"));
        assertEquals(List.of("caf\u00c3\u00a9</w>"), tok.bpeTokens("CAFE\u0301"));
    }

    @Test
    void curlyQuotesAreStraightened() {
        assertArrayEquals(
                tok.encode("\"hello\" 'world' it's"), tok.encode("\u201chello\u201d \u2018world\u2019 it\u2019s"));
        assertEquals(List.of("it</w>", "'s</w>"), tok.bpeTokens("it\u2019s"));
        // a C1 control character is read as its Windows-1252 byte first: 0x92 is a right single quote
        assertEquals(List.of("it</w>", "'s</w>"), tok.bpeTokens("it\u0092s"));
    }

    @Test
    void controlCharactersAreRemoved() {
        assertArrayEquals(tok.encode("abcde"), tok.encode("a\u0000b\u0007c\u007fd\u000be\ufeff"));
        assertArrayEquals(tok.encode("red car"), tok.encode("\u001b[31mred\u001b[0m car"));
    }

    @Test
    void htmlEntities() {
        assertEquals(List.of("fish</w>", "&</w>", "chips</w>"), tok.bpeTokens("fish &amp;amp;amp; chips"));
        assertArrayEquals(
                tok.encode("he said \"hi\" & it's <3"), tok.encode("he said &quot;hi&quot; &amp; it&#39;s &lt;3"));
        assertArrayEquals(tok.encode("a b"), tok.encode("a&nbsp;b"));
    }

    @Test
    void specialTokensTypedInAPromptStayWhole() {
        assertEquals(List.of("<|endoftext|>", "hi</w>"), tok.bpeTokens("<|endoftext|>hi"));
        assertArrayEquals(new int[] {SOT, SOT, 1883, EOT}, Arrays.copyOf(tok.encode("<|STARTOFTEXT|>hi"), 4));
    }

    @Test
    void contractionsDigitsAndPunctuation() {
        assertEquals(
                List.of("they</w>", "'d</w>", "'ve</w>", "1</w>", "2</w>", ",</w>", "...!</w>"),
                tok.bpeTokens("THEY'D'VE 12, ...!"));
    }

    @Test
    void truncationKeepsTheEndToken() {
        String prompt = "a photo " + "of a very red cat ".repeat(40);
        List<String> bpe = tok.bpeTokens(prompt);
        assertTrue(bpe.size() > 200);
        int[] ids = tok.encode(prompt);
        assertEquals(77, ids.length);
        assertEquals(SOT, ids[0]);
        assertEquals(EOT, ids[76]);
        for (int i = 1; i < 76; i++) {
            assertNotEquals(EOT, ids[i], "position " + i);
        }
        int[] ten = tok.encode(prompt, 10);
        assertArrayEquals(Arrays.copyOf(ids, 9), Arrays.copyOf(ten, 9));
        assertEquals(EOT, ten[9]);
        assertArrayEquals(new int[] {SOT, EOT}, tok.encode(prompt, 2));
        assertThrows(IllegalArgumentException.class, () -> tok.encode(prompt, 1));
    }

    @Test
    void bpeMergesLowestRankFirstEverywhere() throws IOException {
        writeVocab(
                dir,
                "\"<|startoftext|>\": 0, \"<|endoftext|>\": 1, \"lo\": 2, \"l</w>\": 3, \"low\": 4,"
                        + " \"er</w>\": 5, \"lower</w>\": 6, \"l\": 7, \"o\": 8, \"w\": 9, \"e\": 10, \"r</w>\": 11");
        writeMerges(dir, "#version: 0.2\nl o\ne r</w>\nlo w\nlow er</w>\n");
        ClipTokenizer t = ClipTokenizer.load(dir);
        assertEquals(12, t.vocabSize());
        assertEquals(List.of("lo", "lo", "l</w>"), t.bpeTokens("lolol"));
        assertEquals(List.of("lower</w>"), t.bpeTokens("LOWER"));
        assertArrayEquals(new int[] {0, 6, 1, 1}, t.encode("lower", 4));
    }

    // ---------------------------------------------------------------- bad input

    @Test
    void missingFolder() {
        Path missing = dir.resolve("nope");
        ModelException e = assertThrows(ModelException.class, () -> ClipTokenizer.load(missing));
        assertMessage(e, missing.toString(), "vocab.json");
    }

    @Test
    void missingVocab() throws IOException {
        writeMerges(dir, "#version: 0.2\n");
        ModelException e = assertThrows(ModelException.class, () -> ClipTokenizer.load(dir));
        assertMessage(e, dir.resolve("vocab.json").toString(), "missing", "JSON object");
    }

    @Test
    void missingMerges() throws IOException {
        writeVocab(dir, "\"<|startoftext|>\": 0, \"<|endoftext|>\": 1");
        ModelException e = assertThrows(ModelException.class, () -> ClipTokenizer.load(dir));
        assertMessage(e, dir.resolve("merges.txt").toString(), "missing");
    }

    @Test
    void vocabNotAnObject() throws IOException {
        Files.writeString(dir.resolve("vocab.json"), "[\"a\", \"b\"]");
        writeMerges(dir, "#version: 0.2\n");
        ModelException e = assertThrows(ModelException.class, () -> ClipTokenizer.load(dir));
        assertMessage(e, "vocab.json", "array", "expected a JSON object of token to id");
    }

    @Test
    void vocabNotJson() throws IOException {
        Files.writeString(dir.resolve("vocab.json"), "{\"a\": 1,");
        writeMerges(dir, "#version: 0.2\n");
        ModelException e = assertThrows(ModelException.class, () -> ClipTokenizer.load(dir));
        assertMessage(e, "vocab.json", "not valid JSON");
    }

    @Test
    void vocabValueNotAnInteger() throws IOException {
        writeVocab(dir, "\"<|startoftext|>\": 0, \"<|endoftext|>\": 1, \"cat</w>\": \"7\"");
        writeMerges(dir, "#version: 0.2\n");
        ModelException e = assertThrows(ModelException.class, () -> ClipTokenizer.load(dir));
        assertMessage(e, "vocab.json", "cat</w>", "integer id");
        writeVocab(dir, "\"<|startoftext|>\": 0, \"<|endoftext|>\": 1.5");
        assertMessage(assertThrows(ModelException.class, () -> ClipTokenizer.load(dir)), "<|endoftext|>", "integer id");
    }

    @Test
    void emptyVocab() throws IOException {
        writeVocab(dir, "");
        writeMerges(dir, "#version: 0.2\n");
        ModelException e = assertThrows(ModelException.class, () -> ClipTokenizer.load(dir));
        assertMessage(e, "vocab.json", "empty");
        Files.writeString(dir.resolve("vocab.json"), "");
        assertMessage(
                assertThrows(ModelException.class, () -> ClipTokenizer.load(dir)),
                "vocab.json",
                "expected a JSON object");
    }

    @Test
    void vocabWithoutSpecialTokens() throws IOException {
        writeVocab(dir, "\"a</w>\": 0");
        writeMerges(dir, "#version: 0.2\n");
        ModelException e = assertThrows(ModelException.class, () -> ClipTokenizer.load(dir));
        assertMessage(e, "vocab.json", "<|startoftext|>");
    }

    @Test
    void mergesLineNotTwoSymbols() throws IOException {
        writeVocab(dir, "\"<|startoftext|>\": 0, \"<|endoftext|>\": 1");
        writeMerges(dir, "#version: 0.2\ni n\nt h e\n");
        ModelException e = assertThrows(ModelException.class, () -> ClipTokenizer.load(dir));
        assertMessage(e, dir.resolve("merges.txt").toString(), "line 3", "'t h e'", "two symbols");
        writeMerges(dir, "#version: 0.2\ni n\nth\n");
        assertMessage(
                assertThrows(ModelException.class, () -> ClipTokenizer.load(dir)), "merges.txt", "line 3", "'th'");
    }

    @Test
    void bpeTokenMissingFromVocab() throws IOException {
        writeVocab(dir, "\"<|startoftext|>\": 0, \"<|endoftext|>\": 1, \"a</w>\": 2");
        writeMerges(dir, "#version: 0.2\n");
        ClipTokenizer t = ClipTokenizer.load(dir);
        assertArrayEquals(new int[] {0, 2, 1}, t.encode("a", 3));
        ModelException e = assertThrows(ModelException.class, () -> t.encode("a b"));
        assertMessage(e, "'b</w>'", "vocab.json");
    }

    private static void writeVocab(Path d, String entries) throws IOException {
        Files.writeString(d.resolve("vocab.json"), "{" + entries + "}", StandardCharsets.UTF_8);
    }

    private static void writeMerges(Path d, String text) throws IOException {
        Files.writeString(d.resolve("merges.txt"), text, StandardCharsets.UTF_8);
    }

    static void assertMessage(Throwable e, String... parts) {
        for (String p : parts) {
            assertTrue(e.getMessage().contains(p), () -> "message '" + e.getMessage() + "' lacks '" + p + "'");
        }
    }
}
