package ai.fluxbatch.jobs.prompts;

import java.io.Closeable;
import java.io.IOException;
import java.io.InputStream;
import java.io.Reader;
import java.nio.ByteBuffer;
import java.nio.CharBuffer;
import java.nio.charset.CharsetDecoder;
import java.nio.charset.CoderResult;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.util.Arrays;

/**
 * The lines of a UTF-8 text prompt file, read with bounds: a line may hold at most {@link #MAX_LINE_BYTES} bytes
 * (never more is held in memory, so a 50 MB one-line file or a link to /dev/zero fails at once); a UTF-8 byte order
 * mark at the start is dropped; a C0 control byte other than tab, vertical tab, form feed and the line breaks (a NUL
 * above all), or bytes that are not UTF-8, refuse the file as binary with its line and byte offset. Lines end at
 * {@code \n}, {@code \r\n} or {@code \r}, as {@link java.io.BufferedReader#readLine} ends them.
 */
final class TextLines implements Closeable {
    /** The most bytes one line of a text prompt file may hold (1 MiB). */
    static final int MAX_LINE_BYTES = 1 << 20;

    private static final byte[] BOM = {(byte) 0xEF, (byte) 0xBB, (byte) 0xBF};

    private final String file;
    private final InputStream in;
    private final byte[] buffer = new byte[1 << 16];
    private final CharsetDecoder utf8 = StandardCharsets.UTF_8
            .newDecoder()
            .onMalformedInput(CodingErrorAction.REPORT)
            .onUnmappableCharacter(CodingErrorAction.REPORT);
    private int pos;
    private int end;
    private boolean eof;
    private boolean skipLf;
    private byte[] line = new byte[256];
    private long number;
    private long offset;

    /** {@code file} names the file in error messages. */
    TextLines(String file, InputStream in) {
        this.file = file;
        this.in = in;
    }

    String file() {
        return file;
    }

    /** The 1-based number of the line {@link #next} returned last. */
    long lineNumber() {
        return number;
    }

    /** The next line without its line break, or null at the end of the file. */
    String next() throws IOException {
        if (skipLf && available() && buffer[pos] == '\n') {
            pos++;
            offset++;
        }
        skipLf = false;
        if (!available()) {
            return null;
        }
        long start = offset;
        int length = 0;
        while (available()) {
            byte b = buffer[pos++];
            offset++;
            if (b == '\n') {
                break;
            }
            if (b == '\r') {
                skipLf = true;
                break;
            }
            if (b >= 0 && b < 0x20 && b != '\t' && b != 0x0B && b != 0x0C) {
                throw new PromptFormatException(String.format(
                        "%s line %d (byte %,d) holds the control byte 0x%02X:" + " a binary file? expected UTF-8 text",
                        file, number + 1, offset - 1, b));
            }
            if (length == MAX_LINE_BYTES) {
                throw new PromptFormatException(String.format(
                        "%s line %d is longer than %,d bytes, the most one line"
                                + " of a prompt file may hold (a prompt may have at most %,d characters)",
                        file, number + 1, MAX_LINE_BYTES, PromptRow.MAX_PROMPT_CHARS));
            }
            if (length == line.length) {
                line = Arrays.copyOf(line, Math.min(MAX_LINE_BYTES, 2 * length));
            }
            line[length++] = b;
        }
        number++;
        int from = number == 1 && length >= BOM.length && Arrays.equals(line, 0, BOM.length, BOM, 0, BOM.length)
                ? BOM.length
                : 0;
        return decode(from, length, start);
    }

    private String decode(int from, int to, long start) {
        ByteBuffer bytes = ByteBuffer.wrap(line, from, to - from);
        CharBuffer chars = CharBuffer.allocate(to - from);
        utf8.reset();
        CoderResult r = utf8.decode(bytes, chars, true);
        if (!r.isError()) {
            r = utf8.flush(chars);
        }
        if (r.isError()) {
            throw new PromptFormatException(String.format(
                    "%s line %d (byte %,d) is not valid UTF-8: a binary file?" + " expected UTF-8 text",
                    file, number, start + bytes.position()));
        }
        return chars.flip().toString();
    }

    private boolean available() throws IOException {
        while (pos == end && !eof) {
            int n = in.read(buffer, 0, buffer.length);
            if (n < 0) {
                eof = true;
            } else {
                pos = 0;
                end = n;
            }
        }
        return pos < end;
    }

    /** The lines as one character stream, each ended by {@code \n}, for a parser that reads a {@link Reader}. */
    Reader reader() {
        return new Reader() {
            private String current = "";
            private int at;

            @Override
            public int read(char[] cbuf, int off, int len) throws IOException {
                if (len == 0) {
                    return 0;
                }
                if (at == current.length()) {
                    String next = next();
                    if (next == null) {
                        return -1;
                    }
                    current = next + "\n";
                    at = 0;
                }
                int n = Math.min(len, current.length() - at);
                current.getChars(at, at + n, cbuf, off);
                at += n;
                return n;
            }

            @Override
            public void close() throws IOException {
                TextLines.this.close();
            }
        };
    }

    @Override
    public void close() throws IOException {
        in.close();
    }
}
