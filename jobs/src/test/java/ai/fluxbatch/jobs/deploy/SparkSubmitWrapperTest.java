package ai.fluxbatch.jobs.deploy;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * deploy/spark-submit-fluxbatch against a fake Spark (a spark-submit that writes its arguments one a line) and a
 * fake fluxbatch build, so the command it makes is checked argument by argument.
 */
class SparkSubmitWrapperTest {
    private static final String WRAPPER = "deploy/spark-submit-fluxbatch";

    @TempDir
    Path dir;

    private Path sparkHome;
    private Path fluxbatchHome;
    private Path argsFile;

    @BeforeEach
    void fakes() throws Exception {
        sparkHome = dir.resolve("spark");
        argsFile = dir.resolve("spark-submit.args");
        Scripts.executable(
                sparkHome.resolve("bin/spark-submit"),
                "for a in \"$@\"; do printf '%s\\n' \"$a\"; done > '" + argsFile + "'\n");
        Files.createDirectories(sparkHome.resolve("jars"));
        Files.createFile(sparkHome.resolve("jars/jackson-core-2.18.2.jar"));

        fluxbatchHome = dir.resolve("fluxbatch");
        Path lib = Files.createDirectories(fluxbatchHome.resolve("jobs/target/lib"));
        Files.createFile(fluxbatchHome.resolve("jobs/target/fluxbatch-jobs.jar"));
        for (String jar : List.of(
                "fluxbatch-model-0.1.0-SNAPSHOT.jar",
                "picocli-4.7.7.jar",
                "spark-core_2.13-4.0.1.jar",
                "jackson-core-2.18.2.jar")) {
            Files.createFile(lib.resolve(jar));
        }
        Files.createDirectories(fluxbatchHome.resolve("conf"));
        Files.writeString(
                fluxbatchHome.resolve("conf/spark-defaults-gpu.conf.template"), "spark.task.resource.gpu.amount 1\n");
    }

    private Map<String, String> env() {
        Map<String, String> env = new HashMap<>();
        env.put("PATH", "/usr/bin:/bin");
        env.put("SPARK_HOME", sparkHome.toString());
        env.put("FLUXBATCH_HOME", fluxbatchHome.toString());
        return env;
    }

    private Scripts.Result wrapper(Map<String, String> env, String... args) throws Exception {
        List<String> command = new ArrayList<>(List.of(Scripts.file(WRAPPER).toString()));
        command.addAll(List.of(args));
        return Scripts.run(command, env);
    }

    private List<String> submittedArgs() throws Exception {
        assertTrue(Files.exists(argsFile), "the fake spark-submit did not run");
        return Files.readAllLines(argsFile);
    }

    private String jar(String name) {
        return fluxbatchHome.resolve("jobs/target/lib/" + name).toString();
    }

    @Test
    void wrapperIsExecutable() {
        assertTrue(
                Files.isExecutable(Scripts.file(WRAPPER)),
                WRAPPER + " must be executable (chmod +x; git keeps the mode)");
    }

    @Test
    void runsSparkSubmitWithClassJarsPropertiesAndTheFluxbatchArguments() throws Exception {
        Scripts.Result r = wrapper(
                env(),
                "--master",
                "spark://h:7077",
                "--conf",
                "spark.executor.instances=2",
                "--",
                "generate",
                "--prompt",
                "a red circle, it's round",
                "--output",
                "s3a://bucket/run");
        assertEquals(0, r.exit(), r::toString);
        String appJar = fluxbatchHome.resolve("jobs/target/fluxbatch-jobs.jar").toString();
        assertEquals(
                List.of(
                        "--class",
                        "ai.fluxbatch.jobs.Main",
                        "--properties-file",
                        fluxbatchHome
                                .resolve("conf/spark-defaults-gpu.conf.template")
                                .toString(),
                        // not Spark's own modules, not what $SPARK_HOME/jars already has
                        "--jars",
                        jar("fluxbatch-model-0.1.0-SNAPSHOT.jar") + "," + jar("picocli-4.7.7.jar"),
                        "--master",
                        "spark://h:7077",
                        "--conf",
                        "spark.executor.instances=2",
                        appJar,
                        "generate",
                        "--prompt",
                        "a red circle, it's round",
                        "--output",
                        "s3a://bucket/run"),
                submittedArgs());
    }

    @Test
    void dryRunPrintsTheCommandAndRunsNothing() throws Exception {
        Scripts.Result r = wrapper(
                env(),
                "--dry-run",
                "--master",
                "spark://h:7077",
                "--",
                "generate",
                "--prompt",
                "it's round",
                "--output",
                "out");
        assertEquals(0, r.exit(), r::toString);
        assertFalse(Files.exists(argsFile), "--dry-run must not run spark-submit");
        String line = r.stdout().strip();
        assertTrue(line.startsWith(sparkHome.resolve("bin/spark-submit") + " --class ai.fluxbatch.jobs.Main "), line);
        assertTrue(
                line.contains(
                        " --properties-file " + fluxbatchHome.resolve("conf/spark-defaults-gpu.conf.template") + " "),
                line);
        String appJar = fluxbatchHome.resolve("jobs/target/fluxbatch-jobs.jar").toString();
        assertTrue(line.endsWith(" " + appJar + " generate --prompt 'it'\\''s round' --output out"), line);

        // What it prints is a command the shell runs as is: the same arguments reach spark-submit.
        Scripts.Result ran = Scripts.run(List.of(Scripts.bash(), "-c", line), env());
        assertEquals(0, ran.exit(), ran::toString);
        List<String> args = submittedArgs();
        assertEquals(
                List.of(appJar, "generate", "--prompt", "it's round", "--output", "out"),
                args.subList(args.size() - 6, args.size()));
    }

    @Test
    void anEditedCopyOfTheTemplateWinsAndAnExplicitPropertiesFileReplacesBoth() throws Exception {
        Path edited = fluxbatchHome.resolve("conf/spark-defaults-gpu.conf");
        Files.writeString(edited, "spark.executor.memory 8g\n");
        assertEquals(0, wrapper(env(), "--", "generate").exit());
        List<String> args = submittedArgs();
        assertEquals(edited.toString(), args.get(args.indexOf("--properties-file") + 1));

        Path mine = Files.writeString(dir.resolve("mine.conf"), "spark.executor.memory 4g\n");
        assertEquals(
                0,
                wrapper(env(), "--properties-file", mine.toString(), "--", "generate")
                        .exit());
        args = submittedArgs();
        assertEquals(1, args.stream().filter("--properties-file"::equals).count(), args::toString);
        assertEquals(mine.toString(), args.get(args.indexOf("--properties-file") + 1));
    }

    @Test
    void kubernetesUsesTheJarInsideTheImage() throws Exception {
        Scripts.Result r = wrapper(env(), "--master", "k8s://https://kube:6443", "--", "generate");
        assertEquals(0, r.exit(), r::toString);
        List<String> args = submittedArgs();
        assertFalse(args.contains("--jars"), args::toString);
        assertEquals(
                List.of("local:///opt/fluxbatch/jobs/target/fluxbatch-jobs.jar", "generate"),
                args.subList(args.size() - 2, args.size()));
    }

    @Test
    void findsSparkSubmitOnPathWithoutSparkHome() throws Exception {
        Map<String, String> env = env();
        env.remove("SPARK_HOME");
        env.put("PATH", sparkHome.resolve("bin") + ":/usr/bin:/bin");
        Scripts.Result r = wrapper(env, "--", "generate");
        assertEquals(0, r.exit(), r::toString);
        // $SPARK_HOME/jars, found from spark-submit's location, still filters the jars
        String jars = submittedArgs().get(submittedArgs().indexOf("--jars") + 1);
        assertFalse(jars.contains("jackson-core"), jars);
    }

    @Test
    void noSparkIsAClearError() throws Exception {
        Map<String, String> env = env();
        env.remove("SPARK_HOME");
        Scripts.Result r = wrapper(env, "--", "generate");
        assertEquals(1, r.exit(), r::toString);
        assertTrue(r.stderr().contains("spark-submit not found") && r.stderr().contains("SPARK_HOME"), r::toString);
    }

    @Test
    void missingSeparatorOrJarIsAClearError() throws Exception {
        Scripts.Result r = wrapper(env(), "--master", "local", "generate");
        assertEquals(2, r.exit(), r::toString);
        assertTrue(r.stderr().contains("expected '--'"), r::toString);

        Files.delete(fluxbatchHome.resolve("jobs/target/fluxbatch-jobs.jar"));
        r = wrapper(env(), "--", "generate");
        assertEquals(1, r.exit(), r::toString);
        assertTrue(
                r.stderr().contains("no application jar at " + fluxbatchHome.resolve("jobs/target/fluxbatch-jobs.jar")),
                r::toString);
        assertFalse(Files.exists(argsFile));
    }
}
