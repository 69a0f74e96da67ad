package ai.fluxbatch.jobs.prompts;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.fluxbatch.model.Golden;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.RowFactory;
import org.apache.spark.sql.SparkSession;
import org.apache.spark.sql.types.DataTypes;
import org.apache.spark.sql.types.StructType;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class PromptSourcesTest {
    private static SparkSession spark;
    private static Path prompts;

    @TempDir
    Path tmp;

    @BeforeAll
    static void start() {
        spark = SparkSession.builder()
                .master("local[1]")
                .appName("prompt sources test")
                .config("spark.ui.enabled", "false")
                .config("spark.driver.host", "127.0.0.1")
                .getOrCreate();
        prompts = Golden.dir().resolveSibling("prompts");
    }

    @AfterAll
    static void stop() {
        spark.stop();
    }

    private List<PromptRow> read(Object where, String column) {
        return PromptSources.read(where.toString(), column, spark);
    }

    @Test
    void partiPromptsTsv() {
        List<PromptRow> rows = read(prompts.resolve("PartiPrompts.tsv"), null);
        assertEquals(1632, rows.size());
        assertEquals("bond", rows.get(0).prompt());
        assertEquals("Abstract", rows.get(0).fields().get("Category"));
        assertEquals(0, rows.get(0).row());
        assertEquals(1631, rows.get(1631).index());
    }

    @Test
    void genevalMetadataKeepsTagsAndTheSourceLine() {
        List<PromptRow> rows = read(prompts.resolve("geneval/evaluation_metadata.jsonl"), null);
        assertEquals("a photo of a bench", rows.get(0).prompt());
        assertEquals("single_object", rows.get(0).fields().get("tag"));
        assertTrue(rows.get(0).fields().get("source_json").startsWith("{\"tag\": \"single_object\""));
    }

    @Test
    void t2iCompbenchGlobGivesCategoriesFromFileNames() {
        List<PromptRow> rows = read(prompts.resolve("t2i-compbench") + "/*_val.txt", null);
        assertEquals(
                8, rows.stream().map(r -> r.fields().get("category")).distinct().count());
        assertTrue(rows.stream().anyMatch(r -> "3d_spatial".equals(r.fields().get("category"))));
        assertTrue(rows.stream().allMatch(r -> r.source().endsWith("_val.txt")));
    }

    @Test
    void folderOfTextFiles() throws IOException {
        Files.writeString(tmp.resolve("a.txt"), "one\n\n  two  \n");
        Files.writeString(tmp.resolve("b.txt"), "three\n");
        List<PromptRow> rows = read(tmp, null);
        assertEquals(
                List.of("one", "two", "three"),
                rows.stream().map(PromptRow::prompt).toList());
        assertEquals(List.of(0L, 1L, 2L), rows.stream().map(PromptRow::index).toList());
    }

    @Test
    void csvWithQuotesAndAChosenColumnAndSeeds() throws IOException {
        Path csv = Files.writeString(
                tmp.resolve("p.csv"), "id,text,seed\n1,\"a cat, sitting\",7\n2,\"say \"\"hi\"\"\nloudly\",x\n3,,\n");
        List<PromptRow> rows = read(csv, "text");
        assertEquals("a cat, sitting", rows.get(0).prompt());
        assertEquals(7L, rows.get(0).seed());
        assertNull(rows.get(0).error());
        assertEquals("say \"hi\"\nloudly", rows.get(1).prompt());
        assertEquals("seed 'x' is not an integer", rows.get(1).error());
        assertEquals("empty prompt", rows.get(2).error());
    }

    @Test
    void parquetThroughSpark() {
        StructType schema = new StructType().add("prompt", DataTypes.StringType).add("style", DataTypes.StringType);
        List<Row> data = List.of(RowFactory.create("a red circle", "flat"), RowFactory.create("a blue square", "flat"));
        String path = tmp.resolve("p.parquet").toString();
        spark.createDataFrame(data, schema).coalesce(1).write().parquet(path);
        List<PromptRow> rows = read(path, null);
        assertEquals(2, rows.size());
        assertEquals("flat", rows.get(1).fields().get("style"));
    }

    @Test
    void badFilesNameTheFileLineAndField() throws IOException {
        Path jsonl = Files.writeString(tmp.resolve("bad.jsonl"), "{\"prompt\": \"ok\"}\n{\"prompt\": oops}\n");
        assertMessage(jsonl, null, "bad.jsonl line 2 is not valid JSON");
        Path noField = Files.writeString(tmp.resolve("nofield.jsonl"), "{\"text\": \"ok\"}\n");
        assertMessage(noField, null, "nofield.jsonl line 1: field 'prompt' is missing");
        Path csv = Files.writeString(tmp.resolve("nocol.csv"), "a,b\n1,2\n");
        assertMessage(csv, null, "has no column 'prompt': its header is [a, b]");
        Path ragged = Files.writeString(tmp.resolve("ragged.tsv"), "prompt\tx\nhello\n");
        assertMessage(ragged, null, "ragged.tsv line 2 has 1 fields, the header has 2");
        Path unknown = Files.writeString(tmp.resolve("p.docx"), "x");
        assertMessage(unknown, null, "unknown extension");
        Path empty = Files.writeString(tmp.resolve("empty.txt"), "\n\n");
        assertMessage(empty, null, "holds no prompts");
        assertMessage(tmp.resolve("absent.txt"), null, "no prompt file at");
        Path notParquet = Files.writeString(tmp.resolve("broken.parquet"), "not parquet");
        assertMessage(notParquet, null, "cannot read Parquet file");
    }

    @Test
    void aTruncatedParquetFileFailsWithOneLineNamingIt() throws IOException {
        StructType schema = new StructType().add("prompt", DataTypes.StringType);
        String folder = tmp.resolve("whole.parquet").toString();
        spark.createDataFrame(List.of(RowFactory.create("a red circle")), schema)
                .coalesce(1)
                .write()
                .parquet(folder);
        Path part;
        try (var files = Files.list(Path.of(folder))) {
            part = files.filter(p -> p.getFileName().toString().endsWith(".parquet"))
                    .findFirst()
                    .orElseThrow();
        }
        byte[] whole = Files.readAllBytes(part);
        Path cut = Files.write(tmp.resolve("cut.parquet"), java.util.Arrays.copyOf(whole, whole.length / 2));
        PromptFormatException e = assertThrows(PromptFormatException.class, () -> read(cut, null));
        assertTrue(
                e.getMessage().startsWith("cannot read Parquet file file:" + cut + " (truncated, or not Parquet?): "),
                e.getMessage());
        assertFalse(e.getMessage().contains("\n"), e.getMessage());
    }

    private void assertMessage(Path file, String column, String expected) {
        PromptFormatException e = assertThrows(PromptFormatException.class, () -> read(file, column));
        assertTrue(e.getMessage().contains(expected), "expected '" + expected + "' in: " + e.getMessage());
    }
}
