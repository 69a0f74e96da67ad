package ai.fluxbatch.jobs.calibrate;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;

class StepSelectionTest {
    @Test
    void listsAndRangesCombine() {
        StepSelection s = StepSelection.parse("40-49, 0-3,20,2", 50);
        assertEquals("0,1,2,3,20,40,41,42,43,44,45,46,47,48,49", s.toString());
        assertEquals(15, s.count());
        assertTrue(s.test(20));
        assertFalse(s.test(19));
        assertFalse(s.isAll());
        assertTrue(StepSelection.parse("0-3", 4).isAll());
        assertEquals("0,1,2", StepSelection.all(3).toString());
    }

    @Test
    void outOfRangeBackwardsAndGarbageAreRefusedNamingTheSteps() {
        assertMessage("step 4 is out of range; expected step indices 0 to 3 (--steps 4)", "0,4", 4);
        assertMessage("step -1 is out of range", "-1", 4);
        assertMessage("range 3-1 runs backwards", "3-1", 4);
        assertMessage("'x' is not a step index", "1,x", 4);
        assertMessage("'' is not a step index", "1,", 4);
        assertMessage("--timesteps is empty", " ", 4);
    }

    private static void assertMessage(String expected, String spec, int steps) {
        IllegalArgumentException e =
                assertThrows(IllegalArgumentException.class, () -> StepSelection.parse(spec, steps));
        assertTrue(e.getMessage().contains(expected), e.getMessage());
    }
}
