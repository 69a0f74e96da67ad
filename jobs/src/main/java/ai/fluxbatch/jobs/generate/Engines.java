package ai.fluxbatch.jobs.generate;

import ai.fluxbatch.jobs.ExecutorBackends;
import ai.fluxbatch.jobs.model.ModelLocation;
import ai.fluxbatch.kernel.DeviceKind;
import ai.fluxbatch.kernel.cuda.GemmPrecision;
import ai.fluxbatch.model.pipeline.FluxPipeline;
import java.util.HashMap;
import java.util.Map;
import org.apache.hadoop.conf.Configuration;

/**
 * One pipeline per (model, backend) per JVM: created on the executor the first time a task needs it, then reused by
 * every task that runs there. The backend is the task's ({@link ExecutorBackends#forCurrentTask}): the GPU Spark
 * assigned it, or the CPU, shared with every other engine of this JVM. Never serialized: tasks carry only the
 * model's location and the requested device; a model URI is resolved here, through this node's model cache
 * ({@link ModelLocation}), when the pipeline is loaded.
 */
public final class Engines {
    private static final Map<String, FluxPipeline> PIPELINES = new HashMap<>();
    private static final Map<String, Integer> LOADS_BY_MODEL = new HashMap<>();

    private Engines() {}

    /**
     * The pipeline of {@code s.model()} on the backend this task resolves {@code s.device()} to; {@code hadoop} (the
     * job's Hadoop configuration) reaches a model URI.
     */
    public static FluxPipeline get(GenerateSettings s, Configuration hadoop) {
        return get(s.model(), s.device(), s.gemmPrecision(), hadoop);
    }

    /** The pipeline of {@code model} (a folder or URI) on the backend this task resolves {@code device} to. */
    public static FluxPipeline get(String model, DeviceKind device, GemmPrecision precision, Configuration hadoop) {
        ExecutorBackends.Opened backend = ExecutorBackends.forCurrentTask(device, precision);
        synchronized (Engines.class) {
            return PIPELINES.computeIfAbsent(model + '\0' + backend.key(), k -> {
                LOADS_BY_MODEL.merge(model, 1, Integer::sum);
                return FluxPipeline.load(ModelLocation.folder(model, hadoop), backend.backend());
            });
        }
    }

    /** How many pipelines this JVM has loaded: one per model and backend, however many tasks ran. */
    public static synchronized int loads() {
        return LOADS_BY_MODEL.values().stream().mapToInt(Integer::intValue).sum();
    }

    /** How many times this JVM has loaded {@code model}: 1 once any task used it (per backend it ran on). */
    public static synchronized int loads(String model) {
        return LOADS_BY_MODEL.getOrDefault(model, 0);
    }
}
