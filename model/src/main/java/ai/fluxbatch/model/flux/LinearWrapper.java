package ai.fluxbatch.model.flux;

/** Wraps each linear layer as it is loaded, for instance to record its inputs; named by its checkpoint prefix. */
@FunctionalInterface
public interface LinearWrapper {
    LinearWrapper NONE = (layer, in, linear) -> linear;

    Linear wrap(String layer, int in, Linear linear);
}
