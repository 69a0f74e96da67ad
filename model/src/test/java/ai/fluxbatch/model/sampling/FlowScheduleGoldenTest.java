package ai.fluxbatch.model.sampling;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.fluxbatch.model.Golden;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.util.Iterator;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;

class FlowScheduleGoldenTest {
    private static final Pattern KEY = Pattern.compile("steps=(\\d+),seq=(\\d+),shift=(True|False)");

    @Test
    void everyGoldenScheduleWithin1e6() throws Exception {
        JsonNode golden = new ObjectMapper()
                .readTree(Golden.path("cases", "schedules.json").toFile());
        SchedulerConfig config = SchedulerConfig.of(Golden.path("flux-tiny-dev"));
        int cases = 0;
        double worst = 0;
        for (Iterator<Map.Entry<String, JsonNode>> it = golden.fields(); it.hasNext(); ) {
            Map.Entry<String, JsonNode> e = it.next();
            Matcher m = KEY.matcher(e.getKey());
            assertTrue(m.matches(), "unexpected key " + e.getKey());
            double[] t = FlowSchedule.timesteps(
                    Integer.parseInt(m.group(1)),
                    Integer.parseInt(m.group(2)),
                    m.group(3).equals("True"),
                    config);
            assertEquals(e.getValue().size(), t.length, e.getKey());
            for (int i = 0; i < t.length; i++) {
                double err = Math.abs(t[i] - e.getValue().get(i).asDouble());
                worst = Math.max(worst, err);
                assertTrue(
                        err < 1e-6,
                        e.getKey() + "[" + i + "]: " + t[i] + " vs "
                                + e.getValue().get(i));
            }
            cases++;
        }
        System.out.printf("%d schedules, worst absolute error %.2g%n", cases, worst);
        assertTrue(cases >= 10);
    }

    @Test
    void rejectsZeroSteps() {
        assertThrows(() -> FlowSchedule.timesteps(0, 16, true, SchedulerConfig.REFERENCE));
    }

    private static void assertThrows(Runnable r) {
        org.junit.jupiter.api.Assertions.assertThrows(IllegalArgumentException.class, r::run);
    }
}
