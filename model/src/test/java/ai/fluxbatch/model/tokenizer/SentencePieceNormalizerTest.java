package ai.fluxbatch.model.tokenizer;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.fluxbatch.model.Golden;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.text.Normalizer;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.stream.Collectors;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * The normalizer. With no SentencePiece to ask here, expectations come from NFKC (java.text.Normalizer) and from the
 * model's own charsmap: its rules are NFKC except for the handful of nmt_nfkc rules for control and space-like
 * characters, which the first test pins down rule by rule.
 */
class SentencePieceNormalizerTest {
    private static SentencePieceCharsMap nmtNfkc;
    private static SentencePieceNormalizer normalizer;

    /** The nmt_nfkc rules that are not NFKC: removed control characters, and characters that become a space. */
    private static final String REMOVED =
            codePoints(0x01, 0x08) + codePoints(0x0B, 0x0B) + codePoints(0x0E, 0x1F) + "\u007F\u008F\u009F";

    private static final String TO_SPACE = "\t\n\f\r\u1680\u200B\u200C\u200E\u200F\u2028\u2029\u2581\uFEFF\uFFFD";

    @BeforeAll
    static void load() {
        SentencePieceModel m = SentencePieceModel.read(Golden.path("flux-tiny-dev", "tokenizer_2", "spiece.model"));
        nmtNfkc = SentencePieceCharsMap.parse(m.normalizer.precompiledCharsmap, "golden");
        normalizer = new SentencePieceNormalizer(nmtNfkc, null, true, true, true, false);
    }

    private static String codePoints(int from, int to) {
        StringBuilder b = new StringBuilder();
        for (int c = from; c <= to; c++) {
            b.appendCodePoint(c);
        }
        return b.toString();
    }

    @Test
    void everyCharsmapRuleIsNfkcExceptTheNmtControlAndSpaceRules() {
        Map<String, String> notNfkc = new TreeMap<>();
        int[] rules = {0};
        nmtNfkc.forEachRule((k, v) -> {
            rules[0]++;
            String key = new String(k, StandardCharsets.UTF_8);
            String value = new String(v, StandardCharsets.UTF_8);
            if (!value.equals(Normalizer.normalize(key, Normalizer.Form.NFKC))) {
                notNfkc.put(key, value);
            }
        });
        Map<String, String> expected = new TreeMap<>();
        REMOVED.codePoints().forEach(c -> expected.put(Character.toString(c), ""));
        TO_SPACE.codePoints().forEach(c -> expected.put(Character.toString(c), " "));
        assertEquals(expected, notNfkc);
        assertTrue(rules[0] > 200_000, "rules: " + rules[0]);
    }

    /** NFKC, the nmt rules above, then SentencePiece's whitespace handling: what normalize must give. */
    private static String reference(String text) {
        StringBuilder b = new StringBuilder();
        for (int c : text.codePoints().toArray()) {
            String s = Character.toString(c);
            b.append(REMOVED.contains(s) ? "" : TO_SPACE.contains(s) ? " " : s);
        }
        String nfkc = Normalizer.normalize(b.toString(), Normalizer.Form.NFKC);
        String collapsed = nfkc.replaceAll(" +", " ").replaceAll("^ | $", "");
        return collapsed.isEmpty() ? "" : "▁" + collapsed.replace(' ', '▁');
    }

    @Test
    void whatUsersTypeNormalizesAsNfkc() {
        Map<String, String> cases = new TreeMap<>();
        cases.put("no\u00A0break", "▁no▁break"); // non-breaking space -> space
        cases.put("zero\u200Bwidth", "▁zero▁width"); // zero-width space -> space (nmt rule)
        cases.put("zero \u200B width", "▁zero▁width"); // ... and then collapsed with its neighbours
        cases.put("\u200B\u200B lead", "▁lead");
        cases.put("ＡＢＣ ｆｕｌｌ１２３", "▁ABC▁full123"); // full-width letters and digits
        cases.put("ﬁsh ﬂow ﬀ", "▁fish▁flow▁ff"); // ligatures
        cases.put("cafe\u0301", "▁café"); // combining acute composes
        cases.put("café", "▁café");
        cases.put("tab\there\nnew\r\nline", "▁tab▁here▁new▁line"); // tabs and newlines are spaces
        cases.put("ctrl\u0001\u007Fchars", "▁ctrlchars"); // control characters vanish
        cases.put("\u0001 lead", "▁lead");
        cases.put("ideographic\u3000space", "▁ideographic▁space");
        cases.put("①㎏½ Å", "▁1kg1⁄2▁Å"); // compatibility forms
        cases.put("bom\uFEFF", "▁bom");
        cases.put("▁literal", "▁literal"); // U+2581 in the text is a space
        cases.put("  ", "");
        cases.forEach((in, out) -> {
            assertEquals(out, normalizer.normalize(in), () -> "normalize " + escape(in));
            assertEquals(out, reference(in), () -> "reference for " + escape(in));
        });
    }

    @Test
    void combiningSequencesAgreeWithPrecomposedLetters() {
        T5Tokenizer tok = T5Tokenizer.load(Golden.path("flux-tiny-dev", "tokenizer_2", "spiece.model"));
        for (String[] pair : new String[][] {{"e\u0301", "é"}, {"n\u0303", "ñ"}, {"A\u030A", "Å"}, {"c\u0327", "ç"}}) {
            assertEquals(normalizer.normalize(pair[1]), normalizer.normalize(pair[0]));
            assertEquals(tok.pieces("caf" + pair[1]), tok.pieces("caf" + pair[0]));
            assertArrayEquals(tok.ids(pair[1] + "s"), tok.ids(pair[0] + "s"));
        }
    }

    @Test
    void promptsNormalizeAsTheNfkcReference() throws IOException {
        List<String> texts = new ArrayList<>();
        JsonNode golden = new ObjectMapper()
                .readTree(Golden.path("cases", "tokenizer-golden.json").toFile());
        golden.get("prompts").forEach(p -> texts.add(p.asText()));
        List<String> lines =
                Files.readAllLines(Golden.dir().resolveSibling("prompts").resolve("PartiPrompts.tsv"));
        for (String line : lines.subList(1, lines.size())) {
            texts.add(line.split("\t", -1)[0]);
        }
        List<String> differ = texts.stream()
                .filter(t -> !reference(t).equals(normalizer.normalize(t)))
                .collect(Collectors.toList());
        assertEquals(List.of(), differ);
        assertTrue(texts.size() > 1600);
    }

    private static String bytes(SentencePieceNormalizer n, int... input) {
        byte[] in = new byte[input.length];
        for (int i = 0; i < input.length; i++) {
            in[i] = (byte) input[i];
        }
        return new String(n.normalize(in), StandardCharsets.UTF_8);
    }

    @Test
    void malformedUtf8BecomesReplacementCharactersOneBytePerCharacter() {
        // a malformed byte becomes U+FFFD, which is not mapped again (a U+FFFD in the input would become a space)
        assertEquals("▁a\uFFFDb", bytes(normalizer, 'a', 0xFF, 'b'));
        assertEquals("▁a▁b", bytes(normalizer, 'a', 0xEF, 0xBF, 0xBD, 'b'));
        // overlong '/', a lone continuation byte, a cut 3-byte sequence, an encoded surrogate
        assertEquals("▁\uFFFD\uFFFD", bytes(normalizer, 0xC0, 0xAF));
        assertEquals("▁x\uFFFD", bytes(normalizer, 'x', 0x80));
        assertEquals("▁\uFFFD\uFFFD", bytes(normalizer, 0xE2, 0x96));
        assertEquals("▁\uFFFD\uFFFD\uFFFD", bytes(normalizer, 0xED, 0xA0, 0x80));
        assertEquals("▁\uFFFD\uFFFD\uFFFD\uFFFD", bytes(normalizer, 0xF4, 0x90, 0x80, 0x80));
        assertEquals("▁😀", bytes(normalizer, 0xF0, 0x9F, 0x98, 0x80));
    }

    @Test
    void whitespaceOptionsInNormalizerCcOrder() {
        SentencePieceNormalizer plain = new SentencePieceNormalizer(null, null, true, true, true, false);
        assertEquals("▁a▁b", plain.normalize("  a   b  "));
        assertEquals("▁a\tb", plain.normalize("a\tb")); // without a charsmap a tab is just a character
        assertEquals("", plain.normalize("   "));

        SentencePieceNormalizer keepSpaces = new SentencePieceNormalizer(null, null, true, false, true, false);
        assertEquals("▁▁▁a▁▁b▁", keepSpaces.normalize("  a  b "));

        SentencePieceNormalizer noPrefix = new SentencePieceNormalizer(null, null, false, true, true, false);
        assertEquals("a▁b", noPrefix.normalize(" a  b"));

        SentencePieceNormalizer noEscape = new SentencePieceNormalizer(null, null, true, true, false, false);
        assertEquals(" a b", noEscape.normalize("a  b "));

        SentencePieceNormalizer suffix = new SentencePieceNormalizer(null, null, true, true, true, true);
        assertEquals("a▁b▁", suffix.normalize(" a b "));
    }

    @Test
    void userDefinedSymbolsAreNotNormalized() {
        SentencePieceTrie user = new SentencePieceTrie();
        user.put("ＡＢ".getBytes(StandardCharsets.UTF_8), 5);
        SentencePieceNormalizer n = new SentencePieceNormalizer(nmtNfkc, user, true, true, true, false);
        assertEquals("▁ＡＢＡＢ", n.normalize("ＡＢＡＢ"));
        assertEquals("▁AＡＢ", n.normalize("ＡＡＢ"));
        assertEquals("▁ＡＢ▁AC", n.normalize("ＡＢ ＡＣ"));
    }

    private static String escape(String s) {
        return s.codePoints()
                .mapToObj(c -> c < 0x20 || c > 0x7E ? String.format("U+%04X", c) : Character.toString(c))
                .collect(Collectors.joining(" "));
    }
}
