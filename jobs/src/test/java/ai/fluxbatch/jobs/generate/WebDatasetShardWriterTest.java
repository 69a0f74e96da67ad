package ai.fluxbatch.jobs.generate;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.stream.Stream;
import org.apache.commons.compress.archivers.tar.TarArchiveEntry;
import org.apache.commons.compress.archivers.tar.TarArchiveInputStream;
import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.fs.FileSystem;
import org.apache.hadoop.fs.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class WebDatasetShardWriterTest {
    @TempDir
    java.nio.file.Path tmp;

    private FileSystem fs() throws IOException {
        FileSystem fs = FileSystem.getLocal(new Configuration());
        fs.setWriteChecksum(false);
        return fs;
    }

    private static byte[] image(int n, int seed) {
        byte[] b = new byte[n];
        for (int i = 0; i < n; i++) {
            b[i] = (byte) (i * 31 + seed);
        }
        return b;
    }

    @Test
    void aCommittedShardIsAPlainTarWithIndexedOffsets() throws IOException {
        FileSystem fs = fs();
        Path target = new Path(tmp.resolve("out/shards/data-000000.tar").toUri());
        byte[] a = image(700, 1), b = image(1500, 2);
        // an id longer than a ustar name (100 bytes): a POSIX long name
        String longId = "x".repeat(120);
        try (WebDatasetShardWriter w = WebDatasetShardWriter.open(
                fs, target, new Path(tmp.resolve("out/_tmp").toUri()), false)) {
            w.add("aaaa", "jpg", a, "{\"id\":\"aaaa\"}", "a red circle");
            w.add(longId, "png", b, "{}", "東京");
            assertFalse(fs.exists(target), "not visible before commit");
            w.commit();
        }
        List<String> names = new ArrayList<>();
        try (InputStream in = Files.newInputStream(tmp.resolve("out/shards/data-000000.tar"));
                TarArchiveInputStream tar = new TarArchiveInputStream(in)) {
            for (TarArchiveEntry e = tar.getNextEntry(); e != null; e = tar.getNextEntry()) {
                names.add(e.getName());
                if (e.getName().equals("aaaa.txt")) {
                    assertEquals("a red circle", new String(tar.readAllBytes(), StandardCharsets.UTF_8));
                }
            }
        }
        assertEquals(
                List.of("aaaa.jpg", "aaaa.json", "aaaa.txt", longId + ".png", longId + ".json", longId + ".txt"),
                names);
        byte[] all = Files.readAllBytes(tmp.resolve("out/shards/data-000000.tar"));
        List<ShardIndex.Member> members = ShardIndex.read(fs, target, "shards/data-000000.tar");
        assertEquals(6, members.size());
        ShardIndex.Member first = members.get(0), fourth = members.get(3);
        assertEquals("aaaa", first.id());
        assertEquals(longId, fourth.id());
        assertArrayEquals(a, Arrays.copyOfRange(all, (int) first.offset(), (int) (first.offset() + first.size())));
        assertArrayEquals(b, Arrays.copyOfRange(all, (int) fourth.offset(), (int) (fourth.offset() + fourth.size())));
        assertEquals(
                "東京",
                new String(
                        Arrays.copyOfRange(all, (int) members.get(5).offset(), (int)
                                (members.get(5).offset() + members.get(5).size())),
                        StandardCharsets.UTF_8));
        try (Stream<java.nio.file.Path> left = Files.list(tmp.resolve("out/_tmp"))) {
            assertEquals(0, left.count(), "no temporary left");
        }
    }

    @Test
    void aShardNotCommittedLeavesNothing() throws IOException {
        FileSystem fs = fs();
        Path target = new Path(tmp.resolve("out/shards/data-000001.tar").toUri());
        try (WebDatasetShardWriter w = WebDatasetShardWriter.open(
                fs, target, new Path(tmp.resolve("out/_tmp").toUri()), false)) {
            w.add("aaaa", "png", image(5000, 3), "{}", "p");
            // closed without commit, as when generating the shard's next image throws
        }
        assertFalse(fs.exists(target));
        assertFalse(fs.exists(target.getParent()), "not even the shards folder");
        try (Stream<java.nio.file.Path> left = Files.list(tmp.resolve("out/_tmp"))) {
            assertEquals(0, left.count(), "no temporary left");
        }
        assertNull(ShardIndex.read(fs, target, "shards/data-000001.tar"), "no shard: null");
    }

    @Test
    void aShardCutShortIsNotComplete() throws IOException {
        FileSystem fs = fs();
        Path target = new Path(tmp.resolve("out/shards/data-000000.tar").toUri());
        try (WebDatasetShardWriter w = WebDatasetShardWriter.open(
                fs, target, new Path(tmp.resolve("out/_tmp").toUri()), false)) {
            w.add("aaaa", "png", image(3000, 3), "{}", "p");
            w.commit();
        }
        java.nio.file.Path file = tmp.resolve("out/shards/data-000000.tar");
        byte[] whole = Files.readAllBytes(file);
        for (int cut : new int[] {whole.length - 512, 512 + 1000, 3 * 512 + 3072 + 512}) {
            Files.write(file, Arrays.copyOf(whole, cut));
            IOException e = assertThrows(IOException.class, () -> ShardIndex.read(fs, target, "s"), "cut " + cut);
            assertTrue(e.getMessage().contains("not a complete tar"), e.getMessage());
        }
    }

    @Test
    void anExistingShardIsReplacedOnlyWithOverwrite() throws IOException {
        FileSystem fs = fs();
        Path target = new Path(tmp.resolve("out/shards/data-000000.tar").toUri());
        Path tmpDir = new Path(tmp.resolve("out/_tmp").toUri());
        try (WebDatasetShardWriter w = WebDatasetShardWriter.open(fs, target, tmpDir, false)) {
            w.add("old", "png", image(10, 1), "{}", "p");
            w.commit();
        }
        try (WebDatasetShardWriter w = WebDatasetShardWriter.open(fs, target, tmpDir, true)) {
            w.add("new", "png", image(10, 1), "{}", "p");
            w.commit();
        }
        assertEquals("new", ShardIndex.read(fs, target, "s").get(0).id());
    }
}
