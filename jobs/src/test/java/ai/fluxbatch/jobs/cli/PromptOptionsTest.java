package ai.fluxbatch.jobs.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;

import ai.fluxbatch.jobs.prompts.PromptRow;
import java.util.List;
import org.junit.jupiter.api.Test;
import picocli.CommandLine;

class PromptOptionsTest {
    @Test
    void aPromptGivenOnTheCommandLineHasTheSameLimitsAsOneFromAFile() {
        PromptOptions options = new PromptOptions();
        options.prompts.add("a red circle");
        options.prompts.add("x".repeat(PromptRow.MAX_PROMPT_CHARS + 1));
        options.prompts.add(" ");
        List<PromptRow> rows = options.rows(null, new CommandLine(CommandLine.Model.CommandSpec.create()));
        assertEquals(null, rows.get(0).error());
        assertEquals(
                "prompt has 10,001 characters, more than the limit of 10,000",
                rows.get(1).error());
        assertEquals(PromptRow.MAX_PROMPT_CHARS, rows.get(1).prompt().length());
        assertEquals("empty prompt", rows.get(2).error());
    }
}
