package ai.fluxbatch.jobs.generate;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.fluxbatch.model.image.PngEncoder;
import ai.fluxbatch.model.pipeline.RgbImage;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;
import org.apache.hadoop.conf.Configuration;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class ImageStoreTest {
    @TempDir
    Path tmp;

    @AfterEach
    void reset() {
        FaultyFileSystem.reset();
    }

    private static byte[] png() {
        byte[] rgb = new byte[4 * 3 * 3];
        Arrays.fill(rgb, (byte) 77);
        return PngEncoder.encode(new RgbImage(4, 3, rgb), Map.of("prompt", "x"));
    }

    @Test
    void pathsThatLeaveTheOutputAreRefused() throws IOException {
        Path out = tmp.resolve("out");
        ImageStore store = new ImageStore(out.toString(), new Configuration());
        for (String bad : List.of(
                "../x.png",
                "a/../../x.png",
                "/abs.png",
                "file:/tmp/x.png",
                "a:b/x.png",
                "a//x.png",
                "./x.png",
                "a\\..\\x.png",
                "")) {
            IOException e = assertThrows(IOException.class, () -> store.write(bad, png(), false), bad);
            assertTrue(e.getMessage().contains("refusing the path"), e.getMessage());
        }
        try (Stream<Path> all = Files.walk(tmp)) {
            assertEquals(List.of(), all.filter(Files::isRegularFile).toList(), "nothing written anywhere");
        }
    }

    @Test
    void aLocalOutputPathIsTakenLiterallyPercentHashAndSpacesIncluded() throws IOException {
        Path out = tmp.resolve("o%20 #y");
        ImageStore store = new ImageStore(out.toString(), new Configuration());
        store.write("images/a.png", png(), false);
        try (Stream<Path> all = Files.walk(tmp)) {
            assertEquals(
                    List.of(out.resolve("images/a.png")),
                    all.filter(Files::isRegularFile).toList());
        }
        assertEquals(ImageStore.Existing.COMPLETE_PNG, store.existing("images/a.png"));
    }

    @Test
    void theT2iCompbenchPathOfHostileRowsStaysUnderTheOutput() throws IOException {
        Path out = tmp.resolve("out");
        ImageStore store = new ImageStore(out.toString(), new Configuration());
        for (String category : List.of("../../../../tmp/x", "/abs", "file:/x", "..", "a:b")) {
            ImageTask t =
                    new ImageTask("id", "p.jsonl", 0, 0, "red/circle: ../x", 0, 0, Map.of("category", category), null);
            String written = store.write(OutputLayout.T2I_COMPBENCH.path(t), png(), false);
            assertTrue(
                    Path.of(new org.apache.hadoop.fs.Path(written).toUri().getPath())
                            .normalize()
                            .startsWith(out),
                    written);
        }
        try (Stream<Path> all = Files.walk(tmp)) {
            List<Path> files = all.filter(Files::isRegularFile).toList();
            assertEquals(5, files.size(), files.toString());
            assertTrue(
                    files.stream()
                            .allMatch(p -> p.startsWith(out)
                                    && p.getParent().getFileName().toString().equals("samples")),
                    files.toString());
        }
        assertTrue(Files.isRegularFile(out.resolve("a%3Ab/samples/red%2Fcircle%3A ..%2Fx_000000.png")));
    }

    @Test
    void aPngIsCompleteOnlyWithItsSignatureChunksAndCrcs() throws IOException {
        Path out = tmp.resolve("out");
        ImageStore store = new ImageStore(out.toString(), new Configuration());
        byte[] good = png();
        assertEquals(ImageStore.Existing.MISSING, store.existing("images/a.png"), "missing");
        store.write("images/a.png", good, false);
        assertEquals(ImageStore.Existing.COMPLETE_PNG, store.existing("images/a.png"));

        byte[] zeros = new byte[good.length]; // a body of zeros that still ends in a valid IEND chunk
        System.arraycopy(good, good.length - 12, zeros, zeros.length - 12, 12);
        byte[] badCrc = good.clone();
        badCrc[40] ^= 1;
        byte[] noSignature = good.clone();
        noSignature[1] = 'Q';
        for (byte[] bad : List.of(zeros, badCrc, noSignature, Arrays.copyOf(good, good.length / 2), new byte[0])) {
            Files.write(out.resolve("images/a.png"), bad);
            assertEquals(ImageStore.Existing.INVALID, store.existing("images/a.png"));
        }
    }

    @Test
    void aFailedWriteLeavesNoTemporaryAndNamesTheFileAndTheCause() throws IOException {
        Path out = tmp.resolve("out");
        FaultyFileSystem.pngLimit = 0;
        ImageStore store = new ImageStore(FaultyFileSystem.uri(out), FaultyFileSystem.conf());
        IOException e = assertThrows(IOException.class, () -> store.write("images/a.png", png(), false));
        assertEquals("cannot write faulty:" + out + "/images/a.png: No space left on device", e.getMessage());
        try (Stream<Path> all = Files.walk(tmp)) {
            assertEquals(List.of(), all.filter(Files::isRegularFile).toList(), "no part file left");
        }
    }
}
