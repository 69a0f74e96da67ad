import ai.fluxbatch.kernel.Backend;
import ai.fluxbatch.kernel.cpu.CpuBackend;
import ai.fluxbatch.model.snapshot.FluxSnapshot;
import ai.fluxbatch.model.text.T5Encoder;
import ai.fluxbatch.model.text.TextEncoderFiles;
import ai.fluxbatch.model.tokenizer.ClipTokenizer;
import ai.fluxbatch.model.tokenizer.T5Tokenizer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * Text-side throughput on the shipped miniature: both tokenizers over every PartiPrompts prompt (against a plain
 * whitespace split + hash lookup, the floor of any tokenizer, measured in the same run) and the T5 encoder's time
 * per prompt at the dev and schnell sequence lengths. Run with bench/text.sh.
 */
public final class TextBenchmark {
    public static void main(String[] args) throws Exception {
        Path model = Path.of(args.length > 0 ? args[0] : "models/flux-shapes-dev");
        Path parti = Path.of(args.length > 1 ? args[1] : "../shared/prompts/PartiPrompts.tsv");
        List<String> prompts = readPartiPrompts(parti);
        System.out.println("machine: " + cpuName() + ", " + Runtime.getRuntime().availableProcessors() + " cores; java "
                + Runtime.version());
        System.out.println("prompts: " + prompts.size() + " from " + parti + "; model: " + model);

        FluxSnapshot snapshot = FluxSnapshot.open(model);
        ClipTokenizer clip = ClipTokenizer.load(snapshot.clipTokenizer());
        T5Tokenizer t5 = T5Tokenizer.load(snapshot.t5Tokenizer());
        double floor = rate(prompts, TextBenchmark::whitespaceLookup);
        double clipRate = rate(prompts, p -> clip.encode(p).length);
        double t5Rate = rate(prompts, p -> t5.encode(p, 512).length);
        System.out.printf("%-34s %12s %14s%n", "tokenizer", "prompts/s", "vs floor");
        System.out.printf("%-34s %12.0f %13.2fx%n", "whitespace split + lookup (floor)", floor, 1.0);
        System.out.printf("%-34s %12.0f %13.2fx%n", "CLIP BPE (77 ids)", clipRate, clipRate / floor);
        System.out.printf("%-34s %12.0f %13.2fx%n", "T5 SentencePiece unigram (512 ids)", t5Rate, t5Rate / floor);

        try (Backend cpu = new CpuBackend()) {
            T5Encoder encoder = T5Encoder.load(TextEncoderFiles.in(snapshot.t5TextEncoder()), cpu);
            System.out.println("T5 encoder: " + encoder.config() + " on " + cpu.name());
            List<String> sample = prompts.subList(0, Math.min(64, prompts.size()));
            double base = 0;
            System.out.printf("%-28s %14s %12s%n", "T5 encode", "ms/prompt", "vs 512 x 1");
            for (int[] lengthBatch : new int[][] {{512, 1}, {256, 1}, {512, 8}}) {
                double ms = encodeMillisPerPrompt(encoder, t5, sample, lengthBatch[0], lengthBatch[1]);
                if (base == 0) {
                    base = ms;
                }
                System.out.printf(
                        "%-28s %14.2f %11.2fx%n",
                        "length " + lengthBatch[0] + ", batch " + lengthBatch[1], ms, base / ms);
            }
        }
    }

    interface Work {
        int run(String prompt);
    }

    /** Best of five passes over all prompts, after two warm-up passes. */
    static double rate(List<String> prompts, Work work) {
        long best = Long.MAX_VALUE;
        int sink = 0;
        for (int pass = 0; pass < 7; pass++) {
            long t0 = System.nanoTime();
            for (String p : prompts) {
                sink += work.run(p);
            }
            if (pass >= 2) {
                best = Math.min(best, System.nanoTime() - t0);
            }
        }
        if (sink == 42) {
            System.out.print("");
        }
        return prompts.size() / (best / 1e9);
    }

    private static final Map<String, Integer> WORDS = new HashMap<>();

    static int whitespaceLookup(String prompt) {
        int n = 0;
        for (String w : prompt.toLowerCase().split("\\s+")) {
            n += WORDS.computeIfAbsent(w, k -> WORDS.size());
        }
        return n;
    }

    static double encodeMillisPerPrompt(
            T5Encoder encoder, T5Tokenizer t5, List<String> prompts, int length, int batch) {
        long best = Long.MAX_VALUE;
        for (int pass = 0; pass < 3; pass++) {
            long t0 = System.nanoTime();
            for (int i = 0; i + batch <= prompts.size(); i += batch) {
                int[] ids = new int[length * batch];
                for (int b = 0; b < batch; b++) {
                    System.arraycopy(t5.encode(prompts.get(i + b), length), 0, ids, b * length, length);
                }
                encoder.encode(ids, batch).close();
            }
            best = Math.min(best, System.nanoTime() - t0);
        }
        return best / 1e6 / (prompts.size() / batch * batch);
    }

    static List<String> readPartiPrompts(Path tsv) throws Exception {
        List<String> lines = Files.readAllLines(tsv);
        int column = List.of(lines.get(0).split("\t")).indexOf("Prompt");
        List<String> prompts = new ArrayList<>();
        for (String line : lines.subList(1, lines.size())) {
            String[] cells = line.split("\t", -1);
            if (cells.length > column) {
                prompts.add(cells[column]);
            }
        }
        return prompts;
    }

    static String cpuName() throws Exception {
        Path info = Path.of("/proc/cpuinfo");
        return Files.exists(info)
                ? Files.readAllLines(info).stream()
                        .filter(l -> l.startsWith("model name"))
                        .map(l -> l.substring(l.indexOf(':') + 1).trim())
                        .findFirst()
                        .orElse("unknown CPU")
                : "unknown CPU";
    }
}
