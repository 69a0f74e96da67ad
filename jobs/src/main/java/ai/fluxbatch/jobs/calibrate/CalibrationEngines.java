package ai.fluxbatch.jobs.calibrate;

import ai.fluxbatch.jobs.ExecutorBackends;
import ai.fluxbatch.jobs.ExecutorEngines;
import ai.fluxbatch.jobs.model.ModelLocation;
import ai.fluxbatch.model.calib.ActivationRecorder;
import ai.fluxbatch.model.calib.CalibrationRun;
import ai.fluxbatch.model.pipeline.FluxPipeline;
import org.apache.hadoop.conf.Configuration;

/**
 * Calibrate's recording pipelines in this JVM's engine cache ({@link ExecutorEngines#jvm()}): one per (model, Gram
 * on/off, layer selection, backend), loaded on the executor the first time a task needs it, as generate's are, on the
 * task's backend ({@link ExecutorBackends#forCurrentTask}: the GPU Spark assigned it, or the CPU). The recorder holds
 * the statistics of the batch in flight, so a task must hold the engine's lock while it uses it: tasks that share an
 * executor take turns.
 */
public final class CalibrationEngines {
    /** The kind of calibrate's engines in {@link ExecutorEngines.Key}. */
    public static final String KIND = "calibrate";

    /** A loaded recording pipeline; synchronize on it while running. Closing it closes the pipeline. */
    public record Engine(FluxPipeline pipeline, CalibrationRun run) implements AutoCloseable {
        @Override
        public void close() {
            pipeline.close();
        }
    }

    private CalibrationEngines() {}

    /**
     * A lease on the engine of {@code s} on this task's backend; {@code hadoop} (the job's configuration) reaches a
     * model URI. Close it when the task's work is done.
     */
    public static ExecutorEngines.Lease<Engine> lease(CalibrateSettings s, Configuration hadoop) {
        ExecutorBackends.Opened backend = ExecutorBackends.forCurrentTask(s.device(), s.gemmPrecision());
        ExecutorEngines.Key key = new ExecutorEngines.Key(
                s.model(), backend.key().toString(), KIND, "gram=" + s.gram() + " layers=" + s.layers());
        return ExecutorEngines.jvm().acquire(key, () -> {
            ActivationRecorder recorder = new ActivationRecorder(s.gram(), s::records);
            FluxPipeline pipeline =
                    FluxPipeline.load(ModelLocation.folder(s.model(), hadoop), backend.backend(), recorder);
            return new Engine(pipeline, new CalibrationRun(pipeline, recorder));
        });
    }

    /** How many recording pipelines this JVM has loaded. */
    public static int loads() {
        return ExecutorEngines.jvm().loads(KIND);
    }
}
