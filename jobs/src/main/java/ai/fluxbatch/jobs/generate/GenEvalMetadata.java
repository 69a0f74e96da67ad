package ai.fluxbatch.jobs.generate;

import ai.fluxbatch.jobs.output.Locations;
import ai.fluxbatch.jobs.prompts.PromptRow;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.fs.FSDataOutputStream;
import org.apache.hadoop.fs.FileSystem;
import org.apache.hadoop.fs.Path;

/** GenEval's per-prompt {@code <index, 5 digits>/metadata.jsonl}: the prompt's line of evaluation_metadata.jsonl. */
public final class GenEvalMetadata {
    private GenEvalMetadata() {}

    public static void write(List<PromptRow> rows, String output, Configuration conf) {
        Path root = Locations.path(output.endsWith("/") ? output : output + "/");
        try {
            FileSystem fs = root.getFileSystem(conf);
            fs.setWriteChecksum(false); // no .metadata.jsonl.crc beside each file on file://, as ImageStore
            for (PromptRow r : rows) {
                String line = r.fields()
                        .getOrDefault(
                                "source_json", new ObjectMapper().writeValueAsString(Map.of("prompt", r.prompt())));
                try (FSDataOutputStream out =
                        fs.create(new Path(root, String.format(Locale.ROOT, "%05d/metadata.jsonl", r.index())), true)) {
                    out.write((line + "\n").getBytes(StandardCharsets.UTF_8));
                }
            }
        } catch (IOException e) {
            throw new UncheckedIOException("cannot write GenEval metadata under " + output + ": " + e.getMessage(), e);
        }
    }
}
