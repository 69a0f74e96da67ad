package ai.fluxbatch.jobs.cli;

import ai.fluxbatch.model.JsonFiles;
import ai.fluxbatch.model.ModelException;
import ai.fluxbatch.model.snapshot.FluxSnapshot;
import ai.fluxbatch.model.tokenizer.ClipTokenizer;
import ai.fluxbatch.model.tokenizer.T5Tokenizer;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Callable;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/** {@code fluxbatch debug tokenize}: CLIP and T5 token ids of prompts, as JSON on stdout. */
@Command(
        name = "tokenize",
        mixinStandardHelpOptions = true,
        description = {
            "Tokenize prompts with the snapshot's CLIP (tokenizer/) and T5 (tokenizer_2/) tokenizers.",
            "Prints {\"clip_input_ids\": [[...]], \"t5_input_ids\": [[...]]}, one row per prompt, in order."
        })
public final class DebugTokenizeCommand implements Callable<Integer> {
    @CommandLine.Mixin
    ModelOption model;

    @Option(
            names = "--prompts-file",
            required = true,
            paramLabel = "PROMPTS.json",
            description = "A JSON list of prompt strings.")
    Path promptsFile;

    @Option(
            names = "--t5-max-length",
            paramLabel = "N",
            description = "T5 sequence length (default: 512 for FLUX.1-dev, 256 for -schnell).")
    Integer t5MaxLength;

    @CommandLine.Spec
    CommandLine.Model.CommandSpec spec;

    /** Far beyond the 512 tokens FLUX.1 was trained with; bounds the ids printed per prompt. */
    static final int MAX_T5_LENGTH = 65_536;

    @Override
    public Integer call() throws Exception {
        if (t5MaxLength != null) {
            OptionChecks.range(
                    spec.commandLine(), "--t5-max-length", t5MaxLength, 1, MAX_T5_LENGTH, "FLUX.1 uses 512 at most");
        }
        List<String> prompts = readPrompts(promptsFile);
        FluxSnapshot snapshot = FluxSnapshot.open(model.resolve());
        int t5Length = t5MaxLength != null ? t5MaxLength : snapshot.t5MaxLength();
        ClipTokenizer clip = ClipTokenizer.load(snapshot.clipTokenizer());
        T5Tokenizer t5 = T5Tokenizer.load(snapshot.t5Tokenizer());
        ObjectMapper json = new ObjectMapper();
        ObjectNode out = json.createObjectNode();
        ArrayNode clipIds = out.putArray("clip_input_ids");
        ArrayNode t5Ids = out.putArray("t5_input_ids");
        for (String prompt : prompts) {
            ArrayNode c = clipIds.addArray();
            for (int id : clip.encode(prompt)) {
                c.add(id);
            }
            ArrayNode t = t5Ids.addArray();
            for (int id : t5.encode(prompt, t5Length)) {
                t.add(id);
            }
        }
        spec.commandLine().getOut().println(json.writeValueAsString(out));
        return 0;
    }

    static List<String> readPrompts(Path file) {
        JsonNode node = JsonFiles.readAny(file, "a JSON list of prompt strings");
        if (!node.isArray()) {
            throw new ModelException(
                    file + " holds a JSON " + node.getNodeType().toString().toLowerCase(java.util.Locale.ROOT)
                            + ", expected a JSON list of prompt strings");
        }
        List<String> prompts = new ArrayList<>();
        for (int i = 0; i < node.size(); i++) {
            if (!node.get(i).isTextual()) {
                throw new ModelException(file + ": entry " + i + " is " + node.get(i) + ", expected a string");
            }
            prompts.add(node.get(i).asText());
        }
        return prompts;
    }
}
