package ai.fluxbatch.jobs.cli;

import java.io.ByteArrayOutputStream;
import java.io.FilterWriter;
import java.io.IOException;
import java.io.OutputStream;
import java.io.PrintStream;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.io.Writer;
import java.nio.charset.Charset;
import java.util.regex.Pattern;

/**
 * Keeps secrets out of what fluxbatch prints: the user-info of a URI ({@code s3a://KEY:SECRET@bucket/...} becomes
 * {@code s3a://***@bucket/...}) and the value of a setting whose name says it is a secret ({@code
 * fs.s3a.secret.key=...}, {@code AWS_SECRET_ACCESS_KEY=...}, {@code password: ...}). {@link #writer} and {@link
 * #stream} apply it to every line a command or a logger prints.
 */
public final class Redact {
    /**
     * scheme://user-info@ : the authority up to an @, or KEY:SECRET@ where the secret has an unescaped / in it (as
     * AWS secrets do; the URI is then not even valid, but must not be printed either).
     */
    private static final Pattern USER_INFO =
            Pattern.compile("([A-Za-z][A-Za-z0-9+.-]*://)(?:[^/?#\\s@]+|[^/?#\\s@:]*:[^\\s@]*)@");

    private static final Pattern SECRET_SETTING = Pattern.compile(
            "(?i)((?:secret|password|passwd|session[._-]?token|access[._-]?key)[A-Za-z0-9._-]*\\s*[=:]\\s*)"
                    + "(?!\\*\\*\\*)[^\\s,;&\"')}]+");
    static final String MASK = "***";

    private Redact() {}

    /** {@code uri} without its user-info: what may be printed or stored of a location the user gave. */
    public static String uri(String uri) {
        return uri == null ? null : USER_INFO.matcher(uri).replaceAll("$1" + MASK + "@");
    }

    /** {@code text} with every URI's user-info and every secret setting's value masked. */
    public static String text(String text) {
        if (text == null) {
            return null;
        }
        return SECRET_SETTING.matcher(uri(text)).replaceAll("$1" + MASK);
    }

    /** A writer that passes {@code out} each line (and whatever a flush leaves) redacted. */
    public static PrintWriter writer(Writer out) {
        return new PrintWriter(new LineFilter(out), true);
    }

    /** A print stream that passes {@code out} each line redacted, for System.err and System.out. */
    public static PrintStream stream(PrintStream out) {
        Charset charset = Charset.defaultCharset(); // what PrintStream encodes with, both ways
        return new PrintStream(
                new OutputStream() {
                    private final ByteArrayOutputStream line = new ByteArrayOutputStream();

                    @Override
                    public synchronized void write(int b) {
                        line.write(b);
                        if (b == '\n') {
                            drain();
                        }
                    }

                    @Override
                    public synchronized void write(byte[] b, int off, int len) {
                        for (int i = off; i < off + len; i++) {
                            write(b[i]);
                        }
                    }

                    @Override
                    public synchronized void flush() {
                        drain();
                        out.flush();
                    }

                    private void drain() {
                        if (line.size() > 0) {
                            byte[] redacted = text(line.toString(charset)).getBytes(charset);
                            out.write(redacted, 0, redacted.length);
                            line.reset();
                        }
                    }
                },
                true,
                charset);
    }

    /** Buffers up to a line end, then writes the line redacted. */
    private static final class LineFilter extends FilterWriter {
        private final StringWriter line = new StringWriter();

        LineFilter(Writer out) {
            super(out);
        }

        @Override
        public void write(int c) throws IOException {
            synchronized (lock) {
                line.write(c);
                if (c == '\n') {
                    drain();
                }
            }
        }

        @Override
        public void write(char[] cbuf, int off, int len) throws IOException {
            for (int i = off; i < off + len; i++) {
                write(cbuf[i]);
            }
        }

        @Override
        public void write(String str, int off, int len) throws IOException {
            for (int i = off; i < off + len; i++) {
                write(str.charAt(i));
            }
        }

        @Override
        public void flush() throws IOException {
            synchronized (lock) {
                drain();
                out.flush();
            }
        }

        @Override
        public void close() throws IOException {
            flush();
            out.close();
        }

        private void drain() throws IOException {
            StringBuffer b = line.getBuffer();
            if (b.length() > 0) {
                out.write(text(b.toString()));
                b.setLength(0);
            }
        }
    }
}
