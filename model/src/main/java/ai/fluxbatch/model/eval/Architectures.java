package ai.fluxbatch.model.eval;

import ai.fluxbatch.model.ModelException;
import ai.fluxbatch.model.flux.FluxConfig;
import ai.fluxbatch.model.flux.FluxConfigReader;
import ai.fluxbatch.model.safetensors.TensorSource;
import ai.fluxbatch.model.snapshot.FluxSnapshot;
import java.nio.file.Path;
import java.util.Arrays;

/** Whether two transformers are the same architecture, so that one's outputs can stand in for the other's. */
public final class Architectures {
    private Architectures() {}

    /** The transformer's config from its header and config.json, without loading any weight. */
    public static FluxConfig read(Path snapshotDir) {
        FluxSnapshot snapshot = FluxSnapshot.open(snapshotDir);
        try (TensorSource weights = snapshot.openTransformer()) {
            return FluxConfigReader.derive(weights, snapshot.transformerConfig(), snapshot.transformerConfigFile());
        }
    }

    /** Throws, naming both models and both configs, unless they match. */
    public static void requireSame(Path reference, FluxConfig ref, Path candidate, FluxConfig cand) {
        if (!same(ref, cand)) {
            throw new ModelException("candidate " + candidate + " is " + cand + ", but the reference " + reference
                    + " is " + ref + ": expected a quantized copy of the reference's architecture");
        }
    }

    // FluxConfig is a record with an int[] component, so its equals compares that array by identity
    static boolean same(FluxConfig a, FluxConfig b) {
        return a.inChannels() == b.inChannels()
                && a.outChannels() == b.outChannels()
                && a.hidden() == b.hidden()
                && a.heads() == b.heads()
                && a.mlpHidden() == b.mlpHidden()
                && a.depth() == b.depth()
                && a.depthSingle() == b.depthSingle()
                && a.contextDim() == b.contextDim()
                && a.vecDim() == b.vecDim()
                && a.guidanceEmbed() == b.guidanceEmbed()
                && Arrays.equals(a.axesDim(), b.axesDim())
                && a.theta() == b.theta();
    }
}
