package ai.fluxbatch.jobs.deploy;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.dataformat.yaml.YAMLMapper;
import java.nio.file.Files;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;

/** deploy/k8s pod templates: valid YAML with the structure Spark on Kubernetes and the GPU scheduler need. */
class PodTemplatesTest {
    private static JsonNode read(String relative) throws Exception {
        JsonNode pod = new YAMLMapper().readTree(Scripts.file(relative).toFile());
        assertEquals("v1", pod.path("apiVersion").asText(), relative + ": apiVersion");
        assertEquals("Pod", pod.path("kind").asText(), relative + ": kind");
        JsonNode containers = pod.path("spec").path("containers");
        assertTrue(
                containers.isArray() && containers.size() == 1,
                relative + ": expected one container, got " + containers);
        assertFalse(containers.get(0).path("name").asText().isEmpty(), relative + ": the container needs a name");
        return pod;
    }

    /** The uid the image runs as (deploy/docker/Dockerfile's last USER). */
    private static int imageUser() throws Exception {
        Matcher m = Pattern.compile("(?m)^USER\\s+(\\d+)")
                .matcher(Files.readString(Scripts.file("deploy/docker/Dockerfile")));
        int uid = -1;
        while (m.find()) {
            uid = Integer.parseInt(m.group(1));
        }
        assertTrue(uid > 0, "deploy/docker/Dockerfile: expected a numeric non-root USER");
        return uid;
    }

    @Test
    void executorAsksForOneGpuAndMayRunOnGpuNodes() throws Exception {
        JsonNode pod = read("deploy/k8s/executor-pod-template.yaml");
        JsonNode container = pod.path("spec").path("containers").get(0);
        assertEquals("spark-kubernetes-executor", container.path("name").asText());
        JsonNode gpu = container.path("resources").path("limits").path("nvidia.com/gpu");
        assertEquals("1", gpu.asText(), "executor: resources.limits nvidia.com/gpu");

        boolean tolerates = false;
        for (JsonNode t : pod.path("spec").path("tolerations")) {
            tolerates |= t.path("key").asText().equals("nvidia.com/gpu")
                    && t.path("effect").asText().equals("NoSchedule");
        }
        assertTrue(
                tolerates,
                "executor: expected a NoSchedule toleration for nvidia.com/gpu, got "
                        + pod.path("spec").path("tolerations"));
        assertTrue(pod.path("spec").path("nodeSelector").size() > 0, "executor: expected a nodeSelector example");
        assertEquals(
                imageUser(),
                pod.path("spec").path("securityContext").path("runAsUser").asInt(),
                "executor: runAsUser should be the image's user");
    }

    @Test
    void driverNeedsNoGpu() throws Exception {
        JsonNode pod = read("deploy/k8s/driver-pod-template.yaml");
        JsonNode container = pod.path("spec").path("containers").get(0);
        assertEquals("spark-kubernetes-driver", container.path("name").asText());
        assertTrue(
                container
                        .path("resources")
                        .path("limits")
                        .path("nvidia.com/gpu")
                        .isMissingNode(),
                "driver: must not take a GPU");
        assertTrue(pod.path("spec").path("tolerations").isMissingNode(), "driver: should stay off tainted GPU nodes");
        assertEquals(
                imageUser(),
                pod.path("spec").path("securityContext").path("runAsUser").asInt(),
                "driver: runAsUser should be the image's user");
    }
}
