package ai.fluxbatch.model.tokenizer;

import static org.junit.jupiter.api.Assertions.assertEquals;

import org.junit.jupiter.api.Test;

/** The clean-up before pre-tokenization: ftfy's fixes, html.unescape twice, whitespace, lower case. */
class ClipTextCleanerTest {
    @Test
    void whitespaceRunsBecomeOneSpace() {
        assertEquals(
                "multiple spaces and tabs and newlines",
                ClipTextCleaner.clean("   multiple   spaces\tand\ttabs\nand newlines  "));
        assertEquals("a b c d e", ClipTextCleaner.clean("a\u00a0b\u2009c\u3000d\u1680e"));
        assertEquals("a\u200bb", ClipTextCleaner.clean("a\u200bB"), "U+200B is not whitespace");
    }

    @Test
    void ftfyFixes() {
        assertEquals(
                "loud noises",
                ClipTextCleaner.clean("\uff2c\uff2f\uff35\uff24\u3000\uff2e\uff2f\uff29\uff33\uff25\uff33"));
        assertEquals("flubberific", ClipTextCleaner.clean("\ufb02ubberi\ufb01c"));
        assertEquals("ijsselmeer dz", ClipTextCleaner.clean("\u0132sselmeer \u01f1"));
        assertEquals("\"quoted\" 'single'", ClipTextCleaner.clean("\u201cquoted\u201d \u2018single\u2019"));
        assertEquals("\u00e9t\u00e9", ClipTextCleaner.clean("E\u0301TE\u0301"));
        assertEquals("ab", ClipTextCleaner.clean("a\u0001\u001f\u206a\ufeffb"));
        assertEquals("a\tb", ClipTextCleaner.fixText("a\tb"), "tab is kept by ftfy (and is whitespace later)");
        assertEquals("\u2026 \u20ac", ClipTextCleaner.fixText("\u0085 &#128;"));
        assertEquals(
                "\" \u2026", ClipTextCleaner.fixText("\u0093 \u0085"), "C1 controls as Windows-1252, then uncurled");
        assertEquals("a\ufffdb", ClipTextCleaner.clean("a\ud800b"), "a lone surrogate");
    }

    @Test
    void htmlEntities() {
        assertEquals("fish & chips <3", ClipTextCleaner.clean("fish &amp; chips &lt;3"));
        assertEquals("fish & chips", ClipTextCleaner.clean("fish &amp;amp; chips"), "html.unescape twice");
        assertEquals("it's", ClipTextCleaner.clean("it&apos;s"));
        assertEquals(
                "\u00e9clair \u00e9", ClipTextCleaner.clean("&EACUTE;clair &eacute;"), "ftfy's upper-case entities");
        assertEquals("a & b ¬it;", ClipTextCleaner.clean("a &amp b &notit;"), "Python's legacy names without ';'");
        assertEquals("a \ufffd b", ClipTextCleaner.clean("a &#x110000; b"));
        assertEquals("ab", ClipTextCleaner.clean("a&#7;b"));
        assertEquals("a", ClipTextCleaner.clean("&#65"));
        assertEquals("&unknown;", ClipTextCleaner.clean("&unknown;"));
    }

    @Test
    void literalLessThanTurnsFtfyUnescapingOff() {
        // with a literal '<', ftfy leaves entities; html.unescape twice still decodes two levels
        assertEquals("<b> &", ClipTextCleaner.clean("<b> &amp;amp;"));
        assertEquals("<&amp;", ClipTextCleaner.clean("<&amp;amp;amp;"));
        assertEquals("a<b &amp;", ClipTextCleaner.clean("a<b\n&amp;amp;amp;"), "off for later lines too");
        assertEquals("ab &", ClipTextCleaner.clean("ab\n&amp;amp;amp;"));
    }
}
