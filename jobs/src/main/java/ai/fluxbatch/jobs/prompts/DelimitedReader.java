package ai.fluxbatch.jobs.prompts;

import com.univocity.parsers.common.AbstractParser;
import com.univocity.parsers.common.CommonParserSettings;
import com.univocity.parsers.common.TextParsingException;
import com.univocity.parsers.csv.CsvParser;
import com.univocity.parsers.csv.CsvParserSettings;
import com.univocity.parsers.tsv.TsvParser;
import com.univocity.parsers.tsv.TsvParserSettings;
import java.util.Arrays;
import java.util.List;

/**
 * Records of a CSV or TSV file, parsed by univocity (the parser Spark's CSV reader uses) over the bounded, checked
 * lines of a {@link TextLines}; its errors name the file and line. CSV has RFC 4180 quoting: a quoted field may hold
 * commas, doubled quotes and line breaks, and one that is never closed is an error. TSV is IANA's
 * text/tab-separated-values: one record a line, fields split at tabs, no quoting and no escapes, so quotes and
 * backslashes are part of the text (PartiPrompts' {@code "G I G G L E" painted ...} keeps its quotes).
 */
final class DelimitedReader {
    /** The most fields a record may have (univocity's default). */
    static final int MAX_FIELDS = 512;

    private final TextLines lines;
    private final boolean csv;
    private final AbstractParser<?> parser;
    private long recordStart;
    private long consumed;
    private String lastRaw;

    DelimitedReader(TextLines lines, boolean csv) {
        this.lines = lines;
        this.csv = csv;
        if (csv) {
            CsvParserSettings s = new CsvParserSettings();
            s.setEmptyValue("");
            this.parser = new CsvParser(settings(s));
        } else {
            TsvParserSettings s = new TsvParserSettings();
            s.getFormat().setEscapeChar('\0'); // no escapes: TextLines refuses NUL, so this character never comes
            this.parser = new TsvParser(settings(s));
        }
        try {
            parser.beginParsing(lines.reader()); // reads the first buffer already
        } catch (TextParsingException e) {
            throw failure(e);
        }
    }

    private static <T extends CommonParserSettings<?>> T settings(T s) {
        s.getFormat().setLineSeparator("\n"); // TextLines ends every line so
        s.getFormat().setComment('\0'); // univocity's default '#' would drop "#hashtag ..." prompts; NUL never comes
        s.setReadInputOnSeparateThread(false);
        s.setIgnoreLeadingWhitespaces(false);
        s.setIgnoreTrailingWhitespaces(false);
        s.setNullValue("");
        s.setSkipEmptyLines(false);
        s.setMaxCharsPerColumn(TextLines.MAX_LINE_BYTES);
        s.setMaxColumns(MAX_FIELDS);
        return s;
    }

    /** The 1-based line where the last record returned started. */
    long lineNumber() {
        return recordStart;
    }

    /** The next record's fields, or null at the end of the file. */
    List<String> next() {
        String[] cells;
        try {
            cells = parser.parseNext();
        } catch (TextParsingException e) {
            throw failure(e);
        }
        if (cells == null) {
            if (csv && lastRaw != null && endsInsideQuotes(lastRaw)) {
                throw new PromptFormatException(
                        lines.file() + " line " + recordStart + ": a quoted field is never closed");
            }
            return null;
        }
        recordStart = consumed + 1;
        consumed = parser.getContext().currentLine();
        if (csv) {
            lastRaw = parser.getContext().currentParsedContent();
        }
        return Arrays.asList(cells);
    }

    private PromptFormatException failure(TextParsingException e) {
        for (Throwable c = e.getCause(); c != null; c = c.getCause()) {
            if (c instanceof PromptFormatException p) { // from TextLines: binary input, a line too long
                return p;
            }
        }
        String what = String.valueOf(e.getMessage());
        long line = e.getLineIndex() + 1;
        if (what.contains("maximum number of characters")) {
            what = String.format(
                    "a field is longer than %,d characters%s",
                    TextLines.MAX_LINE_BYTES, csv ? " (a quote never closed?)" : "");
        } else if (what.contains("maximum number of columns")) {
            what = "a record has more than " + MAX_FIELDS + " fields";
        } else {
            what = what.lines().findFirst().orElse(what);
        }
        return new PromptFormatException(lines.file() + " line " + line + ": " + what, e);
    }

    /** Whether an RFC 4180 record ends inside a quoted field: univocity then reads to the end of the file. */
    private static boolean endsInsideQuotes(String raw) {
        boolean quoted = false;
        boolean fieldStart = true;
        for (int i = 0; i < raw.length(); i++) {
            char c = raw.charAt(i);
            if (quoted) {
                if (c == '"' && i + 1 < raw.length() && raw.charAt(i + 1) == '"') {
                    i++;
                } else if (c == '"') {
                    quoted = false;
                }
            } else if (c == '"' && fieldStart) {
                quoted = true;
                fieldStart = false;
            } else {
                fieldStart = c == ',' || c == '\n';
            }
        }
        return quoted;
    }
}
