package ai.fluxbatch.jobs.generate;

import ai.fluxbatch.model.image.PngEncoder;
import ai.fluxbatch.model.pipeline.FluxPipeline;
import ai.fluxbatch.model.pipeline.GenerationParams;
import ai.fluxbatch.model.pipeline.TextEmbedding;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.Iterator;
import java.util.List;
import java.util.Map;
import org.apache.hadoop.conf.Configuration;
import org.apache.spark.api.java.function.FlatMapFunction;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The work of one Spark partition: the executor's engine (loaded once per JVM), tasks in batches of
 * {@code batchSize} images, text embeddings computed once per prompt, each image written as soon as it exists.
 * A task that fails becomes an error row; the partition goes on.
 */
public final class GeneratePartition implements FlatMapFunction<Iterator<ImageTask>, ImageResult> {
    private static final Logger LOG = LoggerFactory.getLogger(GeneratePartition.class);

    private final GenerateSettings settings;
    private final SerializableConfiguration hadoopConf;
    /** Text embeddings of this partition's prompts: every image of a prompt reuses them. */
    private final Map<String, TextEmbedding> embeddings = new HashMap<>();

    public GeneratePartition(GenerateSettings settings, Configuration hadoopConf) {
        this.settings = settings;
        this.hadoopConf = new SerializableConfiguration(hadoopConf);
    }

    @Override
    public Iterator<ImageResult> call(Iterator<ImageTask> tasks) throws Exception {
        ImageStore store = new ImageStore(settings.output(), hadoopConf.get());
        List<ImageResult> results = new ArrayList<>();
        List<ImageTask> pending = new ArrayList<>();
        while (tasks.hasNext()) {
            ImageTask task = tasks.next();
            if (!settings.overwrite() && store.exists(task.id())) {
                results.add(new ImageResult(task.id(), task.prompt(), task.imageIndex(), task.seed(),
                        store.pathOf(task.id()), ImageResult.SKIPPED, null, 0));
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

    private List<ImageResult> runBatch(List<ImageTask> batch, ImageStore store) {
        long t0 = System.nanoTime();
        List<ImageResult> out = new ArrayList<>();
        try {
            FluxPipeline pipeline = Engines.get(settings.model());
            GenerationParams params = settings.params();
            List<TextEmbedding> prompts = new ArrayList<>();
            long[] seeds = new long[batch.size()];
            for (int i = 0; i < batch.size(); i++) {
                prompts.add(embeddings.computeIfAbsent(batch.get(i).prompt(), pipeline::embed));
                seeds[i] = batch.get(i).seed();
            }
            FluxPipeline.Batch made = pipeline.generate(prompts, seeds, params, step -> { });
            double seconds = (System.nanoTime() - t0) / 1e9 / batch.size();
            String modelName = Path.of(settings.model()).getFileName().toString();
            for (int i = 0; i < batch.size(); i++) {
                ImageTask task = batch.get(i);
                byte[] png = PngEncoder.encode(made.images().get(i),
                        PngMetadata.of(task, params, modelName, pipeline.variant()));
                String path = store.write(task.id(), png, settings.overwrite());
                out.add(new ImageResult(task.id(), task.prompt(), task.imageIndex(), task.seed(), path,
                        ImageResult.OK, null, seconds));
                LOG.info("{} seed {}: {} ({} s)", task.prompt(), task.seed(), path, String.format("%.2f", seconds));
            }
        } catch (RuntimeException | java.io.IOException e) {
            if (batch.size() > 1) {
                for (ImageTask task : batch) { // retry one by one, so one bad prompt fails alone
                    out.addAll(runBatch(List.of(task), store));
                }
                return out;
            }
            ImageTask task = batch.get(0);
            LOG.warn("{} seed {} failed: {}", task.prompt(), task.seed(), e.toString());
            out.add(new ImageResult(task.id(), task.prompt(), task.imageIndex(), task.seed(), null,
                    ImageResult.ERROR, String.valueOf(e.getMessage()), (System.nanoTime() - t0) / 1e9));
        }
        return out;
    }
}
