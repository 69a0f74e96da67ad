package ai.fluxbatch.jobs.cli;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.fluxbatch.jobs.generate.ImageEncoding;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.apache.commons.compress.archivers.tar.TarArchiveEntry;
import org.apache.commons.compress.archivers.tar.TarArchiveInputStream;
import org.apache.hadoop.fs.FSDataInputStream;
import org.apache.hadoop.fs.FileStatus;
import org.apache.hadoop.fs.FileSystem;
import org.apache.hadoop.fs.Path;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.SparkSession;

/**
 * Reads the WebDataset shards of a generate run with a plain tar reader (commons-compress, knowing nothing of how
 * they were written), checks every sample, and checks the Parquet index against the tars' bytes.
 */
final class WebDatasetShards {
    private WebDatasetShards() {}

    /** One tar member: its bytes as the tar reader gives them. */
    record Member(String shard, String name, byte[] data) {}

    /** The members of {@code shards} (names relative to {@code root}), in tar order. */
    static List<Member> read(FileSystem fs, String root, List<String> shards) throws IOException {
        List<Member> members = new ArrayList<>();
        for (String shard : shards) {
            try (InputStream in = fs.open(new Path(root + shard));
                    TarArchiveInputStream tar = new TarArchiveInputStream(in)) {
                for (TarArchiveEntry e = tar.getNextEntry(); e != null; e = tar.getNextEntry()) {
                    members.add(new Member(shard, e.getName(), tar.readAllBytes()));
                }
            }
        }
        return members;
    }

    /**
     * Checks that {@code members} are whole samples ({@code <id>.jpg}, {@code <id>.json}, {@code <id>.txt} in a row)
     * whose JPEG decodes to {@code size} x {@code size} with the prompt in its comments, whose json is an {@code ok}
     * metadata row of that id and whose txt is the prompt; returns the prompts by id.
     */
    static Map<String, String> checkSamples(List<Member> members, int size) throws IOException {
        assertEquals(0, members.size() % 3, "whole samples: " + names(members));
        Map<String, String> prompts = new LinkedHashMap<>();
        for (int i = 0; i < members.size(); i += 3) {
            Member image = members.get(i), json = members.get(i + 1), txt = members.get(i + 2);
            assertTrue(image.name().endsWith(".jpg"), names(members).toString());
            String id = image.name().substring(0, image.name().length() - 4);
            assertEquals(id + ".json", json.name());
            assertEquals(id + ".txt", txt.name());
            String prompt = new String(txt.data(), StandardCharsets.UTF_8);
            ImageEncoding.Jpeg jpeg = ImageEncoding.readJpeg(image.data());
            assertEquals(size, jpeg.width());
            assertEquals(size, jpeg.height());
            assertEquals(prompt, jpeg.comments().get("prompt"));
            JsonNode row = new ObjectMapper().readTree(json.data());
            assertEquals(id, row.get("id").asText());
            assertEquals(prompt, row.get("prompt").asText());
            assertEquals("ok", row.get("status").asText());
            assertTrue(row.get("path").asText().endsWith(image.shard()), row.toString());
            assertEquals(jpeg.comments().get("seed"), row.get("seed").asText());
            prompts.put(id, prompt);
        }
        return prompts;
    }

    /**
     * Checks that the Parquet index under {@code root} has one row per member of {@code members}, with the member's
     * shard, id and name, and an offset and size at which the shard file holds exactly the member's bytes.
     */
    static void checkIndex(SparkSession spark, FileSystem fs, String root, List<Member> members) throws IOException {
        List<Row> rows = spark.read()
                .parquet(root + "shards/index.parquet")
                .orderBy("shard", "offset")
                .collectAsList();
        assertEquals(members.size(), rows.size(), rows.toString());
        for (int i = 0; i < rows.size(); i++) {
            Row r = rows.get(i);
            Member m = members.get(i);
            assertEquals(m.shard(), r.getAs("shard"));
            assertEquals(m.name(), r.getAs("member"));
            assertTrue(m.name().startsWith(r.<String>getAs("id") + "."), r.toString());
            long offset = r.getAs("offset"), size = r.getAs("size");
            assertEquals(m.data().length, size, r.toString());
            byte[] at = new byte[(int) size];
            Path shard = new Path(root + m.shard());
            FileStatus st = fs.getFileStatus(shard);
            assertTrue(offset + size <= st.getLen(), r.toString());
            try (FSDataInputStream in = fs.open(shard)) {
                in.readFully(offset, at);
            }
            assertArrayEquals(m.data(), at, "the bytes at the indexed offset: " + r);
        }
    }

    private static List<String> names(List<Member> members) {
        return members.stream().map(m -> m.shard() + ":" + m.name()).toList();
    }
}
