package ai.fluxbatch.kernel.cuda;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class NvrtcCacheTest {
    private static final byte[] SOURCE =
            "extern \"C\" __global__ void k(float* y) { y[0] = 1.0f; }\n".getBytes(StandardCharsets.UTF_8);
    private static final List<String> OPTIONS = NvrtcCompiler.nvrtcOptions("sm_90");

    @TempDir
    Path dir;

    private static byte[] cubin(int seed, int length) {
        byte[] b = new byte[length];
        b[0] = 0x7f;
        b[1] = 'E';
        b[2] = 'L';
        b[3] = 'F';
        for (int i = 4; i < length; i++) {
            b[i] = (byte) (i * 31 + seed);
        }
        return b;
    }

    private static String key() {
        return NvrtcCache.key("ternary_matmul", SOURCE, OPTIONS, "sm_90", "13.1");
    }

    @Test
    void keyDependsOnSourceOptionsArchAndNvrtcVersion() {
        String k = key();
        assertEquals(
                k,
                NvrtcCache.key("ternary_matmul", SOURCE.clone(), List.copyOf(OPTIONS), "sm_90", "13.1"),
                "same inputs, same key");
        assertTrue(k.startsWith("ternary_matmul-sm_90-nvrtc13.1-") && k.endsWith(".cubin"), k);
        assertEquals("ternary_matmul-sm_90-nvrtc13.1-".length() + 64 + ".cubin".length(), k.length(), k);

        byte[] edited = SOURCE.clone();
        edited[edited.length - 3] ^= 1; // one bit of the source
        assertNotEquals(k, NvrtcCache.key("ternary_matmul", edited, OPTIONS, "sm_90", "13.1"));
        assertNotEquals(k, NvrtcCache.key("ternary_matmul", SOURCE, OPTIONS, "sm_89", "13.1"));
        assertNotEquals(k, NvrtcCache.key("ternary_matmul", SOURCE, OPTIONS, "sm_90", "13.0"));
        assertNotEquals(
                k, NvrtcCache.key("ternary_matmul", SOURCE, List.of("--gpu-architecture=sm_90"), "sm_90", "13.1"));
        assertNotEquals(k, NvrtcCache.key("fluxbatch_ops", SOURCE, OPTIONS, "sm_90", "13.1"));
        // options are separated: ["a", "bc"] and ["ab", "c"] differ
        assertNotEquals(
                NvrtcCache.key("m", SOURCE, List.of("a", "bc"), "sm_90", "13.1"),
                NvrtcCache.key("m", SOURCE, List.of("ab", "c"), "sm_90", "13.1"));
    }

    @Test
    void keyRejectsNamesThatAreNotFileNameSafe() {
        assertThrows(IllegalArgumentException.class, () -> NvrtcCache.key("../x", SOURCE, OPTIONS, "sm_90", "13.1"));
        assertThrows(IllegalArgumentException.class, () -> NvrtcCache.key("m", SOURCE, OPTIONS, "sm 90", "13.1"));
        assertThrows(IllegalArgumentException.class, () -> NvrtcCache.key("m", SOURCE, OPTIONS, "sm_90", "13/1"));
    }

    @Test
    void writesAtomicallyAndReadsBack() throws IOException {
        NvrtcCache cache = new NvrtcCache(dir.resolve("a/b")); // created on first write
        byte[] payload = cubin(1, 5000);
        assertTrue(cache.read(key()).isEmpty());
        assertTrue(cache.write(key(), payload));
        assertArrayEquals(payload, cache.read(key()).orElseThrow());
        try (Stream<Path> files = Files.list(cache.dir())) {
            assertEquals(
                    List.of(key()),
                    files.map(p -> p.getFileName().toString()).toList(),
                    "one entry, no temporary file left behind");
        }
        byte[] file = Files.readAllBytes(cache.file(key()));
        assertEquals(NvrtcCache.HEADER_BYTES + payload.length, file.length);
        assertEquals("FBCUBIN1", new String(file, 0, 8, StandardCharsets.US_ASCII));

        byte[] replaced = cubin(2, 700);
        assertTrue(cache.write(key(), replaced), "an entry is replaced whole");
        assertArrayEquals(replaced, cache.read(key()).orElseThrow());
    }

    @Test
    void truncatedEntryIsIgnoredDeletedAndRecompiled() throws IOException {
        NvrtcCache cache = new NvrtcCache(dir);
        byte[] payload = cubin(3, 4096);
        cache.write(key(), payload);
        Path file = cache.file(key());
        byte[] whole = Files.readAllBytes(file);
        for (int length : new int[] {0, 7, NvrtcCache.HEADER_BYTES - 1, NvrtcCache.HEADER_BYTES, whole.length - 1}) {
            Files.write(file, java.util.Arrays.copyOf(whole, length));
            assertTrue(cache.read(key()).isEmpty(), "a file cut to " + length + " bytes is no entry");
            assertFalse(Files.exists(file), "the invalid entry is deleted");
        }
        Files.write(file, java.util.Arrays.copyOf(whole, whole.length / 2));
        AtomicInteger compiles = new AtomicInteger();
        byte[] fresh = cubin(4, 4096);
        assertArrayEquals(fresh, cache.getOrCompile(key(), () -> {
            compiles.incrementAndGet();
            return fresh;
        }));
        assertEquals(1, compiles.get(), "compiled again");
        assertArrayEquals(fresh, cache.read(key()).orElseThrow(), "and stored whole");
    }

    @Test
    void corruptEntryIsIgnored() throws IOException {
        NvrtcCache cache = new NvrtcCache(dir);
        cache.write(key(), cubin(5, 2000));
        Path file = cache.file(key());
        byte[] bytes = Files.readAllBytes(file);

        byte[] flipped = bytes.clone();
        flipped[NvrtcCache.HEADER_BYTES + 1000] ^= 0x10; // a payload bit: the hash no longer matches
        Files.write(file, flipped);
        assertTrue(cache.read(key()).isEmpty());

        byte[] badMagic = bytes.clone();
        badMagic[0] = 'X';
        Files.write(file, badMagic);
        assertTrue(cache.read(key()).isEmpty());

        byte[] longer = java.util.Arrays.copyOf(bytes, bytes.length + 1); // length field disagrees
        Files.write(file, longer);
        assertTrue(cache.read(key()).isEmpty());

        assertTrue(NvrtcCache.decode(NvrtcCache.encode(new byte[0])) == null, "an empty CUBIN is no entry");
    }

    @Test
    void getOrCompileCompilesOnceThenReadsTheCache() {
        NvrtcCache cache = new NvrtcCache(dir);
        AtomicInteger compiles = new AtomicInteger();
        byte[] payload = cubin(6, 3000);
        NvrtcCache.Compiler compiler = () -> {
            compiles.incrementAndGet();
            return payload.clone();
        };
        assertArrayEquals(payload, cache.getOrCompile(key(), compiler));
        assertArrayEquals(payload, cache.getOrCompile(key(), compiler));
        assertArrayEquals(payload, new NvrtcCache(dir).getOrCompile(key(), compiler), "another instance, same folder");
        assertEquals(1, compiles.get());
        cache.invalidate(key());
        assertArrayEquals(payload, cache.getOrCompile(key(), compiler));
        assertEquals(2, compiles.get(), "compiled again after invalidate");
        assertThrows(
                IllegalStateException.class,
                () -> cache.getOrCompile(NvrtcCache.key("empty", SOURCE, OPTIONS, "sm_90", "13.1"), () -> new byte[0]));
    }

    @Test
    void unwritableFolderStillCompiles() throws IOException {
        Path notADir = Files.writeString(dir.resolve("file"), "x");
        NvrtcCache cache = new NvrtcCache(notADir.resolve("cache"));
        byte[] payload = cubin(7, 100);
        assertFalse(cache.write(key(), payload));
        AtomicInteger compiles = new AtomicInteger();
        for (int i = 0; i < 2; i++) {
            assertArrayEquals(payload, cache.getOrCompile(key(), () -> {
                compiles.incrementAndGet();
                return payload;
            }));
        }
        assertEquals(2, compiles.get(), "no cache: a compile each time, no failure");
    }

    @Test
    void defaultFolderIsThePropertyElseUnderUserHome() {
        String saved = System.getProperty(NvrtcCache.DIR_PROPERTY);
        try {
            System.clearProperty(NvrtcCache.DIR_PROPERTY);
            assertEquals(
                    Path.of(System.getProperty("user.home"), ".cache", "fluxbatch", "cuda"), NvrtcCache.defaultDir());
            System.setProperty(NvrtcCache.DIR_PROPERTY, dir.toString());
            assertEquals(dir, NvrtcCache.defaultDir());
            assertEquals(dir, NvrtcCache.atDefaultDir().dir());
        } finally {
            if (saved == null) {
                System.clearProperty(NvrtcCache.DIR_PROPERTY);
            } else {
                System.setProperty(NvrtcCache.DIR_PROPERTY, saved);
            }
        }
    }

    @Test
    void nvrtcOptionsKeepExactMath() {
        List<String> options = NvrtcCompiler.nvrtcOptions("sm_86");
        assertTrue(options.contains("--gpu-architecture=sm_86"), options.toString());
        assertTrue(options.contains("-std=c++17"), options.toString());
        assertFalse(
                options.stream().anyMatch(o -> o.contains("fast_math") || o.contains("ftz=true")), options.toString());
    }
}
