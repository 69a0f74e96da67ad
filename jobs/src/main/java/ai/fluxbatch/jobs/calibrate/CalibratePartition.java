package ai.fluxbatch.jobs.calibrate;

import ai.fluxbatch.jobs.BatchRetry;
import ai.fluxbatch.jobs.ExecutorEngines;
import ai.fluxbatch.jobs.SerializableConfiguration;
import ai.fluxbatch.model.calib.CalibrationStats;
import ai.fluxbatch.model.pipeline.TextEmbedding;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.Iterator;
import java.util.List;
import java.util.Map;
import org.apache.hadoop.conf.Configuration;
import org.apache.spark.TaskContext;
import org.apache.spark.api.java.function.FlatMapFunction;
import org.apache.spark.util.LongAccumulator;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The work of one Spark partition: its prompts in batches of {@code batchSize} along the sampling trajectory of the
 * executor's recording engine, merged into one {@link CalibrationPartial}. A batch that fails is run again prompt by
 * prompt, so a bad prompt fails alone and leaves no statistics behind; the partition goes on.
 */
public final class CalibratePartition implements FlatMapFunction<Iterator<CalibratePrompt>, CalibrationPartial> {
    /**
     * Test hook: when this system property is true, the first attempt of partition 0 fails after it has done its
     * work, so that a test can check a retried task's statistics count once.
     */
    public static final String FAIL_FIRST_ATTEMPT = "fluxbatch.test.failFirstAttempt";

    private static final Logger LOG = LoggerFactory.getLogger(CalibratePartition.class);

    private final CalibrateSettings settings;
    /** The job's Hadoop configuration, which reaches a model URI. */
    private final SerializableConfiguration hadoopConf;

    private final LongAccumulator promptsDone;

    public CalibratePartition(CalibrateSettings settings, Configuration hadoopConf, LongAccumulator promptsDone) {
        this.settings = settings;
        this.hadoopConf = new SerializableConfiguration(hadoopConf);
        this.promptsDone = promptsDone;
    }

    @Override
    public Iterator<CalibrationPartial> call(Iterator<CalibratePrompt> prompts) {
        List<CalibratePrompt> all = new ArrayList<>();
        prompts.forEachRemaining(all::add);
        CalibrationPartial partial = new CalibrationPartial();
        if (!all.isEmpty()) {
            // a model that cannot load fails the task
            try (ExecutorEngines.Lease<CalibrationEngines.Engine> lease =
                    CalibrationEngines.lease(settings, hadoopConf.get())) {
                CalibrationEngines.Engine engine = lease.engine();
                synchronized (engine) {
                    Map<String, TextEmbedding> embeddings = new HashMap<>();
                    for (int i = 0; i < all.size(); i += settings.batchSize()) {
                        runBatch(
                                engine,
                                all.subList(i, Math.min(all.size(), i + settings.batchSize())),
                                embeddings,
                                partial);
                    }
                }
            }
        }
        failFirstAttemptIfAsked();
        return List.of(partial).iterator();
    }

    private void runBatch(
            CalibrationEngines.Engine engine,
            List<CalibratePrompt> batch,
            Map<String, TextEmbedding> embeddings,
            CalibrationPartial partial) {
        // each outcome is applied once its run is over: a batch that fails leaves no statistics behind
        BatchRetry.<CalibratePrompt, Runnable>run(
                        batch,
                        prompts -> {
                            CalibrationStats stats = record(engine, prompts, embeddings);
                            return List.of(() -> {
                                partial.add(stats, prompts.size());
                                promptsDone.add(prompts.size());
                            });
                        },
                        (p, e) -> {
                            LOG.warn("prompt {} '{}' failed: {}", p.index(), p.prompt(), e.toString());
                            return () -> {
                                partial.fail(p, String.valueOf(e.getMessage()));
                                promptsDone.add(1);
                            };
                        })
                .forEach(Runnable::run);
    }

    private CalibrationStats record(
            CalibrationEngines.Engine engine, List<CalibratePrompt> batch, Map<String, TextEmbedding> embeddings) {
        List<TextEmbedding> texts = new ArrayList<>();
        long[] seeds = new long[batch.size()];
        for (int i = 0; i < batch.size(); i++) {
            texts.add(embeddings.computeIfAbsent(
                    batch.get(i).prompt(), prompt -> engine.pipeline().embed(prompt, settings.maxSequenceLength())));
            seeds[i] = batch.get(i).seed();
        }
        return engine.run().record(texts, seeds, settings.params(), settings.recordedSteps());
    }

    private static void failFirstAttemptIfAsked() {
        TaskContext task = TaskContext.get();
        if (Boolean.getBoolean(FAIL_FIRST_ATTEMPT)
                && task != null
                && task.partitionId() == 0
                && task.attemptNumber() == 0) {
            throw new IllegalStateException(FAIL_FIRST_ATTEMPT + ": the first attempt of partition 0 fails on purpose");
        }
    }
}
