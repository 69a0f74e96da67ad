package ai.fluxbatch.jobs.calibrate;

import ai.fluxbatch.jobs.ExecutorBackends;
import ai.fluxbatch.jobs.model.ModelLocation;
import ai.fluxbatch.model.calib.ActivationRecorder;
import ai.fluxbatch.model.calib.CalibrationRun;
import ai.fluxbatch.model.pipeline.FluxPipeline;
import java.util.HashMap;
import java.util.Map;
import org.apache.hadoop.conf.Configuration;

/**
 * One recording pipeline per (model, Gram on/off, layer selection, backend) per JVM, loaded on the executor the first
 * time a task needs it, as {@code Engines} does for generate, on the task's backend
 * ({@link ExecutorBackends#forCurrentTask}: the GPU Spark assigned it, or the CPU). The recorder holds the statistics
 * of the batch in flight, so a task must hold the engine's lock while it uses it: tasks that share an executor take
 * turns.
 */
public final class CalibrationEngines {
    /** A loaded recording pipeline; synchronize on it while running. */
    public record Engine(FluxPipeline pipeline, CalibrationRun run) {}

    private static final Map<String, Engine> ENGINES = new HashMap<>();
    private static final Map<String, Integer> LOADS = new HashMap<>();

    private CalibrationEngines() {}

    /** The engine of {@code s} on this task's backend; {@code hadoop} (the job's configuration) reaches a model URI. */
    public static Engine get(CalibrateSettings s, Configuration hadoop) {
        ExecutorBackends.Opened backend = ExecutorBackends.forCurrentTask(s.device(), s.gemmPrecision());
        String key = s.model() + '\0' + s.gram() + '\0' + s.layers() + '\0' + backend.key();
        synchronized (CalibrationEngines.class) {
            return ENGINES.computeIfAbsent(key, k -> {
                LOADS.merge(k, 1, Integer::sum);
                ActivationRecorder recorder = new ActivationRecorder(s.gram(), s::records);
                FluxPipeline pipeline =
                        FluxPipeline.load(ModelLocation.folder(s.model(), hadoop), backend.backend(), recorder);
                return new Engine(pipeline, new CalibrationRun(pipeline, recorder));
            });
        }
    }

    /** How many recording pipelines this JVM has loaded. */
    public static synchronized int loads() {
        return LOADS.values().stream().mapToInt(Integer::intValue).sum();
    }
}
