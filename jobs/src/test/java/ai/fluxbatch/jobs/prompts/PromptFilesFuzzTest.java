package ai.fluxbatch.jobs.prompts;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTimeoutPreemptively;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import ai.fluxbatch.model.Golden;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.TreeMap;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Mutated prompt files (txt, jsonl, csv, tsv), from a fixed seed: each must parse into rows (a bad row as an error
 * row) or fail with a {@link PromptFormatException} that names the file, within seconds; any other exception, a hang
 * or running out of memory fails the test, naming the case. {@code -Dfluxbatch.fuzz.cases=N} runs more cases (300 by
 * default), {@code -Dfluxbatch.fuzz.seed=S} others.
 */
class PromptFilesFuzzTest {
    private static final int CASES = Integer.getInteger("fluxbatch.fuzz.cases", 300);
    private static final long SEED = Long.getLong("fluxbatch.fuzz.seed", 20240613L);
    private static final byte[][] TOKENS = {
        {0},
        {(byte) 0xFF},
        {(byte) 0xC3},
        {(byte) 0xEF, (byte) 0xBB, (byte) 0xBF},
        {'"'},
        {'"', '"'},
        {'\t'},
        {','},
        {'\n'},
        {'\r'},
        {'\r', '\n'},
        {'{'},
        {'}'},
        {'['},
        {'\\'},
        {':'},
        {0x1B},
        {0x0C},
        "\u00e9".getBytes(StandardCharsets.UTF_8),
        "\uD83D\uDE00".getBytes(StandardCharsets.UTF_8),
        "\"prompt\"".getBytes(StandardCharsets.UTF_8),
        "seed".getBytes(StandardCharsets.UTF_8),
        "-1".getBytes(StandardCharsets.UTF_8),
        "1e999".getBytes(StandardCharsets.UTF_8),
    };

    @TempDir
    Path tmp;

    @Test
    void mutatedPromptFilesParseOrFailClearly() throws IOException {
        Path prompts = Golden.dir().resolveSibling("prompts");
        Map<String, List<byte[]>> seeds = new TreeMap<>(Map.of(
                "txt",
                        List.of(
                                bytes("a red circle\n\n  two  \nthree"),
                                head(prompts.resolve("t2i-compbench/color_val.txt"), 20)),
                "jsonl",
                        List.of(
                                bytes("{\"prompt\": \"a\", \"seed\": 3}\n{\"prompt\": \"b\", \"tags\": [1, {}]}\n"),
                                head(prompts.resolve("geneval/evaluation_metadata.jsonl"), 10)),
                "csv", List.of(bytes("id,prompt,seed\n1,\"a, b\",7\n2,\"say \"\"hi\"\"\nloud\",x\n3,,\n")),
                "tsv",
                        List.of(
                                bytes("prompt\tseed\nplain\t1\n\"quoted\"\t\n"),
                                head(prompts.resolve("PartiPrompts.tsv"), 20))));
        List<String> extensions = List.copyOf(seeds.keySet());
        Map<String, int[]> counts = new TreeMap<>(); // per extension: parsed files, rows, error rows, refused files
        long start = System.nanoTime();
        Random cases = new Random(SEED);
        for (int i = 0; i < CASES; i++) {
            Random random = new Random(cases.nextLong());
            String ext = extensions.get(random.nextInt(extensions.size()));
            List<byte[]> candidates = seeds.get(ext);
            byte[] data = mutate(candidates.get(random.nextInt(candidates.size())), random);
            Path file = Files.write(tmp.resolve("case-" + i + "." + ext), data);
            int[] count = counts.computeIfAbsent(ext, e -> new int[4]);
            String what = "case " + i + " (seed " + SEED + ", " + file.getFileName() + ")";
            try {
                List<PromptRow> rows = assertTimeoutPreemptively(
                        Duration.ofSeconds(10), () -> PromptFilesTest.read(file, null), what + " hangs");
                count[0]++;
                for (int r = 0; r < rows.size(); r++) {
                    PromptRow row = rows.get(r);
                    assertEquals(r, row.index(), what);
                    assertEquals(file.getFileName().toString(), row.source(), what);
                    assertTrue(row.prompt().length() <= 2 * PromptRow.MAX_PROMPT_CHARS, what);
                    assertTrue(row.error() != null || !row.prompt().isBlank(), what + ": a blank prompt without error");
                    count[1]++;
                    count[2] += row.error() != null ? 1 : 0;
                }
            } catch (PromptFormatException e) {
                assertTrue(
                        e.getMessage().contains(file.getFileName().toString()),
                        what + ": the message does not name the file: " + e.getMessage());
                count[3]++;
            } catch (Throwable t) {
                if (t instanceof org.opentest4j.AssertionFailedError) {
                    throw t;
                }
                fail(what + " threw " + t, t);
            }
            Files.delete(file);
        }
        StringBuilder report = new StringBuilder(String.format(
                "prompt file fuzz: %d cases (seed %d) in %.1f s:", CASES, SEED, (System.nanoTime() - start) / 1e9));
        counts.forEach((ext, c) -> report.append(
                String.format(" %s %d parsed (%d rows, %d error rows), %d refused;", ext, c[0], c[1], c[2], c[3])));
        System.out.println(report);
        assertEquals(CASES, counts.values().stream().mapToInt(c -> c[0] + c[3]).sum());
    }

    private static byte[] bytes(String s) {
        return s.getBytes(StandardCharsets.UTF_8);
    }

    private static byte[] head(Path file, int lines) throws IOException {
        return bytes(String.join("\n", Files.readAllLines(file).subList(0, lines)) + "\n");
    }

    /** One to four edits: a byte changed, a token inserted, a range deleted or doubled, a cut, rarely a huge run. */
    private static byte[] mutate(byte[] data, Random random) {
        byte[] out = data;
        for (int edits = 1 + random.nextInt(4); edits > 0; edits--) {
            int at = random.nextInt(out.length + 1);
            switch (random.nextInt(6)) {
                case 0 -> {
                    if (at < out.length) {
                        out = out.clone();
                        out[at] = (byte) random.nextInt(256);
                    }
                }
                case 1 -> out = insert(out, at, TOKENS[random.nextInt(TOKENS.length)]);
                case 2 -> {
                    int to = Math.min(out.length, at + random.nextInt(40));
                    out = insert(Arrays.copyOf(out, at), at, Arrays.copyOfRange(out, to, out.length));
                }
                case 3 ->
                    out = insert(out, at, Arrays.copyOfRange(out, at, Math.min(out.length, at + random.nextInt(80))));
                case 4 -> out = random.nextInt(4) == 0 ? Arrays.copyOf(out, at) : out;
                default -> {
                    if (random.nextInt(20) == 0) { // a long run: over the prompt limit, sometimes over the line limit
                        byte[] run = new byte[PromptRow.MAX_PROMPT_CHARS + random.nextInt(TextLines.MAX_LINE_BYTES)];
                        Arrays.fill(run, random.nextBoolean() ? (byte) 'x' : (byte) '"');
                        out = insert(out, at, run);
                    }
                }
            }
        }
        return out;
    }

    private static byte[] insert(byte[] data, int at, byte[] what) {
        byte[] out = new byte[data.length + what.length];
        System.arraycopy(data, 0, out, 0, at);
        System.arraycopy(what, 0, out, at, what.length);
        System.arraycopy(data, at, out, at + what.length, data.length - at);
        return out;
    }
}
