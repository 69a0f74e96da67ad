package ai.fluxbatch.jobs.distill;

import ai.fluxbatch.jobs.ExecutorBackends;
import ai.fluxbatch.jobs.SerializableConfiguration;
import ai.fluxbatch.jobs.model.ModelLocation;
import ai.fluxbatch.model.distill.DistillSample;
import ai.fluxbatch.model.distill.GradientSums;
import ai.fluxbatch.model.distill.TrainableParameters;
import ai.fluxbatch.model.snapshot.FluxSnapshot;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import org.apache.spark.api.java.function.FlatMapFunction;
import org.apache.spark.broadcast.Broadcast;

/**
 * The work of one Spark partition in one step: its share of the batch through the executor's teacher and student
 * ({@link StudentEngines}, on the task's backend), with the step's parameters from the broadcast, into one {@link
 * GradientSums}. Only locations and settings travel; the models and their native handles stay on the executor (a
 * teacher given as a URI is resolved through the node's model cache when the pair is loaded).
 */
public final class DistillPartition implements FlatMapFunction<Iterator<DistillSample>, GradientSums> {
    private final DistillJobSettings settings;
    /** The job's Hadoop configuration, which reaches a model URI. */
    private final SerializableConfiguration hadoop;

    private final Broadcast<TrainableParameters> parameters;

    public DistillPartition(
            DistillJobSettings settings, SerializableConfiguration hadoop, Broadcast<TrainableParameters> parameters) {
        this.settings = settings;
        this.hadoop = hadoop;
        this.parameters = parameters;
    }

    @Override
    public Iterator<GradientSums> call(Iterator<DistillSample> samples) {
        List<DistillSample> all = new ArrayList<>();
        samples.forEachRemaining(all::add);
        if (all.isEmpty()) {
            return List.of(GradientSums.empty()).iterator();
        }
        ExecutorBackends.Opened backend = ExecutorBackends.forCurrentTask(settings.device(), settings.gemmPrecision());
        TrainableParameters current = parameters.value();
        GradientSums sums = StudentEngines.jvm()
                .with(
                        settings.engineKey() + '\0' + backend.key(),
                        () -> StudentFactory.byName(settings.factory())
                                .load(
                                        backend.backend(),
                                        FluxSnapshot.open(ModelLocation.folder(settings.teacher(), hadoop.get())),
                                        FluxSnapshot.open(Path.of(settings.student())),
                                        settings.settings()),
                        student -> student.gradients(current, all));
        return List.of(sums).iterator();
    }
}
