package ai.fluxbatch.jobs;

import ai.fluxbatch.kernel.Backend;
import ai.fluxbatch.kernel.CudaAvailability;
import ai.fluxbatch.kernel.DeviceKind;
import ai.fluxbatch.kernel.GpuVisibility;
import ai.fluxbatch.kernel.cpu.CpuBackend;
import ai.fluxbatch.kernel.cuda.CudaBackend;
import ai.fluxbatch.kernel.cuda.GemmPrecision;
import java.util.HashMap;
import java.util.Map;
import java.util.Objects;
import java.util.Optional;
import java.util.function.Consumer;
import java.util.function.Supplier;
import org.apache.spark.SparkEnv;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The backends of this executor JVM: one per {@link Key} (the CPU, or a CUDA device with a GEMM precision), opened the
 * first time a task needs it and shared by every engine and task after that; never closed (they live as long as the
 * executor). Each backend's resolution reason is logged once, when it opens. A CUDA backend that fails to open under
 * {@code --device auto} leaves that task, and every later one resolved to the same device, on the CPU with the
 * error's message as the reason; under {@code --device cuda} the failure is rethrown (and again for later tasks).
 */
public final class ExecutorBackends {
    private static final Logger LOG = LoggerFactory.getLogger(ExecutorBackends.class);
    /** /dev/nvidia0, then nvidia-smi -L; asked at most once per JVM. */
    private static final Supplier<Optional<String>> GPU =
            memoize(() -> GpuVisibility.system().detect());

    private static final Supplier<Optional<String>> CUDA_MISSING = memoize(CudaAvailability::missing);
    private static final ExecutorBackends JVM =
            new ExecutorBackends(ExecutorBackends::openReal, message -> LOG.info("{}", message));

    /** Which backend: the CPU (ordinal -1, no precision) or CUDA device {@code ordinal} with {@code precision}. */
    public record Key(DeviceKind kind, int ordinal, GemmPrecision precision) {
        public Key {
            Objects.requireNonNull(kind, "kind");
            if (kind == DeviceKind.CPU && (ordinal != -1 || precision != null)) {
                throw new IllegalArgumentException("the cpu key has ordinal -1 and no precision");
            }
            if (kind == DeviceKind.CUDA && (ordinal < 0 || precision == null)) {
                throw new IllegalArgumentException("a cuda key needs an ordinal >= 0 and a precision");
            }
            if (kind == DeviceKind.AUTO) {
                throw new IllegalArgumentException("a backend key is cpu or cuda, not auto");
            }
        }

        public static final Key CPU = new Key(DeviceKind.CPU, -1, null);

        public static Key cuda(int ordinal, GemmPrecision precision) {
            return new Key(DeviceKind.CUDA, ordinal, precision);
        }

        /** The key of a resolution: CUDA keys carry {@code precision}, the CPU's ignores it. */
        public static Key of(ExecutorDevice.Resolution resolution, GemmPrecision precision) {
            return resolution.kind() == DeviceKind.CUDA ? cuda(resolution.ordinal(), precision) : CPU;
        }

        /** "cpu" or "cuda:1/bf16". */
        @Override
        public String toString() {
            return kind == DeviceKind.CPU ? "cpu" : "cuda:" + ordinal + "/" + precision.optionName();
        }
    }

    /** A shared backend and the key it was opened for: the CPU's when a CUDA backend fell back. */
    public record Opened(Key key, Backend backend) {}

    /** Opens the backend of a key; the JVM's opens a {@link CpuBackend} or {@link CudaBackend#open}. */
    @FunctionalInterface
    public interface Opener {
        Backend open(Key key);
    }

    private final Opener opener;
    private final Consumer<String> log;
    private final Map<Key, Backend> open = new HashMap<>();
    /** CUDA keys whose backend failed to open, with the failure. */
    private final Map<Key, RuntimeException> failed = new HashMap<>();

    /** A cache of its own, for tests; {@link #forCurrentTask} uses this JVM's. */
    public ExecutorBackends(Opener opener, Consumer<String> log) {
        this.opener = Objects.requireNonNull(opener);
        this.log = Objects.requireNonNull(log);
    }

    /**
     * The backend of the running Spark task: {@link ExecutorDevice#resolve} with the task's GPU address, whether this
     * is local mode, CUDA_VISIBLE_DEVICES, this machine's GPUs and this build's CUDA support, then this JVM's shared
     * backend for the result.
     *
     * @throws IllegalStateException when {@code requested} is cuda and the task cannot have it
     */
    public static Opened forCurrentTask(DeviceKind requested, GemmPrecision precision) {
        ExecutorDevice.Resolution resolution = ExecutorDevice.resolve(
                requested,
                SparkGpuAddress.current(),
                localMode(),
                System.getenv("CUDA_VISIBLE_DEVICES"),
                GPU::get,
                CUDA_MISSING);
        return JVM.get(resolution, requested, precision);
    }

    /**
     * The shared backend of {@code resolution}, opening it on first use.
     *
     * @param requested what the user asked for: under auto a CUDA backend that fails to open falls back to the CPU,
     *                  otherwise the failure is thrown
     */
    public synchronized Opened get(
            ExecutorDevice.Resolution resolution, DeviceKind requested, GemmPrecision precision) {
        Key key = Key.of(resolution, precision);
        Backend backend = open.get(key);
        if (backend != null) {
            return new Opened(key, backend);
        }
        RuntimeException failure = failed.get(key);
        if (failure == null) {
            try {
                backend = opener.open(key);
                open.put(key, backend);
                log.accept("backend " + key + " opened (--device " + requested.optionName() + "): "
                        + resolution.reason() + " -> " + backend.name());
                return new Opened(key, backend);
            } catch (RuntimeException | LinkageError e) {
                if (key.kind() == DeviceKind.CPU) {
                    throw e;
                }
                failure = e instanceof RuntimeException r ? r : new IllegalStateException(e.toString(), e);
                failed.put(key, failure);
                if (requested == DeviceKind.AUTO) {
                    log.accept("backend " + key + " failed to open (" + resolution.reason() + "): " + message(failure)
                            + "; auto falls back to the CPU backend");
                }
            }
        }
        if (requested != DeviceKind.AUTO) {
            throw new IllegalStateException(
                    "--device " + requested.optionName() + ": the CUDA backend on device " + key.ordinal()
                            + " failed to open (" + resolution.reason() + "): " + message(failure),
                    failure);
        }
        return get(
                ExecutorDevice.Resolution.cpu(
                        "auto: the CUDA backend on device " + key.ordinal() + " failed to open: " + message(failure)),
                requested,
                precision);
    }

    /** The keys of the backends open in this cache. */
    public synchronized java.util.Set<Key> openKeys() {
        return java.util.Set.copyOf(open.keySet());
    }

    /** Whether this JVM is the driver's in Spark's local mode (executor "driver", or a local[...] master). */
    static boolean localMode() {
        SparkEnv env = SparkEnv.get();
        if (env == null) {
            return false;
        }
        return "driver".equals(env.executorId())
                || ExecutorDevice.isLocalMaster(env.conf().get("spark.master", null));
    }

    private static Backend openReal(Key key) {
        return key.kind() == DeviceKind.CPU ? new CpuBackend() : CudaBackend.open(key.ordinal(), key.precision());
    }

    private static String message(Throwable e) {
        return e.getMessage() != null ? e.getMessage() : e.toString();
    }

    private static <T> Supplier<T> memoize(Supplier<T> s) {
        return new Supplier<>() {
            private T value;

            @Override
            public synchronized T get() {
                if (value == null) {
                    value = s.get();
                }
                return value;
            }
        };
    }
}
