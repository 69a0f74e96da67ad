package ai.fluxbatch.model.tokenizer;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.fluxbatch.model.Golden;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import org.junit.jupiter.api.Test;

/** Every PartiPrompts prompt (the calibration set) tokenizes to 77 ids; no timing asserts. */
class ClipPartiPromptsTest {
    @Test
    void allPartiPrompts() throws IOException {
        Path tsv = Golden.dir().toAbsolutePath().getParent().resolve("prompts").resolve("PartiPrompts.tsv");
        List<String> lines = Files.readAllLines(tsv, StandardCharsets.UTF_8);
        int column = Arrays.asList(lines.get(0).split("\t", -1)).indexOf("Prompt");
        assertTrue(column >= 0, "no Prompt column in " + tsv);
        ClipTokenizer tok = ClipTokenizer.load(Golden.path("flux-tiny-dev", "tokenizer"));
        int prompts = 0;
        for (String line : lines.subList(1, lines.size())) {
            if (line.isEmpty()) {
                continue;
            }
            String prompt = line.split("\t", -1)[column];
            int[] ids = tok.encode(prompt);
            assertEquals(77, ids.length, prompt);
            assertEquals(49406, ids[0], prompt);
            assertEquals(49407, ids[76], prompt);
            prompts++;
        }
        assertEquals(1632, prompts);
    }
}
