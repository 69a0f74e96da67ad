package ai.fluxbatch.jobs.generate;

import ai.fluxbatch.kernel.Backend;
import ai.fluxbatch.kernel.cpu.CpuBackend;
import ai.fluxbatch.model.pipeline.FluxPipeline;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.Map;

/**
 * One pipeline per model per JVM: created on the executor the first time a task needs it, then reused by every
 * task that runs there. Never serialized: tasks carry only the model's path.
 */
public final class Engines {
    private static final Map<String, FluxPipeline> PIPELINES = new HashMap<>();
    private static final Map<String, Integer> LOADS_BY_MODEL = new HashMap<>();
    private static Backend backend;

    private Engines() {
    }

    public static synchronized FluxPipeline get(String model) {
        return PIPELINES.computeIfAbsent(model, m -> {
            LOADS_BY_MODEL.merge(m, 1, Integer::sum);
            return FluxPipeline.load(Path.of(m), backend());
        });
    }

    private static Backend backend() {
        if (backend == null) {
            backend = new CpuBackend();
        }
        return backend;
    }

    /** How many pipelines this JVM has loaded: one per model, however many tasks ran. */
    public static synchronized int loads() {
        return LOADS_BY_MODEL.values().stream().mapToInt(Integer::intValue).sum();
    }

    /** How many times this JVM has loaded {@code model}: 1 once any task used it. */
    public static synchronized int loads(String model) {
        return LOADS_BY_MODEL.getOrDefault(model, 0);
    }
}
