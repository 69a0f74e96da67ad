package ai.fluxbatch.jobs.generate;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/** Counting where images were made: written images only, by the device their row names. */
class MadeOnTest {
    private static ImageResult row(String status, String device) {
        ImageResult r = new ImageResult(
                "id", "cli", 0, 0, "p", 0, 0, Map.of(), 32, 32, 1, 3.5f, 64, "m", "c", "none", "path", null, 0, 0, 0, 0,
                "1", 1, status, null, null, null, null);
        return device == null ? r : r.on(new MadeOn(device, device + " backend"));
    }

    @Test
    void countsWrittenImagesByDevice() {
        MadeOn.Count c = MadeOn.count(List.of(
                row(ImageResult.OK, "cuda:0"),
                row(ImageResult.OK, "cuda:1"),
                row(ImageResult.OK, "cpu"),
                row(ImageResult.SKIPPED, "cuda:0"), // made by an earlier run
                row(ImageResult.ERROR, "cpu"),
                row(ImageResult.ERROR, null)));
        assertEquals(new MadeOn.Count(2, 1), c);
        assertEquals("2 on a GPU, 1 on a CPU", c.toString());
    }
}
