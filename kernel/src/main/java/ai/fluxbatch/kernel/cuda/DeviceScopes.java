package ai.fluxbatch.kernel.cuda;

import ai.fluxbatch.kernel.Tensor;
import ai.fluxbatch.kernel.TensorScope;
import java.util.ArrayDeque;
import java.util.Collections;
import java.util.IdentityHashMap;
import java.util.List;
import java.util.Set;

/** The open {@link TensorScope}s of a CUDA backend, one stack per thread, and the storages each one owns. */
final class DeviceScopes {
    private final ThreadLocal<ArrayDeque<Scope>> stacks = ThreadLocal.withInitial(ArrayDeque::new);

    TensorScope open() {
        ArrayDeque<Scope> stack = stacks.get();
        Scope scope = new Scope(stack, stack.peek());
        stack.push(scope);
        return scope;
    }

    /** Gives a new storage to the innermost open scope of this thread; with none open it lives until unreachable. */
    void register(DeviceStorage storage) {
        Scope top = stacks.get().peek();
        if (top != null) {
            top.owned.add(storage);
        }
    }

    /** Takes the storages of {@code t} out of every scope this thread has open. */
    void detach(Tensor t) {
        List<DeviceStorage> storages = Scope.storages(t);
        for (Scope scope : stacks.get()) {
            storages.forEach(scope.owned::remove);
        }
    }

    private static final class Scope implements TensorScope {
        private final ArrayDeque<Scope> stack;
        private final Scope parent;
        private final Set<DeviceStorage> owned = Collections.newSetFromMap(new IdentityHashMap<>());
        private boolean closed;

        Scope(ArrayDeque<Scope> stack, Scope parent) {
            this.stack = stack;
            this.parent = parent;
        }

        @Override
        public Tensor keep(Tensor t) {
            if (closed) {
                throw new IllegalStateException("keep on a closed scope");
            }
            for (DeviceStorage storage : storages(t)) {
                if (owned.remove(storage) && parent != null) {
                    parent.owned.add(storage);
                }
            }
            return t;
        }

        private static List<DeviceStorage> storages(Tensor t) {
            if (t instanceof CudaTensor c) {
                return List.of(c.storage);
            }
            if (t instanceof CudaTernaryTensor w) {
                return List.of(w.codes, w.scale);
            }
            if (t instanceof CudaBf16Tensor w) {
                return List.of(w.storage);
            }
            throw new IllegalArgumentException("a CUDA scope cannot keep a tensor of another backend: " + t);
        }

        @Override
        public Runnable detach() {
            if (closed) {
                throw new IllegalStateException("detach on a closed scope");
            }
            end();
            List<DeviceStorage> storages = List.copyOf(owned);
            owned.clear();
            return () -> storages.forEach(DeviceStorage::release); // a storage releases once
        }

        @Override
        public void close() {
            if (closed) {
                return;
            }
            end();
            for (DeviceStorage storage : owned) {
                storage.release();
            }
            owned.clear();
        }

        private void end() {
            if (stack.peek() != this) {
                throw new IllegalStateException("tensor scopes must close in reverse order of opening (or on the"
                        + " thread that opened them)");
            }
            stack.pop();
            closed = true;
        }
    }
}
