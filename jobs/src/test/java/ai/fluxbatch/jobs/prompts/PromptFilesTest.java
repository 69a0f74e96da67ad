package ai.fluxbatch.jobs.prompts;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTimeoutPreemptively;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.fluxbatch.model.Golden;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import org.apache.hadoop.conf.Configuration;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The text prompt formats (txt, jsonl, csv, tsv) and --prompts paths, read without Spark. */
class PromptFilesTest {
    private static final Configuration CONF = new Configuration();

    @TempDir
    Path tmp;

    static List<PromptRow> read(Object where, String column) {
        return PromptSources.read(where.toString(), column, CONF, null);
    }

    private static List<String> prompts(List<PromptRow> rows) {
        return rows.stream().map(PromptRow::prompt).toList();
    }

    static PromptFormatException assertMessage(Object file, String expected) {
        PromptFormatException e = assertThrows(PromptFormatException.class, () -> read(file, null));
        assertTrue(e.getMessage().contains(expected), "expected '" + expected + "' in: " + e.getMessage());
        return e;
    }

    @Test
    void partiPromptsIsTsvWithoutQuotingEveryLineAPrompt() throws IOException {
        Path parti = Golden.dir().resolveSibling("prompts").resolve("PartiPrompts.tsv");
        List<String> lines = Files.readAllLines(parti);
        List<PromptRow> rows = read(parti, null);
        assertEquals(lines.size() - 1, rows.size());
        for (int i = 1; i < lines.size(); i++) {
            assertEquals(lines.get(i).split("\t", -1)[0], rows.get(i - 1).prompt(), "line " + (i + 1));
        }
        assertEquals(
                "\"G I G G L E\" painted in thick colorful lettering as graffiti on a faded red brick wall with"
                        + " a splotch of exploding white paint.",
                rows.get(1562 - 2).prompt());
        assertEquals("Illustrations", rows.get(1562 - 2).fields().get("Category"));
    }

    @Test
    void tsvQuotesAndBackslashesAreText() throws IOException {
        Path tsv = Files.writeString(
                tmp.resolve("q.tsv"), "prompt\tseed\n\"a stray quote\t1\nsecond\t2\nC:\\new\\table \\t \"x\"\t3\n");
        List<PromptRow> rows = read(tsv, null);
        assertEquals(List.of("\"a stray quote", "second", "C:\\new\\table \\t \"x\""), prompts(rows));
        assertEquals(List.of(1L, 2L, 3L), rows.stream().map(PromptRow::seed).toList());
        assertEquals(List.of(0L, 1L, 2L), rows.stream().map(PromptRow::row).toList());
    }

    @Test
    void aLineStartingWithAHashIsAPromptNotAComment() throws IOException {
        assertEquals(
                List.of("#1 a cat", "b"),
                prompts(read(Files.writeString(tmp.resolve("h.csv"), "prompt\n#1 a cat\nb\n"), null)));
        assertEquals(
                List.of("#1 a cat", "b"),
                prompts(read(Files.writeString(tmp.resolve("h.tsv"), "prompt\n#1 a cat\nb\n"), null)));
    }

    @Test
    void aByteOrderMarkIsDroppedInEveryTextFormat() throws IOException {
        String bom = "\uFEFF";
        assertEquals(List.of("one"), prompts(read(Files.writeString(tmp.resolve("b.txt"), bom + "one\n"), null)));
        assertEquals(
                List.of("two"),
                prompts(read(Files.writeString(tmp.resolve("b.jsonl"), bom + "{\"prompt\": \"two\"}\n"), null)));
        assertEquals(
                List.of("three"),
                prompts(read(Files.writeString(tmp.resolve("b.csv"), bom + "prompt,x\nthree,1\n"), null)));
        assertEquals(
                List.of("four"),
                prompts(read(Files.writeString(tmp.resolve("b.tsv"), bom + "prompt\tx\nfour\t1\n"), null)));
        // only at the start of the file: elsewhere it is text
        assertEquals(
                List.of("a", bom + "b"),
                prompts(read(Files.writeString(tmp.resolve("c.txt"), "a\n" + bom + "b\n"), null)));
    }

    @Test
    void binaryInputIsRefusedWithItsLineAndByte() throws IOException {
        Path nul = Files.write(tmp.resolve("nul.txt"), "ok\nab\0c\n".getBytes(StandardCharsets.UTF_8));
        assertMessage(nul, "nul.txt line 2 (byte 5) holds the control byte 0x00: a binary file?");
        byte[] png = {(byte) 0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n', 0, 0, 0, 13};
        assertMessage(Files.write(tmp.resolve("image.csv"), png), "image.csv line 1 (byte 0) is not valid UTF-8");
        Path latin1 = Files.write(
                tmp.resolve("latin1.jsonl"),
                "{\"prompt\": \"caf\u00e9\"}\n{\"prompt\": \"na\u00efve\"}\n".getBytes(StandardCharsets.ISO_8859_1));
        assertMessage(latin1, "latin1.jsonl line 1 (byte 15) is not valid UTF-8");
        assertMessage(
                Files.write(tmp.resolve("esc.tsv"), "prompt\n\u001b[2J\n".getBytes(StandardCharsets.UTF_8)),
                "esc.tsv line 2 (byte 7) holds the control byte 0x1B");
        // tabs, form feeds and CR LF line ends are text
        assertEquals(
                List.of("a\tb\fc", "d"), prompts(read(Files.writeString(tmp.resolve("ok.txt"), "a\tb\fc\r\nd"), null)));
    }

    @Test
    void aLinkToDevZeroOrAHugeLineFailsFastWithoutReadingIt() throws IOException {
        Path zero = Files.createSymbolicLink(tmp.resolve("zero.txt"), Path.of("/dev/zero"));
        assertTimeoutPreemptively(
                Duration.ofSeconds(10),
                () -> assertMessage(zero, "zero.txt line 1 (byte 0) holds the control byte 0x00"));
        byte[] huge = new byte[TextLines.MAX_LINE_BYTES + 1];
        java.util.Arrays.fill(huge, (byte) 'a');
        Path big = Files.write(tmp.resolve("big.jsonl"), huge);
        assertMessage(
                big,
                "big.jsonl line 1 is longer than 1,048,576 bytes, the most one line of a prompt file may"
                        + " hold (a prompt may have at most 10,000 characters)");
        // a quoted CSV field of many short lines is bounded too
        Path quoted = Files.writeString(
                tmp.resolve("quoted.csv"),
                "prompt\n\"" + "x".repeat(999).concat("\n").repeat(1100));
        assertMessage(
                quoted,
                "quoted.csv line 1050: a field is longer than 1,048,576 characters (a quote never" + " closed?)");
    }

    @Test
    void aPromptOverTheLimitIsAnErrorRowNotAFailedFile() throws IOException {
        String limit = "\u00e9".repeat(PromptRow.MAX_PROMPT_CHARS);
        Path txt = Files.writeString(tmp.resolve("long.txt"), limit + "\n" + limit + "xy\nshort\n");
        List<PromptRow> rows = read(txt, null);
        assertNull(rows.get(0).error());
        assertEquals(
                "prompt has 10,002 characters, more than the limit of 10,000",
                rows.get(1).error());
        assertEquals(limit, rows.get(1).prompt());
        assertNull(rows.get(2).error());
    }

    @Test
    void anUnclosedQuoteNamesTheFileAndLine() throws IOException {
        Path csv = Files.writeString(tmp.resolve("open.csv"), "id,prompt\n1,fine\n2,\"never closed\n3,x\n");
        assertMessage(csv, "open.csv line 3: a quoted field is never closed");
        // a closed quote at the end of the file, or a quote inside a field, is fine
        Path ok = Files.writeString(tmp.resolve("ok.csv"), "id,prompt\n1,say \"hi\"\n2,\"a\n\"\"b\"\"\n\"");
        assertEquals(List.of("say \"hi\"", "a\n\"b\"\n"), prompts(read(ok, null)));
    }

    @Test
    void jsonlErrorsNameTheFileAndLine() throws IOException {
        Path two = Files.writeString(
                tmp.resolve("two.jsonl"), "{\"prompt\": \"a\"}\n{\"prompt\": \"b\"} {\"prompt\": \"c\"}\n");
        assertMessage(two, "two.jsonl line 2 is not valid JSON");
        Path number = Files.writeString(tmp.resolve("number.jsonl"), "{\"prompt\": 7}\n");
        assertMessage(number, "number.jsonl line 1: field 'prompt' is number, expected a string");
        Path array = Files.writeString(tmp.resolve("array.jsonl"), "\n[1]\n");
        assertMessage(array, "array.jsonl line 2 is not a JSON object");
    }

    @Test
    void percentAndHashInALocalPathAreLiteral() throws IOException {
        for (String folder : List.of("a%20b", "x#1", "50%", "c d")) {
            Path file = Files.createDirectories(tmp.resolve(folder)).resolve("p.txt");
            Files.writeString(file, "in " + folder + "\n");
            assertEquals(List.of("in " + folder), prompts(read(file, null)), folder);
            assertEquals(List.of("in " + folder), prompts(read(file.getParent() + "/*.txt", null)), folder);
            String absent = file.resolveSibling("absent.txt").toString();
            assertEquals(
                    "no prompt file at " + absent + ": expected a file, a folder or a glob",
                    assertMessage(absent, "no prompt file").getMessage());
        }
        // with a scheme it is a URI, escapes and all: %2520 is the folder a%20b
        assertEquals(List.of("in a%20b"), prompts(read("file://" + tmp + "/a%2520b/p.txt", null)));
        assertMessage(
                "file://" + tmp + "/50%/p.txt",
                "--prompts file://" + tmp + "/50%/p.txt is neither a path nor" + " a URI: Malformed escape pair");
    }
}
