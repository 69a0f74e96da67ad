package ai.fluxbatch.jobs;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.function.Supplier;
import org.apache.spark.SparkEnv;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The engines loaded in this executor JVM (generate's pipelines, calibrate's recording pipelines): at most
 * {@code capacity} of them, each loaded the first time a task asks for its {@link Key} and reused by every later task;
 * when another must load, the least recently used engine that no task holds is closed first. A task holds an engine
 * through a {@link Lease} (try-with-resources): an engine is never closed while a lease on it is open, and a task
 * that needs room while every engine is held waits until one is released. Two tasks asking for the same key at once
 * load it once. Engines run on the shared backends of {@link ExecutorBackends}, which they never close.
 *
 * <p>The capacity of this JVM's cache is {@value #DEFAULT_CAPACITY} unless the system property
 * {@value #CAPACITY_PROPERTY} or the Spark configuration key {@value #CAPACITY_CONF} (e.g.
 * {@code --conf spark.fluxbatch.executor.engines=1} for a GPU that holds one model) says otherwise.
 */
public final class ExecutorEngines {
    /** The system property that sets this JVM's capacity. */
    public static final String CAPACITY_PROPERTY = "fluxbatch.executor.engines";
    /** The Spark configuration key that sets each executor's capacity (the system property wins). */
    public static final String CAPACITY_CONF = "spark.fluxbatch.executor.engines";
    /** Engines per executor JVM unless configured: a model being replaced and the one replacing it. */
    public static final int DEFAULT_CAPACITY = 2;

    private static final Logger LOG = LoggerFactory.getLogger(ExecutorEngines.class);
    private static final Object JVM_LOCK = new Object();
    private static ExecutorEngines jvm;

    /**
     * Which engine: the model (a folder or URI, as the user gave it), the backend it runs on
     * ({@link ExecutorBackends.Key#toString}; "" where the model part names it), the kind of engine ("generate", "calibrate") and the kind's options
     * that change what is loaded ("" when none).
     */
    public record Key(String model, String backend, String kind, String options) {
        public Key {
            Objects.requireNonNull(model, "model");
            Objects.requireNonNull(backend, "backend");
            Objects.requireNonNull(kind, "kind");
            Objects.requireNonNull(options, "options");
        }

        @Override
        public String toString() {
            return kind + " engine of " + model + (backend.isEmpty() ? "" : " on " + backend)
                    + (options.isEmpty() ? "" : " (" + options + ")");
        }
    }

    /** A task's hold on an engine: the engine stays loaded and open until this closes. */
    public final class Lease<E extends AutoCloseable> implements AutoCloseable {
        private final Entry entry;
        private final Thread holder = Thread.currentThread();
        private boolean released;

        private Lease(Entry entry) {
            this.entry = entry;
        }

        @SuppressWarnings("unchecked") // one key is always loaded by the same kind of loader
        public E engine() {
            return (E) entry.engine;
        }

        /** Gives the engine back to the cache; closing again does nothing. */
        @Override
        public void close() {
            synchronized (ExecutorEngines.this) {
                if (released) {
                    return;
                }
                released = true;
            }
            release(entry, holder);
        }
    }

    private static final class Entry {
        final Key key;
        AutoCloseable engine;
        boolean loading = true;
        /** Open leases, and the threads holding them (a thread may hold several). */
        final Map<Thread, Integer> holders = new HashMap<>();

        Entry(Key key) {
            this.key = key;
        }

        int uses() {
            return holders.values().stream().mapToInt(Integer::intValue).sum();
        }
    }

    private final int capacity;
    /** In access order: least recently used first. */
    private final LinkedHashMap<Key, Entry> entries = new LinkedHashMap<>(4, 0.75f, true);

    /** Loads per (kind, model). */
    private final Map<List<String>, Integer> loads = new HashMap<>();

    private int closes;

    /** A cache of its own, for tests and for engines too big to share a cache; tasks use {@link #jvm()}. */
    public ExecutorEngines(int capacity) {
        if (capacity < 1) {
            throw new IllegalArgumentException("engine cache capacity is " + capacity + ", expected >= 1");
        }
        this.capacity = capacity;
    }

    /** This JVM's cache, created on first use with the configured capacity. */
    public static ExecutorEngines jvm() {
        synchronized (JVM_LOCK) {
            if (jvm == null) {
                jvm = new ExecutorEngines(configuredCapacity(
                        System.getProperty(CAPACITY_PROPERTY),
                        SparkEnv.get() == null ? null : SparkEnv.get().conf().get(CAPACITY_CONF, null)));
            }
            return jvm;
        }
    }

    /** The capacity the system property (first) or the Spark configuration value ask for, or the default. */
    static int configuredCapacity(String property, String conf) {
        String value = property != null ? property : conf;
        String name = property != null ? "system property " + CAPACITY_PROPERTY : CAPACITY_CONF;
        if (value == null || value.isBlank()) {
            return DEFAULT_CAPACITY;
        }
        int n;
        try {
            n = Integer.parseInt(value.trim());
        } catch (NumberFormatException e) {
            throw new IllegalArgumentException(name + " is '" + value + "', expected a whole number of engines >= 1");
        }
        if (n < 1) {
            throw new IllegalArgumentException(name + " is " + n + ", expected a whole number of engines >= 1");
        }
        return n;
    }

    public int capacity() {
        return capacity;
    }

    /**
     * A lease on the engine of {@code key}, loading it with {@code loader} first if it is not here (after closing the
     * least recently used engines no task holds, to make room). A loader that fails fails this call and leaves
     * nothing behind: the next task to ask tries again.
     *
     * @throws IllegalStateException when the thread is interrupted while it waits for room or for another task's load
     */
    public <E extends AutoCloseable> Lease<E> acquire(Key key, Supplier<? extends E> loader) {
        Objects.requireNonNull(key, "key");
        Objects.requireNonNull(loader, "loader");
        Entry entry;
        Lease<E> found = null;
        List<Entry> evicted = new ArrayList<>(); // idle engines taken out to make room: closed below, on every path
        try {
            synchronized (this) {
                boolean waited = false;
                while (true) {
                    entry = entries.get(key);
                    if (entry != null && !entry.loading) {
                        hold(entry);
                        found = new Lease<>(entry);
                        break;
                    }
                    if (entry == null) {
                        if (makeRoom(key, evicted)) {
                            entry = new Entry(key);
                            hold(entry);
                            entries.put(key, entry);
                            break;
                        }
                        if (!waited) {
                            LOG.info(
                                    "waiting for a task to release an engine ({} in use) to load the {}",
                                    capacity,
                                    key);
                            waited = true;
                        }
                    }
                    await(key);
                }
            }
        } finally {
            closeAll(evicted, key);
        }
        if (found != null) {
            return found;
        }
        AutoCloseable engine;
        try {
            engine = Objects.requireNonNull(loader.get(), () -> "the loader of the " + key + " returned null");
        } catch (RuntimeException | Error e) {
            synchronized (this) {
                entries.remove(key);
                notifyAll();
            }
            throw e;
        }
        synchronized (this) {
            entry.engine = engine;
            entry.loading = false;
            loads.merge(List.of(key.kind(), key.model()), 1, Integer::sum);
            notifyAll();
        }
        LOG.info("loaded the {}", key);
        return new Lease<>(entry);
    }

    /** How many engines this cache has loaded, of every kind and model. */
    public synchronized int loads() {
        return loads.values().stream().mapToInt(Integer::intValue).sum();
    }

    /** How many engines of {@code kind} this cache has loaded, of every model. */
    public synchronized int loads(String kind) {
        return loads.entrySet().stream()
                .filter(e -> e.getKey().get(0).equals(kind))
                .mapToInt(Map.Entry::getValue)
                .sum();
    }

    /** How many engines of {@code kind} and {@code model} (on any backend) this cache has loaded. */
    public synchronized int loads(String kind, String model) {
        return loads.getOrDefault(List.of(kind, model), 0);
    }

    /** How many engines this cache has closed. */
    public synchronized int closes() {
        return closes;
    }

    /** The keys of the loaded engines, least recently used first. */
    public synchronized List<Key> keys() {
        return entries.values().stream().filter(e -> !e.loading).map(e -> e.key).toList();
    }

    /**
     * Closes every engine no task holds, for tests and for shutting down.
     *
     * @return how many engines are still held (and so still open)
     */
    public int closeAll() {
        List<Entry> idle = new ArrayList<>();
        int held;
        synchronized (this) {
            for (Iterator<Entry> it = entries.values().iterator(); it.hasNext(); ) {
                Entry e = it.next();
                if (!e.loading && e.uses() == 0) {
                    it.remove();
                    idle.add(e);
                }
            }
            held = entries.size();
        }
        closeAll(idle, null);
        return held;
    }

    /**
     * Takes out the least recently used idle engines until {@code key} fits; true when it does. A thread that already
     * holds an engine of this cache is let past the capacity rather than wait for itself.
     */
    private boolean makeRoom(Key key, List<Entry> evicted) {
        long idle = entries.values().stream()
                .filter(e -> !e.loading && e.uses() == 0)
                .count();
        if (entries.size() - idle < capacity) { // closing idle engines makes room: only then close any
            Iterator<Entry> it = entries.values().iterator();
            while (entries.size() >= capacity && it.hasNext()) {
                Entry e = it.next();
                if (!e.loading && e.uses() == 0) {
                    it.remove();
                    evicted.add(e);
                }
            }
            return true;
        }
        Thread me = Thread.currentThread();
        if (entries.values().stream().anyMatch(e -> e.holders.containsKey(me))) {
            LOG.warn(
                    "loading the {} beyond the capacity of {} engines: this task already holds one of them",
                    key,
                    capacity);
            return true;
        }
        return false;
    }

    private void hold(Entry entry) {
        entry.holders.merge(Thread.currentThread(), 1, Integer::sum);
    }

    private void release(Entry entry, Thread holder) {
        List<Entry> evicted = new ArrayList<>();
        synchronized (this) {
            entry.holders.computeIfPresent(holder, (t, n) -> n == 1 ? null : n - 1);
            // over capacity since a task held two engines: the least recently used idle ones go
            Iterator<Entry> it = entries.values().iterator();
            while (entries.size() > capacity && it.hasNext()) {
                Entry e = it.next();
                if (!e.loading && e.uses() == 0) {
                    it.remove();
                    evicted.add(e);
                }
            }
            notifyAll();
        }
        closeAll(evicted, null);
    }

    private void await(Key key) {
        try {
            wait();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException("interrupted while waiting to load the " + key, e);
        }
    }

    private void closeAll(List<Entry> engines, Key forKey) {
        for (Entry e : engines) {
            if (forKey != null) {
                LOG.info("closing the {} to load the {}", e.key, forKey);
            } else {
                LOG.info("closing the {}", e.key);
            }
            try {
                e.engine.close();
            } catch (Exception ex) {
                LOG.warn("closing the {} failed: {}", e.key, ex.toString());
            }
            synchronized (this) {
                closes++;
            }
        }
    }
}
