package ai.fluxbatch.model.pipeline;

/** Wall-clock seconds a batch spent in each stage of the pipeline. */
public record StageTimes(double textEncoders, double transformer, double vae) {
    public StageTimes plus(StageTimes o) {
        return new StageTimes(textEncoders + o.textEncoders, transformer + o.transformer, vae + o.vae);
    }
}
