package ai.fluxbatch.jobs.deploy;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import org.apache.spark.resource.ResourceInformation;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** deploy/spark/getGpusResources.sh against a fake nvidia-smi first on PATH. */
class GpuDiscoveryScriptTest {
    private static final String SCRIPT = "deploy/spark/getGpusResources.sh";

    @TempDir
    Path dir;

    /** A fake nvidia-smi that insists on the query the script should make, then prints {@code out} and exits. */
    private Path fakeNvidiaSmi(String out, int exit) throws Exception {
        Path bin = dir.resolve("bin");
        Files.createDirectories(bin);
        Files.writeString(bin.resolve("nvidia-smi.out"), out);
        Scripts.executable(bin.resolve("nvidia-smi"), """
                if [ "$*" != "--query-gpu=index --format=csv,noheader" ]; then
                  echo "fake nvidia-smi: unexpected arguments: $*" >&2; exit 99
                fi
                cat "$(dirname "$0")/nvidia-smi.out"
                exit %d
                """.formatted(exit));
        return bin;
    }

    private Scripts.Result discover(Path fakeBin, String cudaVisibleDevices) throws Exception {
        Map<String, String> env = new HashMap<>();
        env.put("PATH", fakeBin + ":/usr/bin:/bin");
        if (cudaVisibleDevices != null) {
            env.put("CUDA_VISIBLE_DEVICES", cudaVisibleDevices);
        }
        return Scripts.run(List.of(Scripts.file(SCRIPT).toString()), env);
    }

    /** Checks the output is exactly the JSON Spark reads, for {@code expected}; Spark's own parser must agree. */
    private static void assertAddresses(Scripts.Result r, String... expected) throws Exception {
        assertEquals(0, r.exit(), r::toString);
        String line = r.stdout().strip();
        assertEquals(
                "{\"name\":\"gpu\",\"addresses\":[" + String.join(",", quoted(expected)) + "]}", line, r::toString);
        JsonNode json = new ObjectMapper().readTree(line);
        assertEquals("gpu", json.get("name").asText());
        List<String> addresses = new ArrayList<>();
        json.get("addresses").forEach(a -> addresses.add(a.asText()));
        assertEquals(List.of(expected), addresses);
        ResourceInformation parsed = ResourceInformation.parseJson(line);
        assertEquals("gpu", parsed.name());
        assertArrayEquals(expected, parsed.addresses());
    }

    private static List<String> quoted(String... s) {
        return List.of(s).stream().map(a -> "\"" + a + "\"").toList();
    }

    @Test
    void scriptIsExecutable() {
        assertTrue(
                Files.isExecutable(Scripts.file(SCRIPT)),
                SCRIPT + " must be executable (chmod +x; git keeps the mode)");
    }

    @Test
    void listsEveryGpu() throws Exception {
        assertAddresses(discover(fakeNvidiaSmi("0\n1\n", 0), null), "0", "1");
    }

    @Test
    void toleratesSpacesAndCarriageReturns() throws Exception {
        assertAddresses(discover(fakeNvidiaSmi(" 0\r\n1 \r\n\n", 0), null), "0", "1");
    }

    @Test
    void cudaVisibleDevicesSelectsAndOrders() throws Exception {
        Path bin = fakeNvidiaSmi("0\n1\n2\n", 0);
        assertAddresses(discover(bin, "1"), "1");
        assertAddresses(discover(bin, "2,0"), "2", "0");
        assertAddresses(discover(bin, "0,7"), "0"); // 7 does not exist
        assertAddresses(discover(bin, "")); // set but empty: CUDA sees no device
    }

    @Test
    void nonNumericCudaVisibleDevicesIsReportedAndIgnored() throws Exception {
        Scripts.Result r = discover(fakeNvidiaSmi("0\n1\n", 0), "GPU-5f0c7e6e-1b2a-4c3d-9e8f-0123456789ab");
        assertAddresses(r, "0", "1");
        assertTrue(r.stderr().contains("CUDA_VISIBLE_DEVICES"), r::toString);
    }

    @Test
    void noDeviceFoundMeansNoGpus() throws Exception {
        assertAddresses(discover(fakeNvidiaSmi("No devices were found\n", 6), null));
    }

    @Test
    void noNvidiaSmiMeansNoGpus() throws Exception {
        // Only an empty folder on PATH, so a real nvidia-smi on this machine cannot be found; bash is named directly.
        Path empty = Files.createDirectories(dir.resolve("empty"));
        Scripts.Result r =
                Scripts.run(List.of(Scripts.bash(), Scripts.file(SCRIPT).toString()), Map.of("PATH", empty.toString()));
        assertAddresses(r);
        assertTrue(r.stderr().contains("nvidia-smi not found"), r::toString);
    }

    @Test
    void failingNvidiaSmiFailsWithItsMessage() throws Exception {
        String driver = "NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver.";
        Scripts.Result r = discover(fakeNvidiaSmi(driver + "\n", 9), null);
        assertNotEquals(0, r.exit(), r::toString);
        assertEquals("", r.stdout(), "no JSON on failure: " + r);
        assertTrue(
                r.stderr().contains("nvidia-smi")
                        && r.stderr().contains("exit code 9")
                        && r.stderr().contains(driver),
                r::toString);
    }

    @Test
    void unexpectedOutputFails() throws Exception {
        Scripts.Result r = discover(fakeNvidiaSmi("0\n[N/A]\n", 0), null);
        assertNotEquals(0, r.exit(), r::toString);
        assertEquals("", r.stdout(), r::toString);
        assertTrue(r.stderr().contains("'[N/A]'"), r::toString);
    }
}
