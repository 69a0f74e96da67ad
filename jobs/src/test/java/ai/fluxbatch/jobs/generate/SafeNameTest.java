package ai.fluxbatch.jobs.generate;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.charset.StandardCharsets;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

class SafeNameTest {
    @Test
    void plainPromptsKeepTheirNames() {
        for (String s : List.of(
                "a green bench and a blue bowl",
                "A brown bear's nose, wet.",
                "café-ñandú 3d_spatial",
                "color",
                "3d_spatial",
                "non_spatial")) {
            assertEquals(s, SafeName.of(s));
        }
    }

    @Test
    void nothingThatLeavesTheFolderOrBreaksAPathSurvives() {
        Map<String, String> expected = Map.of(
                "../../../../tmp/x",
                "%2E.%2F..%2F..%2F..%2Ftmp%2Fx",
                "/abs",
                "%2Fabs",
                "file:/etc",
                "file%3A%2Fetc",
                ".",
                "%2E",
                "..",
                "%2E.",
                "_tmp",
                "%5Ftmp",
                "The white and yellow clock with a red roof reads 11:44.",
                "The white and yellow clock with a red roof reads 11%3A44.",
                "a\\b\u0000c\nd\u202Ee\u200Bf",
                "a%5Cb%00c%0Ad%E2%80%AEe%E2%80%8Bf",
                "50% off?",
                "50%25 off%3F");
        expected.forEach((in, out) -> assertEquals(out, SafeName.of(in), in));
        assertEquals("%", SafeName.of(""));
        assertEquals("%ED%A0%80x", SafeName.of("\uD800x"), "a lone surrogate");
    }

    @Test
    void distinctInputsStayDistinct() {
        List<String> inputs = List.of(
                "red/circle",
                "red circle",
                "red%2Fcircle",
                "red%circle",
                "red:circle",
                "red%3Acircle",
                "",
                "%",
                ".a",
                "%2Ea",
                "_a",
                "%5Fa",
                "a".repeat(300),
                "a".repeat(299) + "b",
                "a".repeat(183) + "%~",
                "\uD800",
                "\u00ED\u00A0\u0080");
        Map<String, String> seen = new HashMap<>();
        for (String in : inputs) {
            String previous = seen.put(SafeName.of(in), in);
            assertTrue(previous == null, "'" + in + "' and '" + previous + "' share " + SafeName.of(in));
        }
    }

    @Test
    void longNamesAreCutWithAHashOfTheWhole() {
        String a = SafeName.of("x".repeat(1000) + "a"), b = SafeName.of("x".repeat(1000) + "b");
        for (String s : List.of(a, b, SafeName.of("é".repeat(500)), SafeName.of("/".repeat(500)))) {
            int bytes = s.getBytes(StandardCharsets.UTF_8).length;
            assertTrue(bytes <= SafeName.MAX_BYTES, s.length() + " chars, " + bytes + " bytes");
            assertTrue(s.matches(".*%~[0-9A-F]{16}"), s);
            assertFalse(s.matches(".*%[0-9A-F]?%~.*"), "an escape cut in half: " + s);
        }
        assertFalse(a.equals(b));
        assertEquals(a, SafeName.of("x".repeat(1000) + "a"), "stable");
    }
}
