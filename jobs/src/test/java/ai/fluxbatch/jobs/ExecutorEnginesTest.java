package ai.fluxbatch.jobs;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.CyclicBarrier;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicReference;
import java.util.function.Supplier;
import org.junit.jupiter.api.Test;

/** The executor's engine cache: bounded, least recently used first out, closes what it evicts, never one in use. */
class ExecutorEnginesTest {
    /** An engine that only knows whether it was closed, and how often. */
    static final class FakeEngine implements AutoCloseable {
        final String name;
        final AtomicInteger closes = new AtomicInteger();

        FakeEngine(String name) {
            this.name = name;
        }

        boolean closed() {
            return closes.get() > 0;
        }

        @Override
        public void close() {
            closes.incrementAndGet();
        }
    }

    private final List<FakeEngine> made = new ArrayList<>();

    private static ExecutorEngines.Key key(String model) {
        return new ExecutorEngines.Key(model, "cpu", "generate", "");
    }

    private Supplier<FakeEngine> loader(String name) {
        return () -> {
            FakeEngine e = new FakeEngine(name);
            synchronized (made) {
                made.add(e);
            }
            return e;
        };
    }

    private FakeEngine use(ExecutorEngines cache, String model) {
        try (ExecutorEngines.Lease<FakeEngine> lease = cache.acquire(key(model), loader(model))) {
            return lease.engine();
        }
    }

    @Test
    void evictionClosesTheLeastRecentlyUsedEngine() {
        ExecutorEngines cache = new ExecutorEngines(2);
        FakeEngine a = use(cache, "a");
        assertSame(a, use(cache, "a"), "loaded once");
        FakeEngine b = use(cache, "b");
        use(cache, "a"); // a is now the most recently used
        FakeEngine c = use(cache, "c"); // evicts b
        assertEquals(3, cache.loads());
        assertEquals(1, cache.closes());
        assertFalse(a.closed(), "a stays");
        assertEquals(1, b.closes.get(), "b was evicted and closed once");
        assertFalse(c.closed(), "c is open");
        assertEquals(List.of(key("a"), key("c")), cache.keys());
        assertEquals(0, cache.closeAll(), "nothing is held");
        assertTrue(a.closed() && c.closed());
        assertEquals(1, b.closes.get(), "not closed again");
    }

    @Test
    void capacityOneWithTwoModelsAlternatesLoadsAndCloses() {
        ExecutorEngines cache = new ExecutorEngines(1);
        for (int i = 0; i < 3; i++) {
            use(cache, "a");
            use(cache, "b");
        }
        assertEquals(6, cache.loads());
        assertEquals(3, cache.loads("generate", "a"));
        assertEquals(3, cache.loads("generate", "b"));
        assertEquals(5, cache.closes(), "every load but the last closed the other model");
        assertEquals(
                List.of("a", "b", "a", "b", "a", "b"),
                made.stream().map(e -> e.name).toList());
        for (int i = 0; i < 5; i++) {
            assertEquals(1, made.get(i).closes.get(), "engine " + i + " closed once");
        }
        assertFalse(made.get(5).closed(), "the last one stays");
    }

    @Test
    void anEngineInUseIsClosedOnlyWhenItsLeaseIsReleased() throws Exception {
        ExecutorEngines cache = new ExecutorEngines(1);
        ExecutorEngines.Lease<FakeEngine> held = cache.acquire(key("a"), loader("a"));
        FakeEngine a = held.engine();
        CountDownLatch loadedB = new CountDownLatch(1);
        AtomicReference<FakeEngine> b = new AtomicReference<>();
        AtomicReference<Boolean> aClosedWhenBLoaded = new AtomicReference<>();
        Thread other = new Thread(() -> {
            try (ExecutorEngines.Lease<FakeEngine> lease = cache.acquire(key("b"), () -> {
                aClosedWhenBLoaded.set(a.closed());
                return loader("b").get();
            })) {
                b.set(lease.engine());
                loadedB.countDown();
            }
        });
        other.start();
        assertFalse(loadedB.await(300, TimeUnit.MILLISECONDS), "b waits while a is in use");
        assertFalse(a.closed(), "a is not closed while its task holds it");
        assertEquals(1, cache.closeAll(), "closeAll leaves a held engine open");
        assertFalse(a.closed());
        held.close();
        held.close(); // a second release changes nothing
        assertTrue(loadedB.await(10, TimeUnit.SECONDS), "b loads once a is released");
        other.join(10_000);
        assertTrue(a.closed(), "a was closed to make room for b");
        assertTrue(aClosedWhenBLoaded.get(), "a was closed before b loaded");
        assertEquals(1, a.closes.get());
        assertFalse(b.get().closed());
        assertEquals(List.of(key("b")), cache.keys());
    }

    @Test
    void aTaskWaitingForRoomClosesNothingUntilAnEngineIsReleased() throws Exception {
        ExecutorEngines cache = new ExecutorEngines(2);
        ExecutorEngines.Lease<FakeEngine> a = cache.acquire(key("a"), loader("a"));
        FakeEngine b = use(cache, "b"); // idle
        ExecutorEngines.Lease<FakeEngine> heldB = cache.acquire(key("b"), loader("b"));
        assertSame(b, heldB.engine());
        CountDownLatch loadedC = new CountDownLatch(1);
        Thread other = new Thread(() -> {
            use(cache, "c");
            loadedC.countDown();
        });
        other.start();
        assertFalse(loadedC.await(300, TimeUnit.MILLISECONDS), "c waits: a and b are both in use");
        assertFalse(a.engine().closed() || b.closed(), "nothing closed while c waits");
        heldB.close();
        assertTrue(loadedC.await(10, TimeUnit.SECONDS));
        other.join(10_000);
        assertTrue(b.closed(), "the released engine made room");
        assertFalse(a.engine().closed(), "the held one stays open");
        a.close();
        assertEquals(List.of(key("a"), key("c")), cache.keys());
    }

    @Test
    void twoThreadsAskingForOneKeyLoadItOnce() throws Exception {
        ExecutorEngines cache = new ExecutorEngines(2);
        int threads = 8;
        CyclicBarrier start = new CyclicBarrier(threads);
        AtomicInteger loaderCalls = new AtomicInteger();
        List<FakeEngine> seen = new ArrayList<>();
        List<Thread> all = new ArrayList<>();
        for (int i = 0; i < threads; i++) {
            Thread t = new Thread(() -> {
                try {
                    start.await(10, TimeUnit.SECONDS);
                } catch (Exception e) {
                    throw new IllegalStateException(e);
                }
                try (ExecutorEngines.Lease<FakeEngine> lease = cache.acquire(key("a"), () -> {
                    loaderCalls.incrementAndGet();
                    try {
                        Thread.sleep(100); // a slow load: the others arrive meanwhile
                    } catch (InterruptedException e) {
                        Thread.currentThread().interrupt();
                    }
                    return new FakeEngine("a");
                })) {
                    synchronized (seen) {
                        seen.add(lease.engine());
                    }
                }
            });
            all.add(t);
            t.start();
        }
        for (Thread t : all) {
            t.join(10_000);
        }
        assertEquals(1, loaderCalls.get(), "loads of one key asked for by " + threads + " threads at once");
        assertEquals(1, cache.loads());
        assertEquals(threads, seen.size());
        assertTrue(seen.stream().allMatch(e -> e == seen.get(0)), "every thread got the same engine");
    }

    @Test
    void aFailedLoadLeavesNothingAndTheNextAskLoadsAgain() {
        ExecutorEngines cache = new ExecutorEngines(1);
        IllegalStateException e = assertThrows(
                IllegalStateException.class,
                () -> cache.acquire(key("a"), () -> {
                    throw new IllegalStateException("no such model");
                }));
        assertEquals("no such model", e.getMessage());
        assertEquals(0, cache.loads());
        assertEquals(List.of(), cache.keys());
        assertEquals("a", use(cache, "a").name);
        assertEquals(1, cache.loads());
    }

    @Test
    void aTaskHoldingAnEngineMayLoadASecondBeyondTheCapacity() {
        ExecutorEngines cache = new ExecutorEngines(1);
        FakeEngine a;
        FakeEngine b;
        try (ExecutorEngines.Lease<FakeEngine> first = cache.acquire(key("a"), loader("a"))) {
            a = first.engine();
            try (ExecutorEngines.Lease<FakeEngine> second = cache.acquire(key("b"), loader("b"))) {
                b = second.engine(); // would wait for itself forever otherwise
                assertFalse(a.closed());
                assertEquals(List.of(key("a"), key("b")), cache.keys());
            }
            assertTrue(b.closed(), "back under the capacity as soon as one engine is idle");
            assertFalse(a.closed(), "a is still held");
        }
        assertFalse(a.closed(), "a fits the capacity");
        assertEquals(List.of(key("a")), cache.keys());
    }

    @Test
    void theCapacityComesFromThePropertyOrTheSparkConfigurationOrTheDefault() {
        assertEquals(ExecutorEngines.DEFAULT_CAPACITY, ExecutorEngines.configuredCapacity(null, null));
        assertEquals(3, ExecutorEngines.configuredCapacity(null, "3"));
        assertEquals(1, ExecutorEngines.configuredCapacity(" 1 ", "3"), "the system property wins");
        String m = assertThrows(IllegalArgumentException.class, () -> ExecutorEngines.configuredCapacity(null, "0"))
                .getMessage();
        assertTrue(m.contains(ExecutorEngines.CAPACITY_CONF) && m.contains(">= 1"), m);
        m = assertThrows(IllegalArgumentException.class, () -> ExecutorEngines.configuredCapacity("two", null))
                .getMessage();
        assertTrue(m.contains(ExecutorEngines.CAPACITY_PROPERTY) && m.contains("'two'"), m);
        assertThrows(IllegalArgumentException.class, () -> new ExecutorEngines(0));
    }
}
