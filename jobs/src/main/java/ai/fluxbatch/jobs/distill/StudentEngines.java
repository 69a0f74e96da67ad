package ai.fluxbatch.jobs.distill;

import ai.fluxbatch.model.distill.StudentGradients;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.function.Function;
import java.util.function.Supplier;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The teacher-student pairs loaded in this executor JVM: at most {@code capacity} (a full-precision FLUX.1 teacher and
 * its 1.58-bit student take about 27 GB), loaded the first time a task needs one and reused by every later step; the
 * least recently used is closed when another must load. Tasks that share a pair take turns with it; a pair is closed
 * only once the task using it is done.
 */
public final class StudentEngines {
    /** One pair per executor JVM. */
    public static final int JVM_CAPACITY = 1;

    private static final Logger LOG = LoggerFactory.getLogger(StudentEngines.class);
    private static final StudentEngines JVM = new StudentEngines(JVM_CAPACITY);

    private static final class Engine {
        final StudentGradients gradients;
        boolean closed;

        Engine(StudentGradients gradients) {
            this.gradients = gradients;
        }
    }

    private final int capacity;
    private final LinkedHashMap<String, Engine> engines = new LinkedHashMap<>(4, 0.75f, true);
    private int loads;

    /** A cache of its own, for tests; tasks use {@link #jvm()}. */
    public StudentEngines(int capacity) {
        if (capacity < 1) {
            throw new IllegalArgumentException("capacity is " + capacity + ", expected >= 1");
        }
        this.capacity = capacity;
    }

    /** This JVM's cache. */
    public static StudentEngines jvm() {
        return JVM;
    }

    /**
     * Runs {@code work} with the pair of {@code key}, loading it with {@code loader} first if it is not here (closing
     * the least recently used pairs to make room); holds the pair for the duration, so no other task uses or closes it
     * meanwhile.
     */
    public <T> T with(String key, Supplier<StudentGradients> loader, Function<StudentGradients, T> work) {
        while (true) {
            Engine engine;
            synchronized (this) {
                engine = engines.get(key);
                if (engine == null) {
                    evictFor(key);
                    engine = new Engine(loader.get());
                    loads++;
                    engines.put(key, engine);
                }
            }
            synchronized (engine) {
                if (!engine.closed) {
                    return work.apply(engine.gradients);
                }
            } // closed between the lookup and now: look again
        }
    }

    /** How many pairs this cache has loaded. */
    public synchronized int loads() {
        return loads;
    }

    /** Closes every pair, for tests and for shutting down. */
    public synchronized void closeAll() {
        for (Iterator<Engine> it = engines.values().iterator(); it.hasNext(); ) {
            close(it.next());
            it.remove();
        }
    }

    private void evictFor(String key) {
        Iterator<Map.Entry<String, Engine>> it = engines.entrySet().iterator(); // least recently used first
        while (engines.size() >= capacity && it.hasNext()) {
            Map.Entry<String, Engine> eldest = it.next();
            it.remove();
            LOG.info("closing the teacher and student of {} to load {}", label(eldest.getKey()), label(key));
            close(eldest.getValue());
        }
    }

    private static void close(Engine engine) {
        synchronized (engine) { // waits for a task still using it
            engine.closed = true;
            try {
                engine.gradients.close();
            } catch (RuntimeException e) {
                LOG.warn("closing a teacher and student failed: {}", e.toString());
            }
        }
    }

    private static String label(String key) {
        return key.replace('\0', ' ');
    }
}
