package ai.fluxbatch.jobs.generate;

import ai.fluxbatch.model.Sha256;
import java.nio.charset.StandardCharsets;
import java.util.HexFormat;

/**
 * One path segment (a folder or file name) from an arbitrary string, such as a prompt or a category read from the
 * data: plain text (letters, digits, spaces, commas, periods, quotes, hyphens...) stays as it is, so benchmark
 * evaluators that read the prompt back from the file name still can; everything unsafe is percent-escaped as its
 * UTF-8 bytes ({@code %2F} for {@code /}): {@code %} itself, the separators {@code / \ :}, the characters Windows
 * refuses in names ({@code < > " | ? *}), control, format (bidi, zero-width) and line separator characters, lone
 * surrogates, and a leading {@code .} or {@code _} (no {@code .}/{@code ..}, no names that Hadoop and Spark treat as
 * hidden, no clash with the output's own {@code _tmp}). The empty string is {@code %}. A name longer than
 * {@link #MAX_BYTES} UTF-8 bytes once escaped is cut and ends in {@code %~} and 16 hex digits of the SHA-256 of the
 * whole escaped name. The mapping is stable and one-to-one: every {@code %} of a result starts an escape, so no two
 * inputs share a name (cut names: up to a 64-bit hash).
 */
public final class SafeName {
    /** Longest name in UTF-8 bytes: room below the usual 255-byte limit for a suffix such as {@code _000000.png}. */
    public static final int MAX_BYTES = 200;

    private static final int HASH_HEX = 16;

    private SafeName() {}

    public static String of(String s) {
        return of(s, MAX_BYTES);
    }

    static String of(String s, int maxBytes) {
        if (s.isEmpty()) {
            return "%";
        }
        StringBuilder b = new StringBuilder(s.length());
        int bytes = 0;
        int cut = -1; // length of the longest prefix that leaves room for the hash suffix
        for (int i = 0; i < s.length(); ) {
            int cp = s.codePointAt(i);
            String part = unsafe(cp, i == 0) ? escape(cp) : new String(Character.toChars(cp));
            int partBytes = part.getBytes(StandardCharsets.UTF_8).length;
            if (cut < 0 && bytes + partBytes > maxBytes - 2 - HASH_HEX) {
                cut = b.length();
            }
            b.append(part);
            bytes += partBytes;
            i += Character.charCount(cp);
        }
        if (bytes <= maxBytes) {
            return b.toString();
        }
        byte[] digest = Sha256.digest().digest(b.toString().getBytes(StandardCharsets.UTF_8));
        return b.substring(0, cut) + "%~" + HexFormat.of().withUpperCase().formatHex(digest, 0, HASH_HEX / 2);
    }

    private static boolean unsafe(int cp, boolean first) {
        if (first && (cp == '.' || cp == '_')) {
            return true;
        }
        return switch (cp) {
            case '%', '/', '\\', ':', '<', '>', '"', '|', '?', '*' -> true;
            default ->
                Character.isISOControl(cp)
                        || switch (Character.getType(cp)) {
                            case Character.FORMAT,
                                    Character.LINE_SEPARATOR,
                                    Character.PARAGRAPH_SEPARATOR,
                                    Character.SURROGATE -> true;
                            default -> false;
                        };
        };
    }

    /** {@code %XX} per UTF-8 byte of {@code cp}; a lone surrogate as its 3-byte form, so every input has one. */
    private static String escape(int cp) {
        int[] utf8;
        if (cp < 0x80) {
            utf8 = new int[] {cp};
        } else if (cp < 0x800) {
            utf8 = new int[] {0xC0 | cp >> 6, 0x80 | cp & 0x3F};
        } else if (cp < 0x10000) {
            utf8 = new int[] {0xE0 | cp >> 12, 0x80 | cp >> 6 & 0x3F, 0x80 | cp & 0x3F};
        } else {
            utf8 = new int[] {0xF0 | cp >> 18, 0x80 | cp >> 12 & 0x3F, 0x80 | cp >> 6 & 0x3F, 0x80 | cp & 0x3F};
        }
        StringBuilder b = new StringBuilder();
        for (int u : utf8) {
            b.append('%').append(HexFormat.of().withUpperCase().toHexDigits((byte) u));
        }
        return b.toString();
    }
}
