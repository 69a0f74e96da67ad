package ai.fluxbatch.kernel;

/**
 * A region of tensor lifetimes, opened with {@link Backend#openScope()}: the tensors its backend makes while this is
 * the innermost open scope of the thread are freed when it closes, except those passed to {@link #keep}, which move
 * to the enclosing scope (or, with none, live until closed or unreachable). Scopes nest and close in reverse order.
 * A backend whose memory the garbage collector manages (the CPU) hands out {@link #NONE}, which frees nothing.
 */
public interface TensorScope extends AutoCloseable {
    TensorScope NONE = new TensorScope() {
        @Override
        public Tensor keep(Tensor t) {
            return t;
        }

        @Override
        public Runnable detach() {
            return () -> {};
        }

        @Override
        public void close() {}
    };

    /** Keeps {@code t} (and every view of its data) alive past this scope; returns it. */
    Tensor keep(Tensor t);

    /**
     * Ends this scope like {@link #close} but leaves its tensors alive, owned by the returned action, which frees them
     * when run (once; later runs do nothing): for weights a model loads inside a scope and frees when it is closed.
     * {@link #NONE}'s frees nothing.
     */
    Runnable detach();

    @Override
    void close();
}
