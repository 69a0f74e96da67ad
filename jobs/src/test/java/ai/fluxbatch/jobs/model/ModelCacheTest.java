package ai.fluxbatch.jobs.model;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.fluxbatch.model.Sha256;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.io.UncheckedIOException;
import java.net.ServerSocket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.FileTime;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.TreeMap;
import java.util.concurrent.CyclicBarrier;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;
import org.apache.hadoop.conf.Configuration;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class ModelCacheTest {
    /** The source snapshot's files, relative path to size (0: an empty file). */
    private static final Map<String, Integer> FILES = Map.of(
            "model_index.json", 120,
            "transformer/config.json", 300,
            "transformer/diffusion_pytorch_model.safetensors", 300_000,
            "vae/empty.bin", 0,
            "text_encoder_2/deep/er/spiece.model", 5_000);

    @TempDir
    Path tmp;

    private Path source;
    private String uri;
    private ModelCache cache;

    @BeforeEach
    void sourceAndCache() throws IOException {
        SourceFileSystem.reset();
        source = tmp.resolve("bucket").resolve("flux-mini");
        Random random = new Random(7);
        for (Map.Entry<String, Integer> f : new TreeMap<>(FILES).entrySet()) {
            Path p = source.resolve(f.getKey());
            Files.createDirectories(p.getParent());
            byte[] data = new byte[f.getValue()];
            random.nextBytes(data);
            Files.write(p, data);
        }
        uri = SourceFileSystem.uri(source);
        cache = new ModelCache(tmp.resolve("cache"));
    }

    @AfterEach
    void resetSource() {
        SourceFileSystem.reset();
    }

    @Test
    void theFirstResolveCopiesTheFolderAndTheSecondCopiesNothing() throws IOException {
        ModelCache.Resolved first = cache.resolve(uri, SourceFileSystem.conf());
        assertTrue(first.downloaded(), first.describe());
        assertEquals(FILES.size(), first.files());
        assertEquals(FILES.values().stream().mapToLong(Integer::longValue).sum(), first.bytes());
        assertEquals(FILES.size(), SourceFileSystem.OPENS.get(), "one open per file");
        assertEquals("flux-mini", first.folder().getFileName().toString(), "the copy keeps the folder's name");
        assertTrue(first.folder().startsWith(cache.root()), first.folder() + " outside " + cache.root());
        assertTrue(first.describe().contains("downloaded " + FILES.size() + " files"), first.describe());
        assertSameFiles(source, first.folder());
        Map<String, String> sha = ModelCache.manifestSha256(first.folder().getParent());
        assertEquals(FILES.keySet(), sha.keySet());
        for (String f : FILES.keySet()) {
            assertEquals(Sha256.ofFile(source.resolve(f)), sha.get(f), f);
        }

        SourceFileSystem.OPENS.set(0);
        ModelCache.Resolved second = cache.resolve(uri, SourceFileSystem.conf());
        assertFalse(second.downloaded(), second.describe());
        assertEquals(first.folder(), second.folder());
        assertEquals(0, SourceFileSystem.OPENS.get(), "a cache hit opens no source file");
        assertTrue(second.describe().contains("found in the cache"), second.describe());
        assertEquals(List.of(), leftovers(), "no temporary folders");
    }

    @Test
    void severalThreadsResolvingAtOnceDownloadOnce() throws Exception {
        SourceFileSystem.openDelayMillis = 40; // the download takes 200 ms: the threads overlap
        int threads = 4;
        CyclicBarrier start = new CyclicBarrier(threads);
        ExecutorService pool = Executors.newFixedThreadPool(threads);
        try {
            List<Future<ModelCache.Resolved>> results = new ArrayList<>();
            for (int i = 0; i < threads; i++) {
                results.add(pool.submit(() -> {
                    start.await(10, TimeUnit.SECONDS);
                    return new ModelCache(tmp.resolve("cache")).resolve(uri, SourceFileSystem.conf());
                }));
            }
            int downloads = 0;
            for (Future<ModelCache.Resolved> r : results) {
                ModelCache.Resolved got = r.get(60, TimeUnit.SECONDS);
                downloads += got.downloaded() ? 1 : 0;
                assertSameFiles(source, got.folder());
            }
            assertEquals(1, downloads, "downloads");
            assertEquals(FILES.size(), SourceFileSystem.OPENS.get(), "each file opened once");
        } finally {
            pool.shutdownNow();
        }
    }

    @Test
    void severalProcessesResolvingAtOnceDownloadOnce() throws Exception {
        Path go = tmp.resolve("go");
        List<Process> processes = new ArrayList<>();
        List<BufferedReader> outputs = new ArrayList<>();
        try {
            for (int i = 0; i < 2; i++) { // two JVMs are enough to show the lock: each takes seconds to start
                Process p = new ProcessBuilder(
                                Path.of(System.getProperty("java.home"), "bin", "java")
                                        .toString(),
                                "-Xmx128m",
                                "-cp",
                                System.getProperty("java.class.path"),
                                ModelCacheChild.class.getName(),
                                tmp.resolve("cache").toString(),
                                uri,
                                go.toString(),
                                "60")
                        .redirectError(ProcessBuilder.Redirect.appendTo(
                                tmp.resolve("child-" + i + ".err").toFile()))
                        .start();
                processes.add(p);
                outputs.add(new BufferedReader(new InputStreamReader(p.getInputStream(), StandardCharsets.UTF_8)));
            }
            for (int i = 0; i < processes.size(); i++) {
                assertEquals("ready", outputs.get(i).readLine(), () -> childErrors());
            }
            Files.createFile(go); // both resolve now; a download takes 300 ms
            List<String> lines = new ArrayList<>();
            for (int i = 0; i < processes.size(); i++) {
                lines.add(outputs.get(i).readLine());
                assertTrue(processes.get(i).waitFor(60, TimeUnit.SECONDS), "process " + i + " did not end");
                assertEquals(0, processes.get(i).exitValue(), childErrors());
            }
            assertEquals(
                    1, lines.stream().filter(l -> l.startsWith("downloaded ")).count(), lines + childErrors());
            assertEquals(1, lines.stream().filter(l -> l.startsWith("found ")).count(), lines + childErrors());
            Path folder = Path.of(lines.get(0).substring(lines.get(0).indexOf(' ') + 1));
            assertSameFiles(source, folder);
            assertEquals(List.of(), leftovers(), "no temporary folders");
        } finally {
            for (Process p : processes) {
                p.destroyForcibly();
            }
        }
    }

    @Test
    void aDownloadCutShortFailsNamingTheFileAndLeavesNoEntry() {
        SourceFileSystem.truncated = "diffusion_pytorch_model.safetensors";
        UncheckedIOException e =
                assertThrows(UncheckedIOException.class, () -> cache.resolve(uri, SourceFileSystem.conf()));
        assertTrue(
                e.getMessage().contains(uri + "/transformer/diffusion_pytorch_model.safetensors")
                        && e.getMessage().contains("has 150000 bytes, the source listing says 300000"),
                e.getMessage());
        assertEquals(List.of(), entries(), "no entry");
        assertEquals(List.of(), leftovers(), "no temporary folders");

        SourceFileSystem.truncated = null;
        ModelCache.Resolved r = cache.resolve(uri, SourceFileSystem.conf());
        assertTrue(r.downloaded());
        assertSameFiles(source, r.folder());
    }

    @Test
    void bytesDamagedOnTheWayAreCaughtByTheSourcesCrc() throws IOException {
        SourceFileSystem.crc = true;
        SourceFileSystem.corrupted = "config.json";
        UncheckedIOException e =
                assertThrows(UncheckedIOException.class, () -> cache.resolve(uri, SourceFileSystem.conf()));
        assertTrue(
                e.getMessage().contains("config.json")
                        && e.getMessage().contains("COMPOSITE-CRC32C")
                        && e.getMessage().contains("damaged"),
                e.getMessage());
        assertEquals(List.of(), entries(), "no entry");

        SourceFileSystem.corrupted = null;
        ModelCache.Resolved r = cache.resolve(uri, SourceFileSystem.conf());
        assertSameFiles(source, r.folder());
        JsonNode manifest = new ObjectMapper()
                .readTree(r.folder().resolveSibling("manifest.json").toFile());
        for (JsonNode f : manifest.path("files")) {
            assertEquals("COMPOSITE-CRC32C verified", f.path("source_checksum").asText(), f.toString());
        }
    }

    @Test
    void aCopyCutShortOrChangedInTheCacheIsDownloadedAgain() throws IOException {
        Path folder = cache.resolve(uri, SourceFileSystem.conf()).folder();
        Path weights = folder.resolve("transformer/diffusion_pytorch_model.safetensors");
        byte[] good = Files.readAllBytes(weights);

        Files.write(weights, java.util.Arrays.copyOf(good, 1000)); // cut short
        ModelCache.Resolved again = cache.resolve(uri, SourceFileSystem.conf());
        assertTrue(again.downloaded(), again.describe());
        assertArrayEquals(good, Files.readAllBytes(weights));

        byte[] flipped = good.clone(); // same size, other bytes: written later than the copy
        flipped[5] ^= 1;
        Files.write(weights, flipped);
        Files.setLastModifiedTime(
                weights, FileTime.fromMillis(Files.getLastModifiedTime(weights).toMillis() + 2000));
        assertTrue(cache.resolve(uri, SourceFileSystem.conf()).downloaded());
        assertArrayEquals(good, Files.readAllBytes(weights));
        assertFalse(cache.resolve(uri, SourceFileSystem.conf()).downloaded());
        assertEquals(1, entries().size(), "one entry: " + entries());
        assertEquals(List.of(), leftovers(), "no temporary folders");
    }

    @Test
    void aChangedSourceGetsAnEntryOfItsOwn() throws IOException {
        Path before = cache.resolve(uri, SourceFileSystem.conf()).folder();
        Path config = source.resolve("transformer/config.json");
        Files.writeString(config, "{\"changed\": true}");
        ModelCache.Resolved changed = cache.resolve(uri, SourceFileSystem.conf());
        assertTrue(changed.downloaded(), changed.describe());
        assertNotEquals(before, changed.folder());
        assertEquals("{\"changed\": true}", Files.readString(changed.folder().resolve("transformer/config.json")));
        assertTrue(Files.isDirectory(before), "the old entry stays (another JVM may use it)");

        Files.setLastModifiedTime(
                config, FileTime.fromMillis(Files.getLastModifiedTime(config).toMillis() - 60_000));
        ModelCache.Resolved touched = cache.resolve(uri, SourceFileSystem.conf());
        assertTrue(touched.downloaded(), "a new modification time is a new source: " + touched.describe());

        Files.writeString(source.resolve("added.txt"), "new file");
        ModelCache.Resolved added = cache.resolve(uri, SourceFileSystem.conf());
        assertTrue(added.downloaded(), "an added file is a new source: " + added.describe());
        assertEquals("new file", Files.readString(added.folder().resolve("added.txt")));
        assertEquals(4, entries().size(), entries().toString());
    }

    @Test
    void aMissingFolderAFileOrAnEmptyFolderFailsNamingTheUri() throws IOException {
        String missing = SourceFileSystem.uri(tmp.resolve("bucket").resolve("nothing-here"));
        UncheckedIOException e =
                assertThrows(UncheckedIOException.class, () -> cache.resolve(missing, SourceFileSystem.conf()));
        assertTrue(e.getMessage().contains(missing) && e.getMessage().contains("does not exist"), e.getMessage());

        String file = SourceFileSystem.uri(source.resolve("model_index.json"));
        e = assertThrows(UncheckedIOException.class, () -> cache.resolve(file, SourceFileSystem.conf()));
        assertTrue(e.getMessage().startsWith(file + " is a file"), e.getMessage());

        Path empty = Files.createDirectories(tmp.resolve("bucket").resolve("empty"));
        String emptyUri = SourceFileSystem.uri(empty);
        e = assertThrows(UncheckedIOException.class, () -> cache.resolve(emptyUri, SourceFileSystem.conf()));
        assertTrue(e.getMessage().startsWith(emptyUri + " is an empty folder"), e.getMessage());
        assertFalse(Files.exists(cache.root()), "nothing made in the cache");
    }

    @Test
    void anUnknownSchemeOrAMalformedUriFailsNamingIt() {
        IllegalArgumentException e = assertThrows(
                IllegalArgumentException.class, () -> cache.resolve("nosuchfs://bucket/flux", new Configuration()));
        assertTrue(
                e.getMessage()
                        .startsWith(
                                "nosuchfs://bucket/flux: this build has no file system for the scheme" + " 'nosuchfs'"),
                e.getMessage());
        e = assertThrows(
                IllegalArgumentException.class, () -> cache.resolve("s3a://bad bucket/flux", new Configuration()));
        assertTrue(e.getMessage().startsWith("s3a://bad bucket/flux is not a valid URI"), e.getMessage());
    }

    @Test
    void anUnreachableStoreFailsNamingTheUri() throws IOException {
        int port;
        try (ServerSocket s = new ServerSocket(0, 1, java.net.InetAddress.getLoopbackAddress())) {
            port = s.getLocalPort(); // closed again: nothing listens there
        }
        Configuration conf = new Configuration();
        conf.setInt("ipc.client.connect.max.retries", 0); // HDFS's client would retry for about 10 s
        conf.setInt("ipc.client.connect.max.retries.on.timeouts", 0);
        String unreachable = "hdfs://127.0.0.1:" + port + "/models/flux";
        long start = System.nanoTime();
        UncheckedIOException e = assertThrows(UncheckedIOException.class, () -> cache.resolve(unreachable, conf));
        assertTrue(
                e.getMessage().startsWith("cannot list the model " + unreachable)
                        && e.getMessage().contains("Connection refused"),
                e.getMessage());
        assertTrue((System.nanoTime() - start) / 1e9 < 30, "took too long to fail");
    }

    @Test
    void theCacheFolderComesFromThePropertyThenSparkThenTheEnvironment() {
        assertEquals(Path.of("/p"), ModelCache.configuredRoot("/p", "/s", "/e", "/x", "/home/u"));
        assertEquals(Path.of("/s"), ModelCache.configuredRoot(null, "/s", "/e", "/x", "/home/u"));
        assertEquals(Path.of("/e"), ModelCache.configuredRoot(" ", null, "/e", "/x", "/home/u"));
        assertEquals(Path.of("/x/fluxbatch/models"), ModelCache.configuredRoot(null, null, null, "/x", "/home/u"));
        assertEquals(
                Path.of("/home/u/.cache/fluxbatch/models"), ModelCache.configuredRoot(null, null, "", null, "/home/u"));
    }

    @Test
    void entryNamesAreSafeFileNames() {
        assertEquals("FLUX.1-dev", ModelCache.entryName("FLUX.1-dev"));
        assertEquals("a_b_c", ModelCache.entryName("a b:c"));
        assertEquals("model", ModelCache.entryName(""));
        assertEquals("model", ModelCache.entryName(".."));
    }

    private static void assertSameFiles(Path expected, Path actual) {
        try (Stream<Path> e = Files.walk(expected);
                Stream<Path> a = Files.walk(actual)) {
            List<String> want = e.filter(Files::isRegularFile)
                    .map(p -> expected.relativize(p).toString())
                    .sorted()
                    .toList();
            List<String> got = a.filter(Files::isRegularFile)
                    .map(p -> actual.relativize(p).toString())
                    .sorted()
                    .toList();
            assertEquals(want, got, "files of " + actual);
            for (String f : want) {
                assertArrayEquals(Files.readAllBytes(expected.resolve(f)), Files.readAllBytes(actual.resolve(f)), f);
            }
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /** The cache's entries (folders with a manifest). */
    private List<String> entries() {
        return list(p -> Files.isRegularFile(p.resolve("manifest.json")));
    }

    /** Temporary folders in the cache. */
    private List<String> leftovers() {
        return list(p -> p.getFileName().toString().contains(".tmp-"));
    }

    private List<String> list(java.util.function.Predicate<Path> which) {
        if (!Files.isDirectory(cache.root())) {
            return List.of();
        }
        try (Stream<Path> s = Files.list(cache.root())) {
            return s.filter(which).map(p -> p.getFileName().toString()).sorted().toList();
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    private String childErrors() {
        StringBuilder sb = new StringBuilder();
        for (int i = 0; i < 2; i++) {
            Path err = tmp.resolve("child-" + i + ".err");
            try {
                if (Files.exists(err)) {
                    sb.append("\n--- child ").append(i).append(":\n").append(Files.readString(err));
                }
            } catch (IOException e) {
                sb.append(e);
            }
        }
        return sb.toString();
    }
}
