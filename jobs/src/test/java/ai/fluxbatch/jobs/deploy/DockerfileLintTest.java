package ai.fluxbatch.jobs.deploy;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import org.junit.jupiter.api.Test;

/**
 * A light lint of deploy/docker/Dockerfile (no Docker engine runs here): pinned CUDA runtime base, every copied path
 * present or documented as a build output, let through by Dockerfile.dockerignore, and a non-root user.
 */
class DockerfileLintTest {
    private static final String DOCKERFILE = "deploy/docker/Dockerfile";

    record Instruction(int line, String keyword, String args) {}

    /** Instructions with continuation lines joined; comments and blank lines dropped. */
    static List<Instruction> parse(List<String> lines) {
        List<Instruction> out = new ArrayList<>();
        StringBuilder current = null;
        int start = 0;
        for (int i = 0; i < lines.size(); i++) {
            String line = lines.get(i).strip();
            if (line.startsWith("#") || (line.isEmpty() && current == null)) {
                continue;
            }
            if (current == null) {
                current = new StringBuilder();
                start = i + 1;
            }
            boolean continues = line.endsWith("\\");
            current.append(continues ? line.substring(0, line.length() - 1) : line)
                    .append(' ');
            if (!continues) {
                String text = current.toString().strip();
                int space = text.indexOf(' ');
                out.add(new Instruction(
                        start,
                        text.substring(0, space).toUpperCase(),
                        text.substring(space + 1).strip()));
                current = null;
            }
        }
        return out;
    }

    private static List<Instruction> instructions() throws Exception {
        return parse(Files.readAllLines(Scripts.file(DOCKERFILE)));
    }

    /** The comment lines before the first instruction. */
    private static String header() throws Exception {
        StringBuilder h = new StringBuilder();
        for (String line : Files.readAllLines(Scripts.file(DOCKERFILE))) {
            if (!line.startsWith("#") && !line.isBlank()) {
                break;
            }
            h.append(line).append('\n');
        }
        return h.toString();
    }

    private static List<String> words(String args) {
        return List.of(args.split("\\s+"));
    }

    @Test
    void baseImagesArePinned() throws Exception {
        List<Instruction> all = instructions();
        Instruction first = all.get(0);
        assertEquals("FROM", first.keyword(), "the first instruction must be FROM");
        assertTrue(
                first.args().matches("nvidia/cuda:\\d+\\.\\d+\\.\\d+-runtime-ubuntu\\d+\\.\\d+( AS \\w+)?"),
                "line " + first.line() + ": expected a pinned nvidia/cuda runtime image, got " + first.args());
        Set<String> stages = new HashSet<>();
        for (Instruction i : all) {
            if (!i.keyword().equals("FROM")) {
                continue;
            }
            List<String> w = words(i.args());
            String image = w.get(0);
            if (!stages.contains(image)) {
                assertTrue(
                        image.contains(":") && !image.endsWith(":latest") && !image.contains("$"),
                        "line " + i.line() + ": base image without a pinned tag: " + image);
            }
            if (w.size() == 3 && w.get(1).equalsIgnoreCase("AS")) {
                stages.add(w.get(2));
            }
        }
    }

    @Test
    void runsAsNonRootWithAnExecEntrypoint() throws Exception {
        List<Instruction> all = instructions();
        int lastFrom = -1;
        for (int k = 0; k < all.size(); k++) {
            if (all.get(k).keyword().equals("FROM")) {
                lastFrom = k;
            }
        }
        Optional<Instruction> user = Optional.empty();
        Optional<Instruction> entrypoint = Optional.empty();
        for (Instruction i : all.subList(lastFrom, all.size())) {
            if (i.keyword().equals("USER")) {
                assertTrue(entrypoint.isEmpty(), "line " + i.line() + ": USER after ENTRYPOINT");
                user = Optional.of(i);
            } else if (i.keyword().equals("ENTRYPOINT")) {
                entrypoint = Optional.of(i);
            }
        }
        assertTrue(user.isPresent(), "the final stage needs a USER before its ENTRYPOINT");
        String name = user.get().args().split(":")[0];
        assertFalse(
                name.equals("root") || name.equals("0"), "line " + user.get().line() + ": runs as root");
        assertTrue(
                entrypoint.isPresent() && entrypoint.get().args().startsWith("["),
                "expected an ENTRYPOINT in exec form, got " + entrypoint);
    }

    @Test
    void sparkDownloadIsVerified() throws Exception {
        String text = Files.readString(Scripts.file(DOCKERFILE));
        assertTrue(
                text.contains("ARG SPARK_SHA512") && text.contains("sha512sum -c"),
                "the Spark download must be checked against SPARK_SHA512");
        assertTrue(text.contains("ARG SPARK_VERSION=4.0.1"), "Spark 4.0.1, as the build uses");
    }

    @Test
    void everyCopiedPathExistsOrIsADocumentedBuildOutput() throws Exception {
        Path root = Scripts.root();
        String header = header();
        List<String> allowed = new ArrayList<>();
        for (String line : Files.readAllLines(Scripts.file("deploy/docker/Dockerfile.dockerignore"))) {
            if (line.startsWith("!")) {
                allowed.add(line.substring(1).strip());
            }
        }
        int copies = 0;
        for (Instruction i : instructions()) {
            if (!i.keyword().equals("COPY") && !i.keyword().equals("ADD")) {
                continue;
            }
            assertEquals("COPY", i.keyword(), "line " + i.line() + ": use COPY, not ADD");
            List<String> w = words(i.args());
            if (w.get(0).startsWith("--from=")) {
                continue;
            }
            copies++;
            for (String source : w.subList(0, w.size() - 1)) {
                if (source.startsWith("jobs/target/")) {
                    assertTrue(
                            header.contains(source),
                            "line " + i.line() + ": build output " + source
                                    + " is not named in the Dockerfile's header");
                } else {
                    assertTrue(
                            Files.exists(root.resolve(source)),
                            "line " + i.line() + ": " + source + " is not in the repository");
                }
                assertTrue(
                        allowed.stream().anyMatch(a -> source.equals(a) || source.startsWith(a + "/")),
                        "line " + i.line() + ": Dockerfile.dockerignore keeps " + source + " out of the build context");
            }
        }
        assertTrue(copies >= 4, "expected the jars, conf and deploy files to be copied");
    }

    @Test
    void discoveryScriptLandsWhereTheTemplateLooks() throws Exception {
        Map<String, String> expected = Map.of(
                "deploy/spark",
                "/opt/fluxbatch/deploy/spark",
                "jobs/target/fluxbatch-jobs.jar",
                "/opt/fluxbatch/jobs/target/fluxbatch-jobs.jar");
        for (var e : expected.entrySet()) {
            assertTrue(
                    instructions().stream()
                            .anyMatch(i ->
                                    i.keyword().equals("COPY") && i.args().equals(e.getKey() + " " + e.getValue())),
                    "expected COPY " + e.getKey() + " " + e.getValue()
                            + " (conf/spark-defaults-gpu.conf.template and deploy/spark-submit-fluxbatch use that path)");
        }
    }

    @Test
    void parserJoinsContinuationsAndSkipsComments() {
        List<Instruction> parsed =
                parse(List.of("# c", "FROM a:1 AS b", "", "RUN x \\", "  # inside", "  && y", "USER 185"));
        assertEquals(
                List.of("FROM", "RUN", "USER"),
                parsed.stream().map(Instruction::keyword).toList());
        assertEquals("x && y", parsed.get(1).args().replaceAll("\\s+", " "));
        assertEquals(4, parsed.get(1).line());
    }

    @Test
    void hadolint() throws Exception {
        Optional<Path> hadolint = ShellScriptsTest.onPath("hadolint");
        assumeTrue(hadolint.isPresent(), "hadolint is not installed on this machine: Dockerfile not linted by it");
        Scripts.Result r = Scripts.run(
                List.of(
                        hadolint.get().toString(),
                        "--failure-threshold",
                        "warning",
                        Scripts.file(DOCKERFILE).toString()),
                System.getenv());
        assertEquals(0, r.exit(), r::toString);
    }
}
