package ai.fluxbatch.model.tokenizer;

import java.nio.charset.StandardCharsets;
import java.util.Arrays;

/**
 * SentencePiece's normalizer (normalizer.cc {@code Normalizer::Normalize}), over UTF-8 bytes and in its order: at
 * each position the longest user-defined symbol is kept as it is, else the charsmap's longest rule replaces its
 * key, else one UTF-8 character is copied (a malformed byte becomes U+FFFD); leading whitespace is dropped, a run of
 * spaces becomes one, trailing whitespace is dropped (remove_extra_whitespaces), "▁" is put in front
 * (add_dummy_prefix; behind with treat_whitespace_as_suffix) and every space becomes "▁" (escape_whitespaces).
 */
final class SentencePieceNormalizer {
    /** U+2581 LOWER ONE EIGHTH BLOCK, SentencePiece's whitespace symbol. */
    static final String SPACE_SYMBOL = "\u2581";

    private static final byte[] SPACE_SYMBOL_UTF8 = SPACE_SYMBOL.getBytes(StandardCharsets.UTF_8);
    private static final byte[] REPLACEMENT_UTF8 = {(byte) 0xEF, (byte) 0xBF, (byte) 0xBD};
    private static final byte[] SPACE_UTF8 = {' '};

    private final SentencePieceCharsMap charsMap;
    private final SentencePieceTrie userDefined;
    private final boolean addDummyPrefix;
    private final boolean removeExtraWhitespaces;
    private final boolean escapeWhitespaces;
    private final boolean treatWhitespaceAsSuffix;

    /**
     * @param charsMap    the precompiled charsmap, or null for none (identity)
     * @param userDefined the USER_DEFINED pieces, which normalization leaves alone, or null for none
     */
    SentencePieceNormalizer(
            SentencePieceCharsMap charsMap,
            SentencePieceTrie userDefined,
            boolean addDummyPrefix,
            boolean removeExtraWhitespaces,
            boolean escapeWhitespaces,
            boolean treatWhitespaceAsSuffix) {
        this.charsMap = charsMap;
        this.userDefined = userDefined == null || userDefined.isEmpty() ? null : userDefined;
        this.addDummyPrefix = addDummyPrefix;
        this.removeExtraWhitespaces = removeExtraWhitespaces;
        this.escapeWhitespaces = escapeWhitespaces;
        this.treatWhitespaceAsSuffix = treatWhitespaceAsSuffix;
    }

    /** The result of {@link #normalizePrefix}: {@code src[off, off + len)} replaces {@code consumed} input bytes. */
    private static final class Prefix {
        byte[] src;
        int off;
        int len;
        int consumed;

        boolean isSingleSpace() {
            return len == 1 && src[off] == ' ';
        }
    }

    String normalize(String text) {
        return new String(normalize(Utf8.encode(text)), StandardCharsets.UTF_8);
    }

    /** Normalizes UTF-8 bytes (which may be malformed) into UTF-8 bytes. */
    byte[] normalize(byte[] input) {
        int end = input.length;
        if (end == 0) {
            return new byte[0];
        }
        Prefix p = new Prefix();
        int pos = 0;
        if (removeExtraWhitespaces) {
            while (pos < end) {
                normalizePrefix(input, pos, end, p);
                if (!p.isSingleSpace()) {
                    break;
                }
                pos += p.consumed;
            }
        }
        if (pos == end) {
            return new byte[0];
        }
        byte[] out = new byte[Math.max(16, (end - pos) * 3 + 3)];
        int n = 0;
        if (!treatWhitespaceAsSuffix && addDummyPrefix) {
            n = addWhitespace(out, n);
        }
        boolean isPrevSpace = removeExtraWhitespaces;
        while (pos < end) {
            normalizePrefix(input, pos, end, p);
            int s = p.off;
            int e = p.off + p.len;
            byte[] src = p.src;
            while (isPrevSpace && s < e && src[s] == ' ') {
                s++;
            }
            if (s < e) {
                if (out.length - n < (e - s) * 3) {
                    out = Arrays.copyOf(out, Math.max(out.length * 2, n + (e - s) * 3 + 3));
                }
                for (int k = s; k < e; k++) {
                    if (escapeWhitespaces && src[k] == ' ') {
                        n = put(out, n, SPACE_SYMBOL_UTF8);
                    } else {
                        out[n++] = src[k];
                    }
                }
                isPrevSpace = src[e - 1] == ' ';
            }
            pos += p.consumed;
            if (!removeExtraWhitespaces) {
                isPrevSpace = false;
            }
        }
        if (removeExtraWhitespaces) {
            byte[] space = escapeWhitespaces ? SPACE_SYMBOL_UTF8 : SPACE_UTF8;
            while (endsWith(out, n, space)) {
                n -= space.length;
            }
        }
        if (treatWhitespaceAsSuffix && addDummyPrefix) {
            if (out.length - n < 3) {
                out = Arrays.copyOf(out, n + 3);
            }
            n = addWhitespace(out, n);
        }
        return Arrays.copyOf(out, n);
    }

    private int addWhitespace(byte[] out, int n) {
        if (escapeWhitespaces) {
            return put(out, n, SPACE_SYMBOL_UTF8);
        }
        out[n] = ' ';
        return n + 1;
    }

    private static int put(byte[] out, int n, byte[] bytes) {
        System.arraycopy(bytes, 0, out, n, bytes.length);
        return n + bytes.length;
    }

    private static boolean endsWith(byte[] out, int n, byte[] suffix) {
        if (n < suffix.length) {
            return false;
        }
        for (int i = 0; i < suffix.length; i++) {
            if (out[n - suffix.length + i] != suffix[i]) {
                return false;
            }
        }
        return true;
    }

    /** normalizer.cc {@code NormalizePrefix}: what the input at {@code pos} becomes and how many bytes that uses. */
    private void normalizePrefix(byte[] in, int pos, int end, Prefix p) {
        if (userDefined != null) {
            int len = userDefined.longestPrefix(in, pos, end);
            if (len > 0) {
                p.src = in;
                p.off = pos;
                p.len = len;
                p.consumed = len;
                return;
            }
        }
        if (charsMap != null) {
            long match = charsMap.longestMatch(in, pos, end);
            if (match >= 0) {
                int value = (int) match;
                p.src = charsMap.pool();
                p.off = value;
                p.len = charsMap.replacementLength(value);
                p.consumed = (int) (match >>> 32);
                return;
            }
        }
        int len = Utf8.validCharLength(in, pos, end);
        if (len == 0) {
            p.src = REPLACEMENT_UTF8;
            p.off = 0;
            p.len = 3;
            p.consumed = 1;
        } else {
            p.src = in;
            p.off = pos;
            p.len = len;
            p.consumed = len;
        }
    }

    /** UTF-8 as SentencePiece reads it (util.h / util.cc). */
    static final class Utf8 {
        private Utf8() {}

        /**
         * Length of the well-formed character at {@code pos} (util.cc DecodeUTF8 with IsValidDecodeUTF8), or 0 when
         * the byte there starts no well-formed character: overlong forms, surrogates and values past U+10FFFF are
         * malformed.
         */
        static int validCharLength(byte[] s, int pos, int end) {
            int len = end - pos;
            int b0 = s[pos] & 0xFF;
            if (b0 < 0x80) {
                return 1;
            }
            if (len >= 2 && (b0 & 0xE0) == 0xC0) {
                int cp = (b0 & 0x1F) << 6 | (s[pos + 1] & 0x3F);
                return isTrail(s[pos + 1]) && cp >= 0x80 ? 2 : 0;
            }
            if (len >= 3 && (b0 & 0xF0) == 0xE0) {
                int cp = (b0 & 0x0F) << 12 | (s[pos + 1] & 0x3F) << 6 | (s[pos + 2] & 0x3F);
                return isTrail(s[pos + 1]) && isTrail(s[pos + 2]) && cp >= 0x800 && isValidCodepoint(cp) ? 3 : 0;
            }
            if (len >= 4 && (b0 & 0xF8) == 0xF0) {
                int cp = (b0 & 0x07) << 18 | (s[pos + 1] & 0x3F) << 12 | (s[pos + 2] & 0x3F) << 6 | (s[pos + 3] & 0x3F);
                return isTrail(s[pos + 1])
                                && isTrail(s[pos + 2])
                                && isTrail(s[pos + 3])
                                && cp >= 0x10000
                                && isValidCodepoint(cp)
                        ? 4
                        : 0;
            }
            return 0;
        }

        private static boolean isTrail(byte b) {
            return (b & 0xC0) == 0x80;
        }

        private static boolean isValidCodepoint(int cp) {
            return cp < 0xD800 || (cp >= 0xE000 && cp <= 0x10FFFF);
        }

        /** util.h OneCharLen: the length a lead byte announces, 1 for a stray continuation byte. */
        static int oneCharLen(byte lead) {
            int hi = (lead & 0xFF) >>> 4;
            return hi < 12 ? 1 : hi < 14 ? 2 : hi == 14 ? 3 : 4;
        }

        /** UTF-8 of a Java string; an unpaired surrogate (which UTF-8 cannot carry) becomes U+FFFD. */
        static byte[] encode(String text) {
            byte[] out = new byte[text.length() * 3];
            int n = 0;
            for (int i = 0; i < text.length(); i++) {
                char c = text.charAt(i);
                if (c < 0x80) {
                    out[n++] = (byte) c;
                } else if (c < 0x800) {
                    out[n++] = (byte) (0xC0 | c >>> 6);
                    out[n++] = (byte) (0x80 | (c & 0x3F));
                } else if (Character.isHighSurrogate(c)
                        && i + 1 < text.length()
                        && Character.isLowSurrogate(text.charAt(i + 1))) {
                    int cp = Character.toCodePoint(c, text.charAt(++i));
                    out[n++] = (byte) (0xF0 | cp >>> 18);
                    out[n++] = (byte) (0x80 | (cp >>> 12 & 0x3F));
                    out[n++] = (byte) (0x80 | (cp >>> 6 & 0x3F));
                    out[n++] = (byte) (0x80 | (cp & 0x3F));
                } else {
                    int cp = Character.isSurrogate(c) ? 0xFFFD : c;
                    out[n++] = (byte) (0xE0 | cp >>> 12);
                    out[n++] = (byte) (0x80 | (cp >>> 6 & 0x3F));
                    out[n++] = (byte) (0x80 | (cp & 0x3F));
                }
            }
            return Arrays.copyOf(out, n);
        }
    }
}
