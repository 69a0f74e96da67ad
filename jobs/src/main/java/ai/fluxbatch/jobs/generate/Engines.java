package ai.fluxbatch.jobs.generate;

import ai.fluxbatch.jobs.ExecutorBackends;
import ai.fluxbatch.jobs.ExecutorEngines;
import ai.fluxbatch.jobs.model.ModelLocation;
import ai.fluxbatch.kernel.DeviceKind;
import ai.fluxbatch.kernel.cuda.GemmPrecision;
import ai.fluxbatch.model.pipeline.FluxPipeline;
import org.apache.hadoop.conf.Configuration;

/**
 * Generate's pipelines in this JVM's engine cache ({@link ExecutorEngines#jvm()}): one per (model, backend), loaded on
 * the executor the first time a task needs it, then reused by every task that runs there until the cache closes it to
 * make room. The backend is the task's ({@link ExecutorBackends#forCurrentTask}): the GPU Spark assigned it, or the
 * CPU, shared with every other engine of this JVM. Never serialized: tasks carry only the model's location and the
 * requested device; a model URI is resolved here, through this node's model cache ({@link ModelLocation}), when the
 * pipeline is loaded.
 */
public final class Engines {
    /** The kind of generate's engines in {@link ExecutorEngines.Key}. */
    public static final String KIND = "generate";

    private Engines() {}

    /**
     * A lease on the pipeline of {@code s.model()} on the backend this task resolves {@code s.device()} to; {@code
     * hadoop} (the job's Hadoop configuration) reaches a model URI. Close it when the pipeline's work is done.
     */
    public static ExecutorEngines.Lease<FluxPipeline> lease(GenerateSettings s, Configuration hadoop) {
        return lease(s.model(), s.device(), s.gemmPrecision(), hadoop);
    }

    /** A lease on the pipeline of {@code model} (a folder or URI) on the backend this task resolves {@code device} to. */
    public static ExecutorEngines.Lease<FluxPipeline> lease(
            String model, DeviceKind device, GemmPrecision precision, Configuration hadoop) {
        ExecutorBackends.Opened backend = ExecutorBackends.forCurrentTask(device, precision);
        return ExecutorEngines.jvm()
                .acquire(
                        new ExecutorEngines.Key(model, backend.key().toString(), KIND, ""),
                        () -> FluxPipeline.load(ModelLocation.folder(model, hadoop), backend.backend()));
    }

    /** How many pipelines this JVM has loaded: one per model and backend, however many tasks ran, unless evicted. */
    public static int loads() {
        return ExecutorEngines.jvm().loads(KIND);
    }

    /** How many times this JVM has loaded {@code model}: 1 once any task used it (per backend it ran on). */
    public static int loads(String model) {
        return ExecutorEngines.jvm().loads(KIND, model);
    }
}
