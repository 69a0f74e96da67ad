package ai.fluxbatch.jobs.prompts;

import ai.fluxbatch.jobs.output.Locations;
import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.fs.FileStatus;
import org.apache.hadoop.fs.FileSystem;
import org.apache.hadoop.fs.Path;
import org.apache.parquet.hadoop.ParquetFileReader;
import org.apache.parquet.hadoop.util.HadoopInputFile;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.SparkSession;

/**
 * Reads prompt datasets through the Hadoop FileSystem API (local, hdfs://, s3a://): a file, a folder, or a glob.
 * By extension: {@code .txt} one prompt a line (T2I-CompBench files get their category from the file name),
 * {@code .jsonl} objects with a {@code prompt} field (GenEval's evaluation_metadata.jsonl included), {@code .csv} /
 * {@code .tsv} with a header ({@code --prompt-column}, else {@code prompt} or PartiPrompts' {@code Prompt}), and
 * {@code .parquet} through Spark. Text formats are parsed here rather than by Spark's readers so that an error can
 * name the file, line and field. A {@link BuiltInPrompts} name ({@code paper-7232}) reads that shipped set instead.
 * Text files are UTF-8 (a byte order mark is dropped), read line by line with a bound on a line's length; binary
 * input is refused ({@link TextLines}); a prompt longer than {@link PromptRow#MAX_PROMPT_CHARS} is an error row.
 */
public final class PromptSources {
    /** One JSON value a line: {@code {"prompt": "a"} {"prompt": "b"}} is an error, not the first prompt. */
    private static final ObjectMapper JSON = new ObjectMapper().enable(DeserializationFeature.FAIL_ON_TRAILING_TOKENS);

    private PromptSources() {}

    public static List<PromptRow> read(String uri, String promptColumn, SparkSession spark) {
        if (BuiltInPrompts.isName(uri)) {
            return BuiltInPrompts.rows(uri);
        }
        return read(uri, promptColumn, spark.sparkContext().hadoopConfiguration(), spark);
    }

    /** {@code spark} reads Parquet files; the text formats need only {@code conf}. */
    static List<PromptRow> read(String uri, String promptColumn, Configuration conf, SparkSession spark) {
        List<Path> files = files(uri, conf);
        List<PromptRow> rows = new ArrayList<>();
        for (Path f : files) {
            String name = f.getName().toLowerCase(Locale.ROOT);
            int before = rows.size();
            if (name.endsWith(".parquet")) {
                checkParquetFooter(f, conf);
                readParquet(f, promptColumn, spark, rows);
            } else if (!name.endsWith(".txt")
                    && !name.endsWith(".jsonl")
                    && !name.endsWith(".json")
                    && !name.endsWith(".csv")
                    && !name.endsWith(".tsv")) {
                throw new PromptFormatException("prompt file " + f + " has an unknown extension: expected .txt,"
                        + " .jsonl, .csv, .tsv or .parquet");
            } else {
                try (TextLines in =
                        new TextLines(f.toString(), f.getFileSystem(conf).open(f))) {
                    if (name.endsWith(".txt")) {
                        readText(f, in, rows);
                    } else if (name.endsWith(".jsonl") || name.endsWith(".json")) {
                        readJsonl(f, in, promptColumn, rows);
                    } else {
                        readDelimited(f, new DelimitedReader(in, name.endsWith(".csv")), promptColumn, rows);
                    }
                } catch (IOException e) {
                    throw new UncheckedIOException("cannot read prompt file " + f + ": " + e.getMessage(), e);
                }
            }
            if (rows.size() == before) {
                throw new PromptFormatException("prompt file " + f + " holds no prompts");
            }
        }
        return rows;
    }

    static List<Path> files(String uri, Configuration conf) {
        try {
            Path p = path(uri);
            FileSystem fs = p.getFileSystem(conf);
            FileStatus[] matches = fs.globStatus(p);
            if (matches == null || matches.length == 0) {
                throw new PromptFormatException("no prompt file at " + uri + ": expected a file, a folder or a glob");
            }
            List<Path> files = new ArrayList<>();
            for (FileStatus m : matches) {
                if (m.isDirectory()) {
                    for (FileStatus c : fs.listStatus(m.getPath())) {
                        if (c.isFile()
                                && !c.getPath().getName().startsWith(".")
                                && !c.getPath().getName().startsWith("_")) {
                            files.add(c.getPath());
                        }
                    }
                } else {
                    files.add(m.getPath());
                }
            }
            files.sort(null);
            if (files.isEmpty()) {
                throw new PromptFormatException("no prompt files in " + uri);
            }
            return files;
        } catch (IOException e) {
            throw new UncheckedIOException("cannot list prompts at " + uri + ": " + e.getMessage(), e);
        }
    }

    /**
     * A value with a scheme ({@code s3a://b/p.txt}, {@code file:/tmp/a%20b}) is a URI, with its escapes; any other
     * value is a local path taken literally, {@code %} and {@code #} included ({@code /tmp/50%/p.txt} is that file).
     */
    static Path path(String uri) {
        try {
            return Locations.path(uri);
        } catch (IllegalArgumentException e) {
            throw new PromptFormatException(
                    "--prompts " + uri + " is neither a path nor a URI: "
                            + (e.getCause() != null ? e.getCause().getMessage() : e.getMessage()),
                    e);
        }
    }

    private static void readText(Path f, TextLines in, List<PromptRow> rows) throws IOException {
        String category = t2iCategory(f.getName());
        String line;
        for (long n = 0; (line = in.next()) != null; n++) {
            if (line.isBlank()) {
                continue;
            }
            Map<String, String> fields = new LinkedHashMap<>();
            if (category != null) {
                fields.put("category", category);
            }
            rows.add(PromptRow.of(rows.size(), f.getName(), n, line.strip(), fields));
        }
    }

    /** {@code color_val.txt -> color}, {@code 3d_spatial_train.txt -> 3d_spatial}: T2I-CompBench's file names. */
    static String t2iCategory(String fileName) {
        return fileName.matches(".+_(val|train)\\.txt") ? fileName.replaceFirst("_(val|train)\\.txt$", "") : null;
    }

    private static void readJsonl(Path f, TextLines in, String promptColumn, List<PromptRow> rows) throws IOException {
        String key = promptColumn != null ? promptColumn : "prompt";
        String line;
        for (long n = 0; (line = in.next()) != null; n++) {
            if (line.isBlank()) {
                continue;
            }
            JsonNode node;
            try {
                node = JSON.readTree(line);
            } catch (JsonProcessingException e) {
                throw new PromptFormatException(
                        f + " line " + (n + 1) + " is not valid JSON: " + e.getOriginalMessage(), e);
            }
            if (node == null || !node.isObject()) {
                throw new PromptFormatException(f + " line " + (n + 1) + " is not a JSON object");
            }
            JsonNode prompt = node.get(key);
            if (prompt == null || !prompt.isTextual()) {
                throw new PromptFormatException(f + " line " + (n + 1) + ": field '" + key + "' is "
                        + (prompt == null
                                ? "missing"
                                : prompt.getNodeType().toString().toLowerCase(Locale.ROOT))
                        + ", expected a string");
            }
            Map<String, String> fields = new LinkedHashMap<>();
            for (Iterator<Map.Entry<String, JsonNode>> it = node.fields(); it.hasNext(); ) {
                Map.Entry<String, JsonNode> e = it.next();
                if (!e.getKey().equals(key)) {
                    fields.put(
                            e.getKey(),
                            e.getValue().isTextual()
                                    ? e.getValue().asText()
                                    : e.getValue().toString());
                }
            }
            fields.put("source_json", line.strip());
            rows.add(PromptRow.of(rows.size(), f.getName(), n, prompt.asText(), fields));
        }
    }

    private static void readDelimited(Path f, DelimitedReader reader, String promptColumn, List<PromptRow> rows) {
        List<String> header = reader.next();
        if (header == null) {
            throw new PromptFormatException(f + " is empty: expected a header line");
        }
        int col = promptColumn != null ? header.indexOf(promptColumn) : header.indexOf("prompt");
        if (col < 0 && promptColumn == null) {
            col = header.indexOf("Prompt");
        }
        if (col < 0) {
            throw new PromptFormatException(f + " has no column '" + (promptColumn != null ? promptColumn : "prompt")
                    + "': its header is " + header + " (choose one with --prompt-column)");
        }
        List<String> cells;
        while ((cells = reader.next()) != null) {
            long n = reader.lineNumber();
            if (cells.size() == 1 && cells.get(0).isBlank()) {
                continue;
            }
            if (cells.size() != header.size()) {
                throw new PromptFormatException(
                        f + " line " + n + " has " + cells.size() + " fields, the header has " + header.size());
            }
            Map<String, String> fields = new LinkedHashMap<>();
            for (int i = 0; i < header.size(); i++) {
                if (i != col) {
                    fields.put(header.get(i), cells.get(i));
                }
            }
            rows.add(PromptRow.of(rows.size(), f.getName(), n - 2, cells.get(col), fields)); // 0-based data row
        }
    }

    /**
     * Reads the footer with Parquet's own reader first, so that a truncated or foreign file fails with one line that
     * names it rather than inside a Spark task.
     */
    private static void checkParquetFooter(Path f, Configuration conf) {
        try (ParquetFileReader footer = ParquetFileReader.open(HadoopInputFile.fromPath(f, conf))) {
            footer.getFooter();
        } catch (IOException | RuntimeException e) {
            throw new PromptFormatException(
                    "cannot read Parquet file " + f + " (truncated, or not Parquet?): " + firstLine(e.getMessage()), e);
        }
    }

    private static String firstLine(String message) {
        return message == null ? "" : message.lines().findFirst().orElse("");
    }

    private static void readParquet(Path f, String promptColumn, SparkSession spark, List<PromptRow> rows) {
        String key = promptColumn != null ? promptColumn : "prompt";
        List<Row> all;
        String[] columns;
        try {
            var df = spark.read().parquet(f.toString());
            columns = df.columns();
            if (!Arrays.asList(columns).contains(key)) {
                throw new PromptFormatException(f + " has no column '" + key + "': its columns are "
                        + Arrays.toString(columns) + " (choose one with --prompt-column)");
            }
            all = df.collectAsList();
        } catch (PromptFormatException e) {
            throw e;
        } catch (Exception e) { // Spark throws its checked SparkException from Scala code
            throw new PromptFormatException("cannot read Parquet file " + f + ": " + firstLine(e.getMessage()), e);
        }
        for (int n = 0; n < all.size(); n++) {
            Row r = all.get(n);
            Map<String, String> fields = new LinkedHashMap<>();
            String prompt = null;
            for (int i = 0; i < columns.length; i++) {
                Object v = r.get(i);
                if (columns[i].equals(key)) {
                    prompt = v == null ? null : v.toString();
                } else {
                    fields.put(columns[i], v == null ? null : v.toString());
                }
            }
            rows.add(PromptRow.of(rows.size(), f.getName(), n, prompt, fields));
        }
    }
}
