package ai.fluxbatch.jobs.cli;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.fluxbatch.jobs.api.ImageGeneratorTest;
import ai.fluxbatch.jobs.model.ModelCache;
import ai.fluxbatch.model.Golden;
import ai.fluxbatch.model.Sha256;
import ai.fluxbatch.model.calib.CalibrationFile;
import ai.fluxbatch.model.calib.CalibrationStats;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.io.InputStream;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import java.util.TreeSet;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Collectors;
import java.util.stream.Stream;
import org.apache.spark.sql.SparkSession;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code fluxbatch generate --master spark://...} on a Spark standalone cluster on this machine: a master and two
 * workers (1 core, 1500 MB each) started here as child JVMs from the Spark jars on the test classpath, so the job runs
 * in two executor JVMs. Every image is written exactly once, both executors work, and each loads the engine once;
 * calibrate and quantize give what they give in local mode. Each worker stands for a node of its own with its own
 * model cache ({@code FLUXBATCH_MODEL_CACHE} in its environment, which its executors inherit).
 */
class StandaloneClusterTest {
    @TempDir
    static Path tmp;

    private static final List<Process> PROCESSES = new ArrayList<>();
    private static final Map<String, Path> LOGS = new LinkedHashMap<>();
    private static String masterUrl;
    private static String jvmOptions;

    @BeforeAll
    static void startCluster() throws Exception {
        try (InputStream in = StandaloneClusterTest.class.getResourceAsStream("/ai/fluxbatch/jobs/jvm.options")) {
            assertNotNull(in, "jvm.options resource missing: build with Maven");
            jvmOptions = new String(in.readAllBytes(), StandardCharsets.UTF_8).strip();
        }
        // A worker launches executors with $SPARK_HOME/jars/* on their class path: an empty folder here, since
        // spark.executor.extraClassPath gives them this JVM's class path (everything runs on this machine).
        Path sparkHome = Files.createDirectories(tmp.resolve("spark-home").resolve("jars"))
                .getParent();
        int port = freePort();
        masterUrl = "spark://127.0.0.1:" + port;
        start(
                "master",
                sparkHome,
                Map.of(),
                "org.apache.spark.deploy.master.Master",
                "--host",
                "127.0.0.1",
                "--port",
                Integer.toString(port),
                "--webui-port",
                "0");
        waitFor("master", () -> listening(port), "listening on port " + port);
        for (int i = 1; i <= 2; i++) {
            Path work = Files.createDirectories(tmp.resolve("work-" + i));
            String name = "worker-" + i;
            start(
                    name,
                    sparkHome,
                    Map.of(ModelCache.ENV, nodeCache(i).toString()),
                    "org.apache.spark.deploy.worker.Worker",
                    masterUrl,
                    "--host",
                    "127.0.0.1",
                    "--port",
                    "0",
                    "--webui-port",
                    "0",
                    "--cores",
                    "1",
                    "--memory",
                    "1500m",
                    "--work-dir",
                    work.toString());
        }
        for (int i = 1; i <= 2; i++) {
            String name = "worker-" + i;
            waitFor(
                    name,
                    () -> Files.readString(LOGS.get(name)).contains("Successfully registered with master"),
                    "registered with the master");
        }
    }

    @AfterAll
    static void stopCluster() throws InterruptedException {
        for (int i = PROCESSES.size() - 1; i >= 0; i--) { // workers (and their executors) first, then the master
            Process p = PROCESSES.get(i);
            p.descendants().forEach(ProcessHandle::destroy);
            p.destroy();
            if (!p.waitFor(15, TimeUnit.SECONDS)) {
                p.descendants().forEach(ProcessHandle::destroyForcibly);
                p.destroyForcibly().waitFor(10, TimeUnit.SECONDS);
            }
        }
    }

    @Test
    void twoExecutorsWriteEveryImageOnceAndLoadTheEngineOnceEach() throws Exception {
        Path out = tmp.resolve("out");
        CliRun run = withSystemProperties(
                clusterConf(),
                () -> CliRun.of(
                        "generate",
                        "--master",
                        masterUrl,
                        "--model",
                        Golden.path("flux-tiny-dev").toString(),
                        "--prompt",
                        "a red circle",
                        "--prompt",
                        "a blue square",
                        "--prompt",
                        "a green triangle",
                        "--prompt",
                        "a yellow star",
                        "--images-per-prompt",
                        "2",
                        "--images-per-partition",
                        "2",
                        "--steps",
                        "1",
                        "--height",
                        "32",
                        "--width",
                        "32",
                        "--output",
                        out.toString()));
        assertEquals(0, run.exitCode(), run.err() + run.out() + logs());
        assertTrue(
                run.out().contains("8 images: 8 written, 0 skipped")
                        && run.out().contains(", 0 failed"),
                run.out());
        // the workers have no GPU: under --device auto the job says so, and does not pass for a GPU run
        assertTrue(run.out().contains("0 on a GPU, 8 on a CPU"), run.out());
        assertTrue(run.err().contains("0 on a GPU and 8 on a CPU"), "progress line: " + run.err());

        List<JsonNode> rows = new ArrayList<>();
        try (Stream<Path> files = Files.list(out.resolve("metadata").resolve("jsonl"))) {
            for (Path f : files.filter(p -> p.getFileName().toString().matches("part-.*\\.json"))
                    .toList()) {
                for (String line : Files.readAllLines(f)) {
                    if (!line.isBlank()) {
                        rows.add(new ObjectMapper().readTree(line));
                    }
                }
            }
        }
        assertEquals(8, rows.size(), rows.toString());
        Set<String> ids = new HashSet<>();
        Map<String, Integer> maxLoads = new TreeMap<>();
        Map<String, Integer> imagesPerExecutor = new HashMap<>();
        for (JsonNode r : rows) {
            assertEquals("ok", r.get("status").asText(), r.toString());
            assertEquals("cpu", r.get("device").asText(), r.toString());
            assertTrue(ids.add(r.get("id").asText()), "id twice: " + r);
            String path = r.get("path").asText();
            Path png = path.startsWith("file:") ? Path.of(java.net.URI.create(path)) : Path.of(path);
            assertTrue(Files.isRegularFile(png), "missing " + png);
            String executor = r.get("executor").asText();
            maxLoads.merge(executor, r.get("engine_loads").asInt(), Math::max);
            imagesPerExecutor.merge(executor, 1, Integer::sum);
        }
        try (Stream<Path> s = Files.list(out.resolve("images"))) {
            assertEquals(8, s.filter(p -> p.toString().endsWith(".png")).count(), "one PNG per image, no more");
        }
        assertEquals(2, maxLoads.size(), "rows from two executors: " + imagesPerExecutor);
        assertTrue(!maxLoads.containsKey("driver"), "ran in the driver: " + maxLoads);
        maxLoads.forEach((executor, loads) -> assertEquals(1, loads, "engine loads on executor " + executor));
    }

    /**
     * {@code fluxbatch calibrate} over two executor JVMs: partial statistics computed in each, merged by treeAggregate
     * across them, equal those of one local run up to summation order.
     */
    @Test
    void calibrateOverTwoExecutorsGivesTheLocalStatistics() throws Exception {
        String[] args = {
            "--model",
            Golden.path("flux-tiny-dev").toString(),
            "--prompt",
            "a red circle",
            "--prompt",
            "a blue square",
            "--prompt",
            "a green triangle",
            "--prompt",
            "a yellow star",
            "--steps",
            "1",
            "--height",
            "32",
            "--width",
            "32",
            "--batch-size",
            "1",
            "--prompts-per-partition",
            "1"
        };
        Path cluster = tmp.resolve("cluster.safetensors");
        Path local = tmp.resolve("local.safetensors");
        CliRun run = withSystemProperties(
                clusterConf(),
                () -> CliRun.of(concat(
                        new String[] {"calibrate", "--master", masterUrl, "--output", cluster.toString()}, args)));
        assertEquals(0, run.exitCode(), run.err() + run.out() + logs());
        CliRun ref = CliRun.of(
                concat(new String[] {"calibrate", "--master", "local[1]", "--output", local.toString()}, args));
        assertEquals(0, ref.exitCode(), ref.err() + ref.out());
        CalibrationStats a = CalibrationFile.read(cluster).stats();
        CalibrationStats b = CalibrationFile.read(local).stats();
        assertEquals(b.layers().keySet(), a.layers().keySet());
        for (String l : b.layers().keySet()) {
            assertEquals(b.get(l).tokens(), a.get(l).tokens(), l);
            assertArrayEquals(b.get(l).absMax(), a.get(l).absMax(), l);
            for (int i = 0; i < b.get(l).inFeatures(); i++) {
                double sq = b.get(l).sumSq()[i];
                assertEquals(sq, a.get(l).sumSq()[i], 1e-5 * sq, l + " sum of squares " + i);
                assertEquals(
                        b.get(l).sum()[i],
                        a.get(l).sum()[i],
                        1e-5 * Math.sqrt(sq * b.get(l).tokens()),
                        l + " sum " + i);
            }
        }
    }

    /**
     * {@code fluxbatch quantize --master spark://...} (gptq) over two executor JVMs: each writes some of the shards,
     * reading the Gram statistics of its own layers from the shared file, and the output folder is the one local mode
     * writes, file by file and byte for byte (shards, index, marker and the source's other files).
     */
    @Test
    void quantizeOverTwoExecutorsWritesTheFilesOfLocalMode() throws Exception {
        Path stats = QuantizedOutputs.gramStatistics(tmp.resolve("quantize-gram.safetensors"));
        String[] args = {"--model", Golden.path("flux-tiny-dev").toString(), "--calibration", stats.toString()};
        Path cluster = tmp.resolve("quantized-cluster");
        Path local = tmp.resolve("quantized-local");
        CliRun run = withSystemProperties(
                clusterConf(),
                () -> CliRun.of(concat(
                        new String[] {"quantize", "--master", masterUrl, "--output", cluster.toString()}, args)));
        assertEquals(0, run.exitCode(), run.err() + run.out() + logs());
        Set<String> executors = new TreeSet<>();
        Matcher m = Pattern.compile("written by executor (\\S+) in").matcher(run.err());
        while (m.find()) {
            executors.add(m.group(1));
        }
        assertEquals(2, executors.size(), "shards from both executors: " + run.err());
        assertTrue(!executors.contains("driver"), "ran in the driver: " + run.err());
        CliRun ref = CliRun.of(
                concat(new String[] {"quantize", "--master", "local[2]", "--output", local.toString()}, args));
        assertEquals(0, ref.exitCode(), ref.err());
        QuantizedOutputs.assertSameFiles(local, cluster);
    }

    /**
     * {@code generate --model s3a://...} (the local S3 server holding a copy of flux-tiny-dev) on both workers, two
     * nodes with a model cache each: the first run downloads the model once on each node (and on the driver), each copy
     * checks out against the source's SHA-256s, and a second run, in new executor JVMs, downloads nothing.
     */
    @Test
    void eachNodeDownloadsAnS3aModelOnceAndASecondRunNothing() throws Exception {
        String model = "s3a://models/flux-tiny-dev";
        Map<String, String> golden = new TreeMap<>();
        try (Stream<Path> s = Files.walk(Golden.path("flux-tiny-dev"))) {
            for (Path f : s.filter(Files::isRegularFile).toList()) {
                golden.put(Golden.path("flux-tiny-dev").relativize(f).toString(), Sha256.ofFile(f));
            }
        }
        try (LocalS3 s3 = LocalS3.start(Files.createDirectories(tmp.resolve("s3")))) {
            s3.createBuckets("models");
            s3.upload(Golden.path("flux-tiny-dev"), "models", "flux-tiny-dev");
            Map<String, String> conf = clusterConf();
            conf.putAll(LocalS3.sparkProperties(s3.s3aSettings()));
            conf.put(ModelCache.PROPERTY, tmp.resolve("driver-model-cache").toString());
            for (int run = 1; run <= 2; run++) {
                Set<Path> before = executorLogs();
                Path out = tmp.resolve("s3-model-out-" + run);
                CliRun r = withSystemProperties(
                        conf,
                        () -> CliRun.of(
                                "generate",
                                "--master",
                                masterUrl,
                                "--model",
                                model,
                                "--prompt",
                                "a red circle",
                                "--prompt",
                                "a blue square",
                                "--images-per-prompt",
                                "2",
                                "--images-per-partition",
                                "1",
                                "--steps",
                                "1",
                                "--height",
                                "32",
                                "--width",
                                "32",
                                "--output",
                                out.toString()));
                assertEquals(0, r.exitCode(), r.err() + r.out() + logs());
                assertTrue(r.out().contains("4 images: 4 written, 0 skipped"), r.out());
                assertTrue(
                        r.err().contains("model: " + model + " -> " + tmp.resolve("driver-model-cache"))
                                && r.err().contains(run == 1 ? "(downloaded " : "(found in the cache"),
                        "driver, run " + run + ": " + r.err());
                for (int node = 1; node <= 2; node++) {
                    List<String> lines = modelLines(node, before);
                    String label = "node " + node + ", run " + run + ": ";
                    java.util.function.Supplier<String> where = () -> label + lines + logs();
                    String fromItsCache = model + " -> " + nodeCache(node);
                    assertTrue(lines.stream().allMatch(l -> l.contains(fromItsCache)), where);
                    assertEquals(
                            run == 1 ? 1 : 0,
                            lines.stream()
                                    .filter(l -> l.contains("(downloaded "))
                                    .count(),
                            where);
                    assertEquals(
                            run == 1 ? 0 : 1,
                            lines.stream()
                                    .filter(l -> l.contains("(found in the cache"))
                                    .count(),
                            where);
                }
            }
        }
        for (int node = 1; node <= 2; node++) {
            List<Path> entries;
            try (Stream<Path> s = Files.list(nodeCache(node))) {
                entries = s.filter(Files::isDirectory).toList();
            }
            assertEquals(1, entries.size(), "node " + node + ": " + entries);
            Map<String, String> copied = new TreeMap<>();
            for (JsonNode f : new ObjectMapper()
                    .readTree(entries.get(0).resolve("manifest.json").toFile())
                    .path("files")) {
                copied.put(f.path("path").asText(), f.path("sha256").asText());
            }
            assertEquals(golden, copied, "node " + node + "'s copy");
        }
    }

    /** Every executor's stderr log under the workers' folders. */
    private static Set<Path> executorLogs() throws IOException {
        try (Stream<Path> s = Files.walk(tmp)) {
            return s.filter(p -> p.getFileName().toString().equals("stderr")
                            && (p.startsWith(tmp.resolve("work-1")) || p.startsWith(tmp.resolve("work-2"))))
                    .collect(Collectors.toSet());
        }
    }

    /**
     * The "model: URI -> ..." lines of the executor logs of worker {@code node} that are not in {@code before}: at
     * least one, waiting a while for them (the worker copies an executor's stderr to its file as it comes).
     */
    private static List<String> modelLines(int node, Set<Path> before) throws Exception {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(20);
        List<String> lines = new ArrayList<>();
        while (lines.isEmpty() && System.nanoTime() < deadline) {
            lines.clear();
            for (Path log : executorLogs()) {
                if (!before.contains(log) && log.startsWith(tmp.resolve("work-" + node))) {
                    Files.readAllLines(log).stream()
                            .filter(l -> l.contains("ModelLocation: model: "))
                            .forEach(lines::add);
                }
            }
            if (lines.isEmpty()) {
                Thread.sleep(250);
            }
        }
        return lines;
    }

    /**
     * The DataFrame API with a session on the cluster: a Parquet of three prompts in two files (two partitions), each
     * image made once, by the executors (not the driver), each loading the engine once, nothing collected.
     */
    @Test
    void theDataFrameApiMakesEveryRowOnceOnTheExecutors() throws Exception {
        SparkSession.Builder builder = SparkSession.builder().master(masterUrl).appName("fluxbatch image generator");
        clusterConf().forEach(builder::config);
        SparkSession spark = builder.getOrCreate();
        try {
            Path folder = Files.createDirectories(tmp.resolve("api"));
            ImageGeneratorTest.checkRun(
                    spark, ImageGeneratorTest.promptsParquet(spark, folder), folder.resolve("images.parquet"), 2);
        } finally {
            spark.stop();
        }
    }

    private static String[] concat(String[] a, String[] b) {
        String[] all = Arrays.copyOf(a, a.length + b.length);
        System.arraycopy(b, 0, all, a.length, b.length);
        return all;
    }

    /** The driver settings a job on this cluster needs: executors with this JVM's class path, both before any task. */
    private static Map<String, String> clusterConf() {
        Map<String, String> conf = new LinkedHashMap<>();
        conf.put("spark.driver.host", "127.0.0.1");
        conf.put("spark.driver.bindAddress", "127.0.0.1");
        conf.put("spark.ui.enabled", "false");
        conf.put("spark.executor.cores", "1");
        conf.put("spark.executor.memory", "1g");
        conf.put("spark.cores.max", "2");
        // start the tasks only once both executors are there, so that both get some
        conf.put("spark.scheduler.minRegisteredResourcesRatio", "1.0");
        conf.put("spark.scheduler.maxRegisteredResourcesWaitingTime", "120s");
        conf.put(
                "spark.executor.extraJavaOptions",
                jvmOptions + " -Dlog4j2.configurationFile=" + System.getProperty("log4j2.configurationFile"));
        conf.put("spark.executor.extraClassPath", System.getProperty("java.class.path"));
        return conf;
    }

    private interface Check {
        boolean ok() throws Exception;
    }

    /** The model cache of worker {@code i}'s node. */
    private static Path nodeCache(int i) {
        return tmp.resolve("node-" + i + "-model-cache");
    }

    private static void start(String name, Path sparkHome, Map<String, String> env, String mainClass, String... args)
            throws IOException {
        List<String> cmd = new ArrayList<>();
        cmd.add(Path.of(System.getProperty("java.home"), "bin", "java").toString());
        cmd.addAll(List.of(jvmOptions.split("\\s+")));
        cmd.add("-Xmx512m");
        cmd.addAll(List.of("-cp", System.getProperty("java.class.path"), mainClass));
        cmd.addAll(List.of(args));
        Path log = tmp.resolve(name + ".log");
        ProcessBuilder pb = new ProcessBuilder(cmd).redirectErrorStream(true).redirectOutput(log.toFile());
        pb.environment().put("SPARK_HOME", sparkHome.toString());
        pb.environment().put("SPARK_SCALA_VERSION", "2.13"); // else the launcher looks for a Spark build folder
        pb.environment().put("SPARK_LOCAL_IP", "127.0.0.1");
        pb.environment().put("JAVA_HOME", System.getProperty("java.home")); // the executors' java
        pb.environment().remove("SPARK_CONF_DIR");
        pb.environment().remove(ModelCache.ENV);
        pb.environment().putAll(env);
        LOGS.put(name, log);
        PROCESSES.add(pb.start());
    }

    private static void waitFor(String name, Check check, String what) throws Exception {
        Process p = PROCESSES.get(PROCESSES.size() - 1);
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(90);
        while (System.nanoTime() < deadline) {
            if (check.ok()) {
                return;
            }
            for (Process q : PROCESSES) {
                if (!q.isAlive()) {
                    throw new IllegalStateException("a cluster process exited with " + q.exitValue() + logs());
                }
            }
            Thread.sleep(250);
        }
        throw new IllegalStateException(name + " not " + what + " within 90 s (pid " + p.pid() + ")" + logs());
    }

    private static boolean listening(int port) {
        try (Socket s = new Socket()) {
            s.connect(new InetSocketAddress("127.0.0.1", port), 500);
            return true;
        } catch (IOException notYet) {
            return false;
        }
    }

    private static int freePort() throws IOException {
        try (ServerSocket s = new ServerSocket(0, 1, java.net.InetAddress.getLoopbackAddress())) {
            return s.getLocalPort();
        }
    }

    /** The last lines of each process's log, and of each executor's, for a failure message. */
    private static String logs() {
        StringBuilder sb = new StringBuilder();
        List<Path> all = new ArrayList<>(LOGS.values());
        try (Stream<Path> s = Files.walk(tmp)) {
            all.addAll(s.filter(p -> p.getFileName().toString().equals("stderr"))
                    .sorted()
                    .toList());
        } catch (IOException e) {
            sb.append("\n(cannot list executor logs: ").append(e).append(')');
        }
        for (Path log : all) {
            try {
                List<String> lines = Files.readAllLines(log);
                sb.append("\n--- ")
                        .append(tmp.relativize(log))
                        .append(" (last 30 lines)\n")
                        .append(String.join("\n", lines.subList(Math.max(0, lines.size() - 30), lines.size())));
            } catch (IOException e) {
                sb.append("\n--- ").append(log).append(": ").append(e);
            }
        }
        return sb.toString();
    }

    private static CliRun withSystemProperties(Map<String, String> props, java.util.function.Supplier<CliRun> body) {
        Map<String, String> saved = new LinkedHashMap<>();
        props.forEach((k, v) -> {
            saved.put(k, System.getProperty(k));
            System.setProperty(k, v);
        });
        try {
            return body.get();
        } finally {
            saved.forEach((k, v) -> {
                if (v == null) {
                    System.clearProperty(k);
                } else {
                    System.setProperty(k, v);
                }
            });
        }
    }
}
