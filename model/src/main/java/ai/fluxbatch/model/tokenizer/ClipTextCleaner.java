package ai.fluxbatch.model.tokenizer;

import java.math.BigInteger;
import java.nio.ByteBuffer;
import java.nio.charset.Charset;
import java.text.Normalizer;
import java.util.HashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.apache.commons.text.translate.EntityArrays;

/**
 * The text clean-up of the original CLIP tokenizer (openai/CLIP simple_tokenizer.py):
 * {@code whitespace_clean(basic_clean(text)).lower()}, where basic_clean is ftfy.fix_text, then
 * html.unescape twice, then strip.
 *
 * <p>Written by hand because no Java library does ftfy's fixes; this reproduces ftfy's default
 * per-character fixes (HTML entities, C1 controls, Latin ligatures, character width, curly quotes, line
 * breaks, surrogates, terminal escapes, control characters, NFC), applied line by line until stable.
 * ftfy's mojibake repair (fix_encoding: re-decoding text that was decoded with the wrong codec) is not
 * reproduced.
 */
final class ClipTextCleaner {
    private ClipTextCleaner() {}

    /** Python regex {@code \s} in Unicode mode is the White_Space property, as is Java's with UNICODE_CHARACTER_CLASS. */
    private static final Pattern WHITESPACE_RUN = Pattern.compile("\\s+", Pattern.UNICODE_CHARACTER_CLASS);

    /** ftfy's HTML_ENTITY_RE: the entities ftfy itself decodes (only with a closing semicolon). */
    private static final Pattern FTFY_ENTITY = Pattern.compile("&#?[0-9A-Za-z]{1,24};");

    /** The references Python's html.unescape looks at (its charref regex). */
    private static final Pattern PY_CHARREF =
            Pattern.compile("&(#[0-9]+;?|#[xX][0-9a-fA-F]+;?|[^\\t\\n\\f <&#;]{1,32};?)");

    /** ftfy's ANSI_RE; Python's {@code \d} on str is any Unicode decimal digit. */
    private static final Pattern ANSI_ESCAPE = Pattern.compile("\u001b\\[([\\p{Nd};]*)([a-zA-Z])");

    /** Windows-1252 decoding of bytes 0x80..0x9F, "sloppy": undefined bytes decode to the same code point. */
    private static final char[] CP1252_C1 = new char[32];

    /** ftfy's LIGATURES: Latin ligatures and legacy digraphs, broken into their letters. */
    private static final Map<Character, String> LIGATURES = new HashMap<>();

    /** ftfy's WIDTH_MAP: U+3000 and every U+FF01..U+FFEF whose NFKC form differs. */
    private static final Map<Character, String> WIDTH = new HashMap<>();

    /**
     * Named HTML entities, "&amp;name;" to text: commons-text's HTML 4 tables plus &amp;apos;. Python's
     * html.unescape knows the larger HTML5 table; its other names are left as they are.
     */
    private static final Map<String, String> ENTITIES = new HashMap<>();

    /** The names Python's html.unescape also decodes without a semicolon: the Latin-1 ones and a few more. */
    private static final Map<String, String> LEGACY_ENTITIES = new HashMap<>();

    static {
        for (Map<CharSequence, CharSequence> table : List.of(
                EntityArrays.BASIC_UNESCAPE,
                EntityArrays.ISO8859_1_UNESCAPE,
                EntityArrays.HTML40_EXTENDED_UNESCAPE,
                EntityArrays.APOS_UNESCAPE)) {
            table.forEach((k, v) -> ENTITIES.put(k.toString(), v.toString()));
        }
        for (Map<CharSequence, CharSequence> table :
                List.of(EntityArrays.BASIC_UNESCAPE, EntityArrays.ISO8859_1_UNESCAPE)) {
            table.forEach((k, v) -> {
                String name = k.toString().substring(1, k.length() - 1);
                if (!name.equals("apos")) {
                    LEGACY_ENTITIES.put(name, v.toString());
                }
            });
        }
        for (String name : List.of("AMP", "LT", "GT", "QUOT", "COPY", "REG")) {
            LEGACY_ENTITIES.put(name, LEGACY_ENTITIES.get(name.toLowerCase(Locale.ROOT)));
        }
        Charset cp1252 = Charset.forName("windows-1252");
        for (int b = 0x80; b <= 0x9F; b++) {
            String s = cp1252.decode(ByteBuffer.wrap(new byte[] {(byte) b})).toString();
            CP1252_C1[b - 0x80] = s.length() == 1 && s.charAt(0) != '\uFFFD' ? s.charAt(0) : (char) b;
        }
        String[][] ligatures = {
            {"\u0132", "IJ"},
            {"\u0133", "ij"},
            {"\u0149", "\u02BCn"},
            {"\u01F1", "DZ"},
            {"\u01F2", "Dz"},
            {"\u01F3", "dz"},
            {"\u01C4", "D\u017D"},
            {"\u01C5", "D\u017E"},
            {"\u01C6", "d\u017E"},
            {"\u01C7", "LJ"},
            {"\u01C8", "Lj"},
            {"\u01C9", "lj"},
            {"\u01CA", "NJ"},
            {"\u01CB", "Nj"},
            {"\u01CC", "nj"},
            {"\uFB00", "ff"},
            {"\uFB01", "fi"},
            {"\uFB02", "fl"},
            {"\uFB03", "ffi"},
            {"\uFB04", "ffl"},
            {"\uFB05", "\u017Ft"},
            {"\uFB06", "st"},
        };
        for (String[] l : ligatures) {
            LIGATURES.put(l[0].charAt(0), l[1]);
        }
        WIDTH.put('\u3000', " ");
        for (char c = '\uFF01'; c < '\uFFF0'; c++) {
            String s = String.valueOf(c);
            String alt = Normalizer.normalize(s, Normalizer.Form.NFKC);
            if (!alt.equals(s)) {
                WIDTH.put(c, alt);
            }
        }
    }

    /** The full clean-up: what the original tokenizer runs before its pre-tokenization regex. */
    static String clean(String text) {
        String t = fixText(text);
        t = htmlUnescape(htmlUnescape(t));
        return whitespaceClean(t).toLowerCase(Locale.ROOT);
    }

    /** {@code re.sub(r'\s+', ' ', text).strip()} with Unicode whitespace. */
    static String whitespaceClean(String text) {
        String t = WHITESPACE_RUN.matcher(text).replaceAll(" ");
        int start = 0;
        int end = t.length();
        while (start < end && t.charAt(start) == ' ') {
            start++;
        }
        while (end > start && t.charAt(end - 1) == ' ') {
            end--;
        }
        return t.substring(start, end);
    }

    // ---------------------------------------------------------------- ftfy.fix_text (default configuration)

    /** ftfy.fix_text: each line (up to and including its '\n') fixed on its own, until nothing changes. */
    static String fixText(String text) {
        StringBuilder out = new StringBuilder(text.length());
        boolean unescape = true; // unescape_html="auto": off from the first line holding a literal '<' on
        int pos = 0;
        while (pos < text.length()) {
            int nl = text.indexOf('\n', pos);
            int end = nl < 0 ? text.length() : nl + 1;
            String segment = text.substring(pos, end);
            if (unescape && segment.indexOf('<') >= 0) {
                unescape = false;
            }
            out.append(fixSegment(segment, unescape));
            pos = end;
        }
        return out.toString();
    }

    private static String fixSegment(String text, boolean unescape) {
        while (true) {
            String orig = text;
            if (unescape) {
                text = ftfyUnescapeHtml(text);
            }
            // ftfy's mojibake repair (fix_encoding, re-decoding wrongly decoded text) is not reproduced
            text = fixC1Controls(text);
            text = mapChars(text, LIGATURES);
            text = mapChars(text, WIDTH);
            text = uncurlQuotes(text);
            text = fixLineBreaks(text);
            text = fixSurrogates(text);
            text = ANSI_ESCAPE.matcher(text).replaceAll("");
            text = removeControlChars(text);
            text = Normalizer.normalize(text, Normalizer.Form.NFC);
            if (text.equals(orig)) {
                return text;
            }
        }
    }

    /**
     * ftfy's unescape_html: named entities with a semicolon (also an all-lowercase name written in upper
     * case, giving the upper-case character, as "&EACUTE;" gives "É"), and numeric references that decode
     * to something without a semicolon.
     */
    static String ftfyUnescapeHtml(String text) {
        if (text.indexOf('&') < 0) {
            return text;
        }
        Matcher m = FTFY_ENTITY.matcher(text);
        StringBuilder sb = new StringBuilder(text.length());
        while (m.find()) {
            String entity = m.group();
            String rep;
            if (entity.startsWith("&#")) {
                String u = htmlUnescape(entity);
                rep = u.indexOf(';') >= 0 ? entity : u;
            } else {
                rep = ENTITIES.get(entity);
                if (rep == null) {
                    String lower = entity.toLowerCase(Locale.ROOT);
                    String l = ENTITIES.get(lower);
                    rep = l != null && entity.equals(entity.toUpperCase(Locale.ROOT))
                            ? l.toUpperCase(Locale.ROOT)
                            : entity;
                }
            }
            m.appendReplacement(sb, Matcher.quoteReplacement(rep));
        }
        m.appendTail(sb);
        return sb.toString();
    }

    /**
     * Python's html.unescape: numeric references by its rules (Windows-1252 for 0x80..0x9F, U+FFFD for 0,
     * surrogates and past U+10FFFF, nothing for other control and non-characters, semicolon optional);
     * named entities from commons-text's HTML 4 tables (see {@link #ENTITIES}), the legacy ones also without
     * a semicolon, as Python does.
     */
    static String htmlUnescape(String text) {
        if (text.indexOf('&') < 0) {
            return text;
        }
        Matcher m = PY_CHARREF.matcher(text);
        StringBuilder sb = new StringBuilder(text.length());
        while (m.find()) {
            String ref = m.group(1);
            String rep;
            rep = ref.charAt(0) == '#' ? numericReference(ref) : namedReference(ref);
            m.appendReplacement(sb, Matcher.quoteReplacement(rep));
        }
        m.appendTail(sb);
        return sb.toString();
    }

    /** Python's rule: the whole name if known, else the longest known legacy name it starts with, else as it was. */
    private static String namedReference(String ref) {
        String exact = ref.endsWith(";") ? ENTITIES.get("&" + ref) : LEGACY_ENTITIES.get(ref);
        if (exact != null) {
            return exact;
        }
        for (int x = ref.length() - 1; x > 1; x--) {
            String legacy = LEGACY_ENTITIES.get(ref.substring(0, x));
            if (legacy != null) {
                return legacy + ref.substring(x);
            }
        }
        return "&" + ref;
    }

    private static String numericReference(String ref) {
        String digits = ref.endsWith(";") ? ref.substring(0, ref.length() - 1) : ref;
        BigInteger big = digits.charAt(1) == 'x' || digits.charAt(1) == 'X'
                ? new BigInteger(digits.substring(2), 16)
                : new BigInteger(digits.substring(1));
        if (big.bitLength() > 31) {
            return "\uFFFD";
        }
        int n = big.intValue();
        if (n == 0) {
            return "\uFFFD";
        }
        if (n == 0x0D) {
            return "\r";
        }
        if (n >= 0x80 && n <= 0x9F) {
            return String.valueOf(CP1252_C1[n - 0x80]);
        }
        if ((n >= 0xD800 && n <= 0xDFFF) || n > 0x10FFFF) {
            return "\uFFFD";
        }
        if ((n >= 0x01 && n <= 0x08)
                || n == 0x0B
                || (n >= 0x0E && n <= 0x1F)
                || n == 0x7F
                || (n >= 0xFDD0 && n <= 0xFDEF)
                || (n & 0xFFFE) == 0xFFFE) {
            return "";
        }
        return new String(Character.toChars(n));
    }

    /** ftfy's fix_c1_controls: a C1 control character is read as the Windows-1252 byte it would be. */
    private static String fixC1Controls(String text) {
        StringBuilder sb = null;
        for (int i = 0; i < text.length(); i++) {
            char c = text.charAt(i);
            if (c >= 0x80 && c <= 0x9F) {
                if (sb == null) {
                    sb = new StringBuilder(text);
                }
                sb.setCharAt(i, CP1252_C1[c - 0x80]);
            }
        }
        return sb == null ? text : sb.toString();
    }

    private static String mapChars(String text, Map<Character, String> map) {
        StringBuilder sb = null;
        for (int i = 0; i < text.length(); i++) {
            char c = text.charAt(i);
            String rep = map.get(c);
            if (rep != null && sb == null) {
                sb = new StringBuilder(text.length() + 8);
                sb.append(text, 0, i);
            }
            if (sb != null) {
                if (rep != null) {
                    sb.append(rep);
                } else {
                    sb.append(c);
                }
            }
        }
        return sb == null ? text : sb.toString();
    }

    /** ftfy's uncurl_quotes: U+02BC and U+2018..U+201B become ', U+201C..U+201F become ". */
    private static String uncurlQuotes(String text) {
        StringBuilder sb = null;
        for (int i = 0; i < text.length(); i++) {
            char c = text.charAt(i);
            char rep =
                    c == '\u02BC' || (c >= '\u2018' && c <= '\u201B') ? '\'' : c >= '\u201C' && c <= '\u201F' ? '"' : c;
            if (rep != c) {
                if (sb == null) {
                    sb = new StringBuilder(text);
                }
                sb.setCharAt(i, rep);
            }
        }
        return sb == null ? text : sb.toString();
    }

    private static String fixLineBreaks(String text) {
        return text.replace("\r\n", "\n")
                .replace('\r', '\n')
                .replace('\u2028', '\n')
                .replace('\u2029', '\n')
                .replace('\u0085', '\n');
    }

    /** ftfy's fix_surrogates: a lone surrogate (a valid pair is one code point in Java) becomes U+FFFD. */
    private static String fixSurrogates(String text) {
        StringBuilder sb = null;
        for (int i = 0; i < text.length(); i++) {
            char c = text.charAt(i);
            if (Character.isHighSurrogate(c) && i + 1 < text.length() && Character.isLowSurrogate(text.charAt(i + 1))) {
                i++;
                continue;
            }
            if (Character.isSurrogate(c)) {
                if (sb == null) {
                    sb = new StringBuilder(text);
                }
                sb.setCharAt(i, '\uFFFD');
            }
        }
        return sb == null ? text : sb.toString();
    }

    /** ftfy's remove_control_chars: C0 controls but tab, LF, FF and CR; DEL; U+206A..U+206F; BOM; U+FFF9..U+FFFC. */
    private static boolean isRemovedControl(char c) {
        return c <= 0x08
                || c == 0x0B
                || (c >= 0x0E && c <= 0x1F)
                || c == 0x7F
                || (c >= '\u206A' && c <= '\u206F')
                || c == '\uFEFF'
                || (c >= '\uFFF9' && c <= '\uFFFC');
    }

    private static String removeControlChars(String text) {
        StringBuilder sb = null;
        for (int i = 0; i < text.length(); i++) {
            char c = text.charAt(i);
            boolean drop = isRemovedControl(c);
            if (drop && sb == null) {
                sb = new StringBuilder(text.length());
                sb.append(text, 0, i);
            }
            if (sb != null && !drop) {
                sb.append(c);
            }
        }
        return sb == null ? text : sb.toString();
    }
}
