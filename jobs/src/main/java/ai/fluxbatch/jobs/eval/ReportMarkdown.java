package ai.fluxbatch.jobs.eval;

import ai.fluxbatch.model.eval.CandidateResult;
import ai.fluxbatch.model.eval.QuantizationInfo;
import java.util.Locale;

/** The report as Markdown: what was run, one row per candidate, then the per-step errors (steps x candidates). */
public final class ReportMarkdown {
    private ReportMarkdown() {}

    public static String render(EvaluationReport r) {
        StringBuilder s = new StringBuilder();
        header(s, r);
        s.append('\n');
        s.append("| candidate | method | calibration | ternary | final latent rel L2 | PSNR (dB) | mean image PSNR (dB)"
                + " | mean step rel L2 |\n");
        s.append("| --- | --- | --- | ---: | ---: | ---: | ---: | ---: |\n");
        for (CandidateResult c : r.candidates()) {
            QuantizationInfo q = c.quantization();
            s.append(String.format(
                    Locale.ROOT,
                    "| %s | %s | %s | %.2f %% | %.4f | %s | %s | %.4f |%n",
                    name(c),
                    q.method(),
                    q.calibrationSummary(),
                    100 * q.ternaryFraction(),
                    c.finalLatentError(),
                    db(c.psnr()),
                    db(c.meanImagePsnr()),
                    c.meanStepError()));
        }
        s.append("\nTransformer output rel L2 per step, on the reference's trajectory:\n\n| step | t |");
        StringBuilder rule = new StringBuilder("| ---: | ---: |");
        for (CandidateResult c : r.candidates()) {
            s.append(' ').append(name(c)).append(" |");
            rule.append(" ---: |");
        }
        s.append('\n').append(rule).append('\n');
        for (int step = 0; step + 1 < r.timesteps().length; step++) {
            s.append(String.format(Locale.ROOT, "| %d | %.4f |", step, r.timesteps()[step]));
            for (CandidateResult c : r.candidates()) {
                s.append(String.format(Locale.ROOT, " %.4f |", c.stepErrors()[step]));
            }
            s.append('\n');
        }
        return s.toString();
    }

    private static String name(CandidateResult c) {
        return c.model().getFileName() == null
                ? c.model().toString()
                : c.model().getFileName().toString();
    }

    private static String db(double v) {
        return Double.isInfinite(v) ? "inf" : String.format(Locale.ROOT, "%.2f", v);
    }

    /** The lines above the tables: reference, machine, problem size, wall time. */
    private static void header(StringBuilder s, EvaluationReport r) {
        var p = r.params();
        s.append("- reference: ")
                .append(r.reference())
                .append(" (quantization: ")
                .append(r.referenceQuantization().method())
                .append(")\n");
        s.append("- machine: ").append(r.machine()).append('\n');
        s.append(String.format(
                Locale.ROOT,
                "- problem: %d prompts%s, %d steps, %d x %d, guidance %s, seeds %d..%d," + " batch %d, T5 length %d%n",
                r.prompts(),
                r.skippedPrompts() == 0
                        ? ""
                        : " (" + r.skippedPrompts() + " bad row" + (r.skippedPrompts() == 1 ? "" : "s") + " skipped)",
                p.steps(),
                p.height(),
                p.width(),
                p.guidance(),
                r.firstSeed(),
                r.firstSeed() + r.prompts() - 1,
                r.batchSize(),
                r.maxSequenceLength()));
        s.append(String.format(
                Locale.ROOT,
                "- wall time: %.1f s (loading %.1f s, evaluating %.1f s)%n",
                r.loadSeconds() + r.evaluateSeconds(),
                r.loadSeconds(),
                r.evaluateSeconds()));
    }
}
