package ai.fluxbatch.jobs.generate;

import ai.fluxbatch.jobs.BatchRetry;
import ai.fluxbatch.jobs.ExecutorEngines;
import ai.fluxbatch.jobs.SerializableConfiguration;
import ai.fluxbatch.model.Sha256;
import ai.fluxbatch.model.pipeline.FluxPipeline;
import ai.fluxbatch.model.pipeline.GenerationParams;
import ai.fluxbatch.model.pipeline.TextEmbedding;
import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.Iterator;
import java.util.List;
import java.util.Map;
import java.util.Set;
import org.apache.hadoop.conf.Configuration;
import org.apache.spark.api.java.function.FlatMapFunction;
import org.apache.spark.util.LongAccumulator;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The work of one Spark partition: the executor's engine (loaded once per JVM), tasks in batches of
 * {@code batchSize} images, text embeddings computed once per prompt, each image written as soon as it exists.
 * A task that fails becomes an error row; the partition goes on, except that after a write to the output fails (a full
 * disk) its remaining tasks become error rows without work, and the failure is reported to the driver.
 */
public final class GeneratePartition implements FlatMapFunction<Iterator<ImageTask>, ImageResult> {
    private static final Logger LOG = LoggerFactory.getLogger(GeneratePartition.class);

    private final GenerateSettings settings;
    private final SerializableConfiguration hadoopConf;
    private final GenerateProgress.Counters counters;
    /** Text embeddings of this partition's prompts: every image of a prompt reuses them. */
    private final Map<String, TextEmbedding> embeddings = new HashMap<>();
    /** Files found cut short or corrupt: their new image replaces them (a rename onto them fails on HDFS). */
    private final Set<String> replace = new HashSet<>();
    /** Why the first image write of this partition failed; once set, the partition's remaining tasks are not made. */
    private transient String writeFailure;
    /** Where images go instead of files under the layout (a WebDataset shard); null for files. */
    private final transient ImageSink sink;

    /**
     * Where a partition's images go instead of files (a {@link WebDatasetShardWriter}'s shard): {@code row} is the
     * image's metadata row (its write seconds not yet known), {@code image} the encoded image.
     */
    interface ImageSink {
        /** The path the metadata rows name. */
        String path();

        void write(ImageResult row, byte[] image) throws IOException;
    }

    public GeneratePartition(GenerateSettings settings, Configuration hadoopConf, GenerateProgress.Counters counters) {
        this(settings, hadoopConf, counters, null);
    }

    GeneratePartition(
            GenerateSettings settings, Configuration hadoopConf, GenerateProgress.Counters counters, ImageSink sink) {
        this.settings = settings;
        this.hadoopConf = new SerializableConfiguration(hadoopConf);
        this.counters = counters;
        this.sink = sink;
    }

    /** Why writing an image failed in this partition, or null. */
    String writeFailure() {
        return writeFailure;
    }

    @Override
    public Iterator<ImageResult> call(Iterator<ImageTask> tasks) throws Exception {
        // no output: the images stay in the result rows (the DataFrame API without a folder)
        ImageStore store = settings.output() == null ? null : new ImageStore(settings.output(), hadoopConf.get());
        List<ImageResult> results = new ArrayList<>();
        List<ImageTask> pending = new ArrayList<>();
        while (tasks.hasNext()) {
            ImageTask task = tasks.next();
            if (task.error() != null) {
                results.add(count(ImageResult.of(task, settings, null, ImageResult.ERROR, task.error())));
                continue;
            }
            if (writeFailure != null) { // the output is failing (a full disk): no more work for it
                results.add(count(ImageResult.of(
                        task,
                        settings,
                        null,
                        ImageResult.ERROR,
                        "not generated: an earlier write failed: " + writeFailure)));
                continue;
            }
            String path = settings.imageFormat().path(settings.layout().path(task));
            try {
                if (store == null) {
                    pending.add(task);
                    if (pending.size() == settings.batchSize()) {
                        results.addAll(runBatch(pending, null));
                        pending.clear();
                    }
                    continue;
                }
                String target = store.pathOf(path); // refuses a path outside the output
                ImageStore.Existing existing = settings.overwrite() || sink != null
                        ? ImageStore.Existing.INVALID // a shard is skipped whole, by ShardPartition
                        : store.existing(path);
                if (existing == ImageStore.Existing.COMPLETE_PNG) {
                    results.add(count(ImageResult.of(task, settings, target, ImageResult.SKIPPED, null)));
                    continue;
                }
                if (existing == ImageStore.Existing.INVALID) {
                    replace.add(path);
                }
            } catch (IOException e) { // a path refused, or the output unreadable: this image fails, the others go on
                results.add(count(ImageResult.of(task, settings, null, ImageResult.ERROR, e.getMessage())));
                continue;
            }
            pending.add(task);
            if (pending.size() == settings.batchSize()) {
                results.addAll(runBatch(pending, store));
                pending.clear();
            }
        }
        if (!pending.isEmpty()) {
            results.addAll(runBatch(pending, store));
        }
        return results.iterator();
    }

    private ImageResult count(ImageResult r) {
        LongAccumulator a = switch (r.status()) {
            case ImageResult.OK -> counters.ok();
            case ImageResult.SKIPPED -> counters.skipped();
            default -> counters.errors();
        };
        a.add(1);
        counters.countDevice(r);
        return r;
    }

    private List<ImageResult> runBatch(List<ImageTask> batch, ImageStore store) {
        // a model that cannot load (or a model URI that cannot be reached) fails the task, not a row
        try (ExecutorEngines.Lease<FluxPipeline> engine = Engines.lease(settings, hadoopConf.get())) {
            FluxPipeline pipeline = engine.engine();
            List<ImageResult> out = new ArrayList<>();
            for (Made m : BatchRetry.run(batch, b -> List.of(make(pipeline, b)), (task, e) -> {
                LOG.warn("{} (seed {}) failed: {}", task.prompt(), task.seed(), e.toString());
                return new Made(
                        List.of(task),
                        null,
                        0,
                        count(ImageResult.of(task, settings, null, ImageResult.ERROR, String.valueOf(e.getMessage()))));
            })) {
                if (m.error() != null) {
                    out.add(m.error());
                } else {
                    out.addAll(write(pipeline, m.tasks(), m.batch(), m.text(), store));
                }
            }
            return out;
        }
    }

    /** The images of some tasks and their text seconds per image, or the error row of a task that failed alone. */
    private record Made(List<ImageTask> tasks, FluxPipeline.Batch batch, double text, ImageResult error) {}

    /** The images of {@code batch}, made together; throws when any fails. */
    private Made make(FluxPipeline pipeline, List<ImageTask> batch) {
        GenerationParams params = settings.params();
        long t0 = System.nanoTime();
        List<TextEmbedding> prompts = new ArrayList<>();
        long[] seeds = new long[batch.size()];
        for (int i = 0; i < batch.size(); i++) {
            prompts.add(embeddings.computeIfAbsent(
                    batch.get(i).prompt(), prompt -> pipeline.embed(prompt, settings.maxSequenceLength())));
            seeds[i] = batch.get(i).seed();
        }
        double text = (System.nanoTime() - t0) / 1e9 / batch.size();
        return new Made(batch, pipeline.generate(prompts, seeds, params, step -> {}), text, null);
    }

    /** Each image of a made batch encoded and stored: its row, OK or an error of its own. */
    private List<ImageResult> write(
            FluxPipeline pipeline, List<ImageTask> batch, FluxPipeline.Batch made, double text, ImageStore store) {
        List<ImageResult> out = new ArrayList<>();
        GenerationParams params = settings.params();
        MadeOn madeOn = MadeOn.currentTask(settings);
        String modelName = Path.of(settings.model()).getFileName().toString();
        for (int i = 0; i < batch.size(); i++) {
            long w0 = System.nanoTime();
            ImageTask task = batch.get(i);
            byte[] png;
            String path;
            try {
                png = ImageEncoding.encode(
                        made.images().get(i),
                        PngMetadata.of(task, params, settings.maxSequenceLength(), modelName, pipeline.variant()),
                        settings.imageFormat(),
                        settings.jpegQuality());
                String relative = settings.imageFormat().path(settings.layout().path(task));
                if (sink != null) {
                    path = sink.path();
                    sink.write(
                            ImageResult.of(task, settings, path, ImageResult.OK, null)
                                    .made(
                                            Sha256.hex(png),
                                            text,
                                            made.times().transformer() / batch.size(),
                                            made.times().vae() / batch.size(),
                                            0)
                                    .on(madeOn),
                            png);
                } else if (store == null) {
                    path = null; // no output: the row carries the image
                } else {
                    path = store.write(relative, png, settings.overwrite() || replace.contains(relative));
                }
            } catch (RuntimeException e) {
                LOG.warn("{} (seed {}) failed: {}", task.prompt(), task.seed(), e.toString());
                out.add(count(ImageResult.of(task, settings, null, ImageResult.ERROR, String.valueOf(e.getMessage()))));
                continue;
            } catch (IOException e) { // the image was made but could not be stored: an error row, and no more work
                LOG.warn("{} (seed {}): {}", task.prompt(), task.seed(), e.getMessage());
                if (writeFailure == null) {
                    writeFailure = ImageStore.cause(e);
                    counters.writeFailures().add(writeFailure);
                }
                out.add(count(ImageResult.of(task, settings, null, ImageResult.ERROR, e.getMessage())));
                continue;
            }
            double write = (System.nanoTime() - w0) / 1e9;
            out.add(count(ImageResult.of(task, settings, path, ImageResult.OK, null)
                    .made(
                            Sha256.hex(png),
                            text,
                            made.times().transformer() / batch.size(),
                            made.times().vae() / batch.size(),
                            write)
                    .withImage(store == null ? png : null)
                    .on(madeOn)));
            LOG.info("{} (seed {}) -> {}", task.prompt(), task.seed(), path);
        }
        return out;
    }
}
