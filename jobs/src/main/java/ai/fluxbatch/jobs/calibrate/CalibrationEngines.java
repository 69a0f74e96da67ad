package ai.fluxbatch.jobs.calibrate;

import ai.fluxbatch.kernel.Backend;
import ai.fluxbatch.kernel.cpu.CpuBackend;
import ai.fluxbatch.model.calib.ActivationRecorder;
import ai.fluxbatch.model.calib.CalibrationRun;
import ai.fluxbatch.model.pipeline.FluxPipeline;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.Map;

/**
 * One recording pipeline per (model, Gram on/off, layer selection) per JVM, loaded on the executor the first time a
 * task needs it, as {@code Engines} does for generate. The recorder holds the statistics of the batch in flight, so
 * a task must hold the engine's lock while it uses it: tasks that share an executor take turns.
 */
public final class CalibrationEngines {
    /** A loaded recording pipeline; synchronize on it while running. */
    public record Engine(FluxPipeline pipeline, CalibrationRun run) {
    }

    private static final Map<String, Engine> ENGINES = new HashMap<>();
    private static final Map<String, Integer> LOADS = new HashMap<>();
    private static Backend backend;

    private CalibrationEngines() {
    }

    public static synchronized Engine get(CalibrateSettings s) {
        String key = s.model() + '\0' + s.gram() + '\0' + s.layers();
        return ENGINES.computeIfAbsent(key, k -> {
            LOADS.merge(k, 1, Integer::sum);
            ActivationRecorder recorder = new ActivationRecorder(s.gram(), s::records);
            FluxPipeline pipeline = FluxPipeline.load(Path.of(s.model()), backend(), recorder);
            return new Engine(pipeline, new CalibrationRun(pipeline, recorder));
        });
    }

    private static Backend backend() {
        if (backend == null) {
            backend = new CpuBackend();
        }
        return backend;
    }

    /** How many recording pipelines this JVM has loaded. */
    public static synchronized int loads() {
        return LOADS.values().stream().mapToInt(Integer::intValue).sum();
    }
}
