package ai.fluxbatch.jobs.model;

import java.nio.file.Files;
import java.nio.file.Path;

/**
 * A JVM that resolves one model URI, for {@link ModelCacheTest}'s several-processes case: {@code CACHE URI GO
 * DELAY_MS}. It makes its file system first and prints {@code ready}, waits until the file GO exists (so that all the
 * processes resolve at once), resolves through a {@link SourceFileSystem} that takes DELAY_MS to open each file, and
 * prints {@code downloaded FOLDER} or {@code found FOLDER}.
 */
public final class ModelCacheChild {
    private ModelCacheChild() {}

    public static void main(String[] args) throws Exception {
        ModelCache cache = new ModelCache(Path.of(args[0]));
        String uri = args[1];
        Path go = Path.of(args[2]);
        SourceFileSystem.openDelayMillis = Long.parseLong(args[3]);
        var conf = SourceFileSystem.conf();
        org.apache.hadoop.fs.FileSystem.newInstance(java.net.URI.create(uri), conf)
                .close(); // classes loaded before the start
        System.out.println("ready");
        System.out.flush();
        long deadline = System.nanoTime() + 60_000_000_000L;
        while (!Files.exists(go)) {
            if (System.nanoTime() > deadline) {
                throw new IllegalStateException(go + " did not appear within 60 s");
            }
            Thread.sleep(5);
        }
        ModelCache.Resolved r = cache.resolve(uri, conf);
        System.out.println((r.downloaded() ? "downloaded " : "found ") + r.folder());
    }
}
