package ai.fluxbatch.jobs.cli;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.fluxbatch.model.Golden;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Outputs that must not replace what they should not: device nodes, folders, the inputs, unrelated folders. */
class OutputSafetyTest {
    @TempDir
    Path tmp;

    private final Path vaeCase = Golden.path("cases", "flux-tiny-dev", "vae.safetensors");

    @Test
    void debugOutputsReplaceOnlyRegularFiles() throws IOException {
        // a fifo stands for /dev/null and the other device nodes: a test that fails must not replace a real one
        Path fifo = fifo("out.safetensors");
        CliRun run = CliRun.of(
                "debug", "noise", "--seed", "1", "--height", "16", "--width", "16", "--output", fifo.toString());
        assertEquals(2, run.exitCode(), run.err());
        assertTrue(
                run.err().contains("--output " + fifo + " is a device, fifo or socket, not a regular file"), run.err());
        assertTrue(Files.exists(fifo) && !Files.isRegularFile(fifo), fifo + " was replaced");

        Path folder = Files.createDirectories(tmp.resolve("folder.safetensors"));
        Path link = Files.createSymbolicLink(tmp.resolve("link.safetensors"), folder);
        for (Path out : List.of(folder, link)) {
            run = vaeDecode(vaeCase, out);
            assertEquals(2, run.exitCode(), run.err());
            assertTrue(
                    run.err().contains("--output " + out + " is a " + (out == link ? "link to a " : "") + "folder"),
                    run.err());
        }
        assertTrue(Files.isDirectory(folder) && Files.isSymbolicLink(link));
    }

    @Test
    void debugOutputIsNeverTheInputThroughAnyLink() throws IOException {
        Path in = Files.copy(vaeCase, tmp.resolve("in.safetensors"));
        byte[] before = Files.readAllBytes(in);
        Path symlink = Files.createSymbolicLink(tmp.resolve("sym.safetensors"), in);
        Path hardlink = Files.createLink(tmp.resolve("hard.safetensors"), in);
        Files.createDirectories(tmp.resolve("x"));
        for (Path out :
                List.of(in, symlink, hardlink, tmp.resolve("x").resolve("..").resolve("in.safetensors"))) {
            CliRun run = vaeDecode(in, out);
            assertEquals(2, run.exitCode(), run.err());
            assertTrue(run.err().contains("--output " + out + " is the --input " + in), run.err());
        }
        assertArrayEquals(before, Files.readAllBytes(in));
        assertTrue(Files.isSymbolicLink(symlink));
        assertEquals(0, vaeDecode(in, tmp.resolve("out.safetensors")).exitCode());
    }

    @Test
    void debugOutputsNeverGoIntoTheModelFolder() throws IOException {
        Path model = copyOf(Golden.path("flux-tiny-dev"), tmp.resolve("model"));
        List<String> before = listing(model);
        Path forward = Golden.path("cases", "flux-tiny-dev", "forward-1.safetensors");
        for (String weights : List.of("flux1-dev.safetensors", "ae.safetensors")) {
            Path out = model.resolve(weights);
            CliRun run = CliRun.of(
                    "debug",
                    "transformer",
                    "--model",
                    model.toString(),
                    "--input",
                    forward.toString(),
                    "--output",
                    out.toString());
            assertEquals(2, run.exitCode(), run.err());
            assertTrue(run.err().contains("--output " + out + " is inside --model " + model), run.err());
        }
        CliRun run = CliRun.of(
                "debug",
                "vae-decode",
                "--model",
                model.toString(),
                "--input",
                vaeCase.toString(),
                "--output",
                model.resolve("vae").resolve("x.safetensors").toString());
        assertEquals(2, run.exitCode(), run.err());
        assertEquals(before, listing(model));
    }

    @Test
    void quantizeNeverWritesOverOrIntoItsModel() throws IOException {
        Path model = copyOf(Golden.path("flux-tiny-schnell"), tmp.resolve("model"));
        Path link = Files.createSymbolicLink(tmp.resolve("model-link"), model);
        List<String> before = listing(model);
        for (String out :
                List.of(model.toString(), link.toString(), model.resolve("q").toString(), tmp.toString())) {
            CliRun run = CliRun.of("quantize", "--model", model.toString(), "--output", out, "--overwrite");
            assertEquals(2, run.exitCode(), run.err());
            assertTrue(
                    run.err().contains("--output " + out)
                            && run.err().contains("--model " + model)
                            && run.err().contains("could replace the source's files"),
                    run.err());
        }
        assertEquals(before, listing(model));
    }

    @Test
    void quantizeOverwritesOnlyAFolderItMade() throws IOException {
        Path mine = Files.createDirectories(tmp.resolve("photos"));
        Files.writeString(mine.resolve("holiday.jpg"), "precious");
        String model = Golden.path("flux-tiny-schnell").toString();
        CliRun run = CliRun.of("quantize", "--model", model, "--output", mine.toString(), "--overwrite");
        assertEquals(2, run.exitCode(), run.err());
        assertTrue(
                run.err()
                        .contains("--output " + mine + " exists and was not made by fluxbatch (it has no "
                                + OutputFolders.MARKER + " file)"),
                run.err());
        assertEquals("precious", Files.readString(mine.resolve("holiday.jpg")));

        Path q = tmp.resolve("q");
        assertEquals(
                0,
                CliRun.of("quantize", "--model", model, "--output", q.toString())
                        .exitCode());
        assertTrue(OutputFolders.isMarked(q), "no marker in " + q);
        run = CliRun.of("quantize", "--model", model, "--output", q.toString(), "--overwrite");
        assertEquals(0, run.exitCode(), run.err());
        assertTrue(OutputFolders.isMarked(q), "no marker in " + q);
    }

    @Test
    void calibrateAndEvaluateReportsReplaceOnlyRegularFilesThatAreNoInput() throws IOException {
        String model = Golden.path("flux-tiny-dev").toString();
        Path prompts = Files.writeString(tmp.resolve("prompts.txt"), "a red circle\n");
        CliRun run = CliRun.of(
                "calibrate",
                "--model",
                model,
                "--prompts",
                prompts.toString(),
                "--output",
                prompts.toString(),
                "--overwrite",
                "--steps",
                "1");
        assertEquals(2, run.exitCode(), run.err());
        assertTrue(run.err().contains("--output " + prompts + " is the --prompts " + prompts), run.err());
        Path fifo = fifo("stats.safetensors");
        run = CliRun.of(
                "calibrate",
                "--model",
                model,
                "--prompt",
                "x",
                "--output",
                fifo.toString(),
                "--overwrite",
                "--steps",
                "1");
        assertEquals(2, run.exitCode(), run.err());
        assertTrue(run.err().contains("--output " + fifo + " is a device"), run.err());
        assertTrue(!Files.isRegularFile(fifo), fifo + " was replaced");
        assertEquals("a red circle\n", Files.readString(prompts));

        Files.createDirectories(tmp.resolve("report.md"));
        run = CliRun.of(
                "evaluate",
                "--reference",
                model,
                "--quantized",
                model,
                "--prompt",
                "x",
                "--steps",
                "1",
                "--output",
                tmp.resolve("report").toString());
        assertEquals(2, run.exitCode(), run.err());
        assertTrue(run.err().contains("--output " + tmp.resolve("report.md") + " is a folder"), run.err());
        Path json = Files.createSymbolicLink(tmp.resolve("r.json"), prompts);
        run = CliRun.of(
                "evaluate",
                "--reference",
                model,
                "--quantized",
                model,
                "--prompts",
                prompts.toString(),
                "--steps",
                "1",
                "--output",
                tmp.resolve("r").toString());
        assertEquals(2, run.exitCode(), run.err());
        assertTrue(run.err().contains("--output " + json + " is the --prompts " + prompts), run.err());
        assertEquals("a red circle\n", Files.readString(prompts));
    }

    private Path fifo(String name) throws IOException {
        Path fifo = tmp.resolve(name);
        try {
            assertEquals(
                    0,
                    new ProcessBuilder("mkfifo", fifo.toString())
                            .inheritIO()
                            .start()
                            .waitFor());
        } catch (InterruptedException e) {
            throw new IOException(e);
        }
        return fifo;
    }

    private CliRun vaeDecode(Path in, Path out) {
        return CliRun.of(
                "debug",
                "vae-decode",
                "--model",
                Golden.path("flux-tiny-dev").toString(),
                "--input",
                in.toString(),
                "--output",
                out.toString());
    }

    private static Path copyOf(Path from, Path to) throws IOException {
        try (Stream<Path> s = Files.walk(from)) {
            for (Path p : s.toList()) {
                Path dst = to.resolve(from.relativize(p).toString());
                if (Files.isDirectory(p)) {
                    Files.createDirectories(dst);
                } else {
                    Files.copy(p, dst);
                }
            }
        }
        return to;
    }

    private static List<String> listing(Path dir) throws IOException {
        try (Stream<Path> s = Files.walk(dir)) {
            return s.map(p -> dir.relativize(p) + ":"
                            + (Files.isRegularFile(p) ? p.toFile().length() : -1))
                    .sorted()
                    .toList();
        }
    }
}
