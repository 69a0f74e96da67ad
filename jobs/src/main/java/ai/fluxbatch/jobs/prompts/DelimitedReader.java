package ai.fluxbatch.jobs.prompts;

import java.io.BufferedReader;
import java.io.IOException;
import java.util.ArrayList;
import java.util.List;

/**
 * Records of a CSV or TSV file with RFC 4180 quoting (quoted fields may hold separators, doubled quotes and line
 * breaks). Small enough to write here; Spark's CSV reader cannot name the line of a bad record.
 */
final class DelimitedReader {
    private final BufferedReader in;
    private final char sep;
    private long line;
    private long recordStart;

    DelimitedReader(BufferedReader in, char sep) {
        this.in = in;
        this.sep = sep;
    }

    /** The 1-based line where the last record returned started. */
    long lineNumber() {
        return recordStart;
    }

    List<String> next() throws IOException {
        String text = in.readLine();
        if (text == null) {
            return null;
        }
        line++;
        recordStart = line;
        List<String> cells = new ArrayList<>();
        StringBuilder cell = new StringBuilder();
        boolean quoted = false;
        for (int i = 0; ; i++) {
            if (i == text.length()) {
                if (quoted) {
                    String more = in.readLine();
                    if (more == null) {
                        throw new PromptFormatException("line " + recordStart + ": a quoted field is never closed");
                    }
                    line++;
                    cell.append('\n');
                    text = more;
                    i = -1;
                    continue;
                }
                cells.add(cell.toString());
                return cells;
            }
            char c = text.charAt(i);
            if (quoted) {
                if (c == '"' && i + 1 < text.length() && text.charAt(i + 1) == '"') {
                    cell.append('"');
                    i++;
                } else if (c == '"') {
                    quoted = false;
                } else {
                    cell.append(c);
                }
            } else if (c == '"' && cell.length() == 0) {
                quoted = true;
            } else if (c == sep) {
                cells.add(cell.toString());
                cell.setLength(0);
            } else {
                cell.append(c);
            }
        }
    }
}
