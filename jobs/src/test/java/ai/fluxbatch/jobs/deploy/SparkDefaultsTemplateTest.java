package ai.fluxbatch.jobs.deploy;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.InputStream;
import java.io.Reader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.util.List;
import java.util.Properties;
import org.apache.spark.network.util.JavaUtils;
import org.junit.jupiter.api.Test;

/** conf/spark-defaults-gpu.conf.template, read as spark-submit reads a properties file. */
class SparkDefaultsTemplateTest {
    private static Properties template() throws Exception {
        Properties p = new Properties();
        try (Reader r = Files.newBufferedReader(
                Scripts.file("conf/spark-defaults-gpu.conf.template"), StandardCharsets.UTF_8)) {
            p.load(r);
        }
        return p;
    }

    private static String get(Properties p, String key) {
        String v = p.getProperty(key);
        assertNotNull(v, "conf/spark-defaults-gpu.conf.template: missing " + key);
        return v.strip();
    }

    @Test
    void oneGpuAndOneTaskPerExecutor() throws Exception {
        Properties p = template();
        assertEquals("1", get(p, "spark.executor.resource.gpu.amount"));
        assertEquals("1", get(p, "spark.task.resource.gpu.amount"));
        assertEquals(get(p, "spark.executor.cores"), get(p, "spark.task.cpus"), "executor cores must equal task cpus");
        assertEquals("nvidia.com", get(p, "spark.executor.resource.gpu.vendor"));
        assertEquals("false", get(p, "spark.speculation"));
        assertTrue(
                p.stringPropertyNames().stream()
                        .noneMatch(k -> k.startsWith("spark.rapids") || k.equals("spark.plugins")),
                "no GPU SQL plugin: " + p.stringPropertyNames());
    }

    @Test
    void overheadHoldsTheOffHeapWeights() throws Exception {
        long overhead = JavaUtils.byteStringAsBytes(get(template(), "spark.executor.memoryOverhead"));
        // 3.02 GiB of 1.58-bit FLUX.1-dev weights plus the JVM's and CUDA's native memory
        assertTrue(overhead >= 4L << 30, "spark.executor.memoryOverhead below 4 GiB: " + overhead);
        JavaUtils.byteStringAsBytes(get(template(), "spark.executor.memory"));
    }

    @Test
    void jvmOptionsMatchTheBuild() throws Exception {
        String build;
        try (InputStream in = getClass().getResourceAsStream("/ai/fluxbatch/jobs/jvm.options")) {
            assertNotNull(in, "jvm.options, written by the build from jobs/pom.xml, is not on the classpath");
            build = new String(in.readAllBytes(), StandardCharsets.UTF_8).strip();
        }
        List<String> options = List.of(build.split("\\s+"));
        assertTrue(
                options.contains("--add-modules=jdk.incubator.vector") && options.size() > 5,
                "unexpected jvm.options: " + build);
        Properties p = template();
        for (String key : List.of("spark.driver.extraJavaOptions", "spark.executor.extraJavaOptions")) {
            List<String> template = List.of(get(p, key).split("\\s+"));
            assertEquals(options, template, key + " differs from jobs/pom.xml's vector.module and spark.java.options");
        }
    }

    @Test
    void discoveryScriptIsTheShippedOne() throws Exception {
        String script = get(template(), "spark.executor.resource.gpu.discoveryScript");
        assertEquals("/opt/fluxbatch/deploy/spark/getGpusResources.sh", script);
        Scripts.file("deploy/spark/getGpusResources.sh");
    }
}
