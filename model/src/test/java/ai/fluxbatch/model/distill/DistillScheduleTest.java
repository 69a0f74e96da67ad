package ai.fluxbatch.model.distill;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.fluxbatch.model.sampling.FlowSchedule;
import ai.fluxbatch.model.sampling.SchedulerConfig;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import org.junit.jupiter.api.Test;

/** The samples of each step: a function of (seed, step, index), spread evenly over prompts and times. */
class DistillScheduleTest {
    private static final List<String> PROMPTS = List.of("a red circle", "a blue square", "a green triangle", "sky");
    private static final float[] TIMES = DistillSchedule.times(20, 16, true, SchedulerConfig.REFERENCE);

    @Test
    void timesAreTheGenerationScheduleWithoutItsFinalZero() {
        double[] all = FlowSchedule.timesteps(20, 16, true, SchedulerConfig.REFERENCE);
        assertEquals(20, TIMES.length);
        assertEquals(0.0, all[20]);
        for (int i = 0; i < 20; i++) {
            assertEquals((float) all[i], TIMES[i]);
            assertTrue(TIMES[i] > 0 && TIMES[i] <= 1, "time " + TIMES[i]);
        }
        assertEquals(1f, TIMES[0]);
        assertArrayEquals(
                new float[] {1f, 0.75f, 0.5f, 0.25f}, DistillSchedule.times(4, 16, false, SchedulerConfig.REFERENCE));
        assertEquals(20, DistillSchedule.sampleSteps(true));
        assertEquals(4, DistillSchedule.sampleSteps(false));
    }

    @Test
    void samplesDependOnlyOnSeedStepAndIndex() {
        DistillSchedule a = new DistillSchedule(PROMPTS, 5, 8, TIMES);
        DistillSchedule b = new DistillSchedule(PROMPTS, 5, 8, TIMES);
        for (int step : new int[] {0, 1, 17, 299}) {
            List<DistillSample> batch = a.batch(step);
            assertEquals(8, batch.size());
            for (int i = 0; i < 8; i++) {
                assertEquals(b.sample(step, i), batch.get(i));
                assertEquals(5 + step * 8L + i, batch.get(i).seed());
            }
        }
        assertNotEquals(a.batch(3), a.batch(4));
        DistillSchedule otherSeed = new DistillSchedule(PROMPTS, 6, 8, TIMES);
        int samePrompt = 0;
        for (int step = 0; step < 50; step++) {
            for (int i = 0; i < 8; i++) {
                samePrompt += a.sample(step, i)
                                .prompt()
                                .equals(otherSeed.sample(step, i).prompt())
                        ? 1
                        : 0;
            }
        }
        assertTrue(samePrompt < 200, "another seed draws other prompts: " + samePrompt + " of 400 the same");
    }

    @Test
    void promptsAndTimesAreDrawnEvenly() {
        DistillSchedule s = new DistillSchedule(PROMPTS, 0, 16, TIMES);
        Map<String, Integer> prompts = new HashMap<>();
        Map<Float, Integer> times = new HashMap<>();
        Set<Long> seeds = new HashSet<>();
        int steps = 500;
        for (int step = 0; step < steps; step++) {
            for (DistillSample x : s.batch(step)) {
                prompts.merge(x.prompt(), 1, Integer::sum);
                times.merge(x.time(), 1, Integer::sum);
                seeds.add(x.seed());
            }
        }
        int n = steps * 16;
        assertEquals(n, seeds.size(), "every sample has noise of its own");
        assertEquals(PROMPTS.size(), prompts.size());
        for (int count : prompts.values()) { // expected 2000, standard deviation about 39
            assertTrue(Math.abs(count - n / 4.0) < 200, "prompt counts " + prompts);
        }
        assertEquals(TIMES.length, times.size());
        for (int count : times.values()) { // expected 400, standard deviation about 19.5
            assertTrue(Math.abs(count - n / 20.0) < 100, "time counts " + times);
        }
    }

    @Test
    void refusesBadArguments() {
        assertThrows(IllegalArgumentException.class, () -> new DistillSchedule(List.of(), 0, 1, TIMES));
        assertThrows(IllegalArgumentException.class, () -> new DistillSchedule(PROMPTS, 0, 0, TIMES));
        assertThrows(IllegalArgumentException.class, () -> new DistillSchedule(PROMPTS, -1, 1, TIMES));
        assertThrows(IllegalArgumentException.class, () -> new DistillSchedule(PROMPTS, 0, 1, new float[] {0f}));
        DistillSchedule s = new DistillSchedule(PROMPTS, Long.MAX_VALUE - 10, 4, TIMES);
        assertEquals(Long.MAX_VALUE - 3, s.lastNoiseSeed(2));
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> s.lastNoiseSeed(3));
        assertTrue(e.getMessage().contains("expected a seed <= " + (Long.MAX_VALUE - 11)), e.getMessage());
        assertThrows(IllegalArgumentException.class, () -> s.sample(0, 4));
    }
}
