package ai.fluxbatch.jobs.cli;

import ai.fluxbatch.jobs.prompts.BuiltInPrompts;
import ai.fluxbatch.jobs.prompts.PromptRow;
import ai.fluxbatch.jobs.prompts.PromptSources;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import org.apache.spark.sql.SparkSession;
import picocli.CommandLine;
import picocli.CommandLine.Option;

/** The prompt options generate, calibrate and evaluate share: --prompt, --prompts, --prompt-column, --limit. */
public final class PromptOptions {
    @Option(names = "--prompt", paramLabel = "TEXT", description = "A prompt (repeatable).")
    List<String> prompts = new ArrayList<>();

    @Option(
            names = "--prompts",
            paramLabel = "URI|NAME",
            description = "A prompt dataset: a file, folder or glob of"
                    + " .txt (one a line), .jsonl (a 'prompt' field), .csv/.tsv (a header) or .parquet; local, hdfs:// or"
                    + " s3a://; or " + BuiltInPrompts.PAPER_7232
                    + ", the paper's calibration set shipped with fluxbatch (all"
                    + " 1,632 PartiPrompts and the 5,600 T2I-CompBench training prompts).")
    String uri;

    @Option(
            names = "--prompt-column",
            paramLabel = "NAME",
            description = "The prompt column of csv/tsv/jsonl/parquet (default: prompt, or Prompt).")
    String column;

    @Option(names = "--limit", paramLabel = "N", description = "Only the first N prompts.")
    Integer limit;

    /** Refuses a command line with no prompt at all, or a limit below 1. */
    void check(CommandLine cli) {
        if (prompts.isEmpty() && uri == null) {
            throw new CommandLine.ParameterException(
                    cli,
                    "no prompts: give --prompt TEXT (repeatable) or --prompts" + " URI (or --prompts "
                            + BuiltInPrompts.PAPER_7232 + ")");
        }
        if (limit != null) {
            OptionChecks.positive(cli, "--limit", limit);
        }
        OptionChecks.noCredentials(cli, "--prompts", uri);
    }

    /** The --prompt rows (source "cli"), then the dataset's, numbered in that order, cut to --limit. */
    List<PromptRow> rows(SparkSession spark, CommandLine cli) {
        List<PromptRow> rows = new ArrayList<>();
        for (String p : prompts) {
            rows.add(PromptRow.of(rows.size(), "cli", rows.size(), p, new LinkedHashMap<>()));
        }
        if (uri != null) {
            for (PromptRow r : PromptSources.read(uri, column, spark)) {
                rows.add(new PromptRow(rows.size(), r.source(), r.row(), r.prompt(), r.fields(), r.seed(), r.error()));
            }
        }
        if (limit != null) {
            rows = rows.subList(0, Math.min(limit, rows.size()));
        }
        if (rows.isEmpty()) {
            throw new CommandLine.ParameterException(cli, "the prompt dataset is empty");
        }
        return rows;
    }

    /** What the prompts were: the dataset URI (without user-info) or built-in name, else "cli". */
    String label() {
        return uri != null ? Redact.uri(uri) : "cli";
    }
}
