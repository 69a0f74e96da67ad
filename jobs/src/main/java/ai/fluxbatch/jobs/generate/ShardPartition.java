package ai.fluxbatch.jobs.generate;

import ai.fluxbatch.jobs.SerializableConfiguration;
import ai.fluxbatch.jobs.output.Locations;
import java.io.IOException;
import java.io.Serializable;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.Iterator;
import java.util.List;
import java.util.Set;
import org.apache.hadoop.fs.FileSystem;
import org.apache.hadoop.fs.Path;
import org.apache.spark.TaskContext;
import org.apache.spark.api.java.function.FlatMapFunction;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The work of one Spark partition under {@code --format webdataset}: one shard, {@link #shards} of the run's tasks in
 * task order, so shard k always holds images {@code [k * N, (k + 1) * N)} of the same task list. A shard already
 * complete with exactly the samples its tasks would make is skipped (every image a skipped row); anything else there
 * (another run's shard, one that lacks failed images, a damaged tar) is made again and replaced. The images are made
 * by {@link GeneratePartition}, written into a {@link WebDatasetShardWriter}, and the shard is committed only when the
 * partition is done: a failed or killed task leaves no shard, and its retry writes the whole shard again. When writing
 * the shard fails its images become error rows and the failure goes to the driver, as for files.
 */
public final class ShardPartition implements FlatMapFunction<Iterator<ShardPartition.Shard>, ImageResult> {
    /** Test only: the first attempt of partition 0 fails after making its images, before committing its shard. */
    public static final String FAIL_FIRST_ATTEMPT = "fluxbatch.test.shardFailFirstAttempt";

    private static final Logger LOG = LoggerFactory.getLogger(ShardPartition.class);

    private final GenerateSettings settings;
    private final SerializableConfiguration hadoopConf;
    private final GenerateProgress.Counters counters;

    /** Shard {@code number} and the tasks whose images it holds. */
    public record Shard(int number, List<ImageTask> tasks) implements Serializable {}

    public ShardPartition(
            GenerateSettings settings, org.apache.hadoop.conf.Configuration conf, GenerateProgress.Counters counters) {
        this.settings = settings;
        this.hadoopConf = new SerializableConfiguration(conf);
        this.counters = counters;
    }

    /** {@code tasks} in shards of {@code imagesPerShard}, in order: shard k holds tasks {@code [k * N, (k + 1) * N)}. */
    public static List<Shard> shards(List<ImageTask> tasks, int imagesPerShard) {
        List<Shard> shards = new ArrayList<>();
        for (int from = 0; from < tasks.size(); from += imagesPerShard) {
            shards.add(new Shard(
                    shards.size(), List.copyOf(tasks.subList(from, Math.min(tasks.size(), from + imagesPerShard)))));
        }
        return shards;
    }

    @Override
    public Iterator<ImageResult> call(Iterator<Shard> shards) throws Exception {
        List<ImageResult> results = new ArrayList<>();
        while (shards.hasNext()) {
            results.addAll(run(shards.next()));
        }
        return results.iterator();
    }

    private List<ImageResult> run(Shard shard) throws Exception {
        String root = Locations.path(settings.output()).toString();
        String base = root.endsWith("/") ? root : root + "/";
        Path target = new Path(base + ShardIndex.shardPath(shard.number()));
        FileSystem fs = target.getFileSystem(hadoopConf.get());
        fs.setWriteChecksum(false);
        String extension = settings.imageFormat().extension();
        Set<String> expected = new HashSet<>();
        for (ImageTask t : shard.tasks()) {
            if (t.error() == null) {
                expected.add(t.id() + "." + extension);
            }
        }
        boolean replace = false;
        if (!settings.overwrite()) {
            List<ShardIndex.Member> members;
            try {
                members = ShardIndex.read(fs, target, ShardIndex.shardPath(shard.number()));
            } catch (IOException e) {
                LOG.warn("{}: made again: {}", target, e.getMessage());
                members = List.of();
            }
            if (members != null) {
                Set<String> images = new HashSet<>();
                for (ShardIndex.Member m : members) {
                    if (!m.member().endsWith(".json") && !m.member().endsWith(".txt")) {
                        images.add(m.member());
                    }
                }
                if (images.equals(expected) && members.size() == 3 * expected.size()) {
                    return skipped(shard, target);
                }
                LOG.info("{} holds other samples than its tasks make: made again", target);
                replace = true;
            }
        }
        try (WebDatasetShardWriter writer =
                WebDatasetShardWriter.open(fs, target, new Path(base + "_tmp"), settings.overwrite() || replace)) {
            GeneratePartition partition = new GeneratePartition(settings, hadoopConf.get(), counters, sink(writer));
            List<ImageResult> rows = new ArrayList<>();
            partition.call(shard.tasks().iterator()).forEachRemaining(rows::add);
            failFirstAttemptIfAsked(writer);
            String failure = partition.writeFailure();
            if (failure == null) {
                try {
                    writer.commit();
                } catch (IOException e) {
                    failure = ImageStore.cause(e);
                    counters.writeFailures().add(failure);
                }
            }
            if (failure == null) {
                return rows;
            }
            writer.abort();
            java.util.Map<String, ImageTask> byId = new java.util.HashMap<>();
            shard.tasks().forEach(t -> byId.put(t.id(), t));
            List<ImageResult> failed = new ArrayList<>();
            for (ImageResult r : rows) {
                if (!r.status().equals(ImageResult.OK)) {
                    failed.add(r);
                    continue;
                }
                counters.ok().add(-1);
                counters.errors().add(1);
                failed.add(ImageResult.of(
                        byId.get(r.id()),
                        settings,
                        null,
                        ImageResult.ERROR,
                        "not written: the shard " + target + " could not be written: " + failure));
            }
            return failed;
        }
    }

    private List<ImageResult> skipped(Shard shard, Path target) {
        List<ImageResult> rows = new ArrayList<>();
        for (ImageTask t : shard.tasks()) {
            ImageResult r = t.error() != null
                    ? ImageResult.of(t, settings, null, ImageResult.ERROR, t.error())
                    : ImageResult.of(t, settings, target.toString(), ImageResult.SKIPPED, null);
            (r.status().equals(ImageResult.SKIPPED) ? counters.skipped() : counters.errors()).add(1);
            rows.add(r);
        }
        return rows;
    }

    private GeneratePartition.ImageSink sink(WebDatasetShardWriter writer) {
        String extension = settings.imageFormat().extension();
        return new GeneratePartition.ImageSink() {
            @Override
            public String path() {
                return writer.target().toString();
            }

            @Override
            public void write(ImageResult row, byte[] image) throws IOException {
                writer.add(row.id(), extension, image, MetadataTable.json(row), row.prompt());
            }
        };
    }

    private static void failFirstAttemptIfAsked(WebDatasetShardWriter writer) {
        TaskContext task = TaskContext.get();
        if (Boolean.getBoolean(FAIL_FIRST_ATTEMPT)
                && task != null
                && task.partitionId() == 0
                && task.attemptNumber() == 0) {
            throw new IllegalStateException(FAIL_FIRST_ATTEMPT + ": the first attempt of partition 0 fails on purpose,"
                    + " with " + writer.samples() + " samples in its unfinished shard");
        }
    }
}
