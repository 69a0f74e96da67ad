package ai.fluxbatch.jobs.distill;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.fluxbatch.model.distill.LayerParameters;
import ai.fluxbatch.model.distill.QuadraticStudent;
import ai.fluxbatch.model.distill.TrainableParameters;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

/** The executor's teacher-student cache: loads once per key, holds at most its capacity, closes what it evicts. */
class StudentEnginesTest {
    private static QuadraticStudent student() {
        return new QuadraticStudent(new TrainableParameters(
                Map.of("single_blocks.0.linear1", new LayerParameters(new float[] {1f}, new float[] {0f}))));
    }

    @Test
    void loadsEachPairOnceAndClosesTheLeastRecentlyUsedWhenFull() {
        StudentEngines cache = new StudentEngines(2);
        List<QuadraticStudent> made = new ArrayList<>();
        java.util.function.Supplier<ai.fluxbatch.model.distill.StudentGradients> loader = () -> {
            QuadraticStudent s = student();
            made.add(s);
            return s;
        };
        Object a1 = cache.with("a", loader, s -> s);
        Object a2 = cache.with("a", loader, s -> s);
        assertSame(a1, a2);
        assertEquals(1, cache.loads());
        cache.with("b", loader, s -> s);
        cache.with("a", loader, s -> s); // a is now the most recently used
        cache.with("c", loader, s -> s); // evicts b
        assertEquals(3, cache.loads());
        assertFalse(made.get(0).closed(), "a stays");
        assertTrue(made.get(1).closed(), "b was evicted and closed");
        assertFalse(made.get(2).closed(), "c is open");
        cache.closeAll();
        assertTrue(made.stream().allMatch(QuadraticStudent::closed));
        assertThrows(IllegalArgumentException.class, () -> new StudentEngines(0));
    }

    @Test
    void aPairInUseIsClosedOnlyWhenItsTaskIsDone() throws Exception {
        StudentEngines cache = new StudentEngines(1);
        QuadraticStudent first = student();
        CountDownLatch using = new CountDownLatch(1), release = new CountDownLatch(1);
        java.util.concurrent.atomic.AtomicBoolean openAtTheEnd = new java.util.concurrent.atomic.AtomicBoolean();
        Thread task = new Thread(() -> cache.with("a", () -> first, s -> {
            using.countDown();
            try {
                release.await(10, TimeUnit.SECONDS);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
            openAtTheEnd.set(!first.closed());
            return s;
        }));
        task.start();
        assertTrue(using.await(10, TimeUnit.SECONDS));
        Thread other = new Thread(() -> cache.with("b", StudentEnginesTest::student, s -> s));
        other.start();
        Thread.sleep(200);
        assertFalse(first.closed(), "not closed while the task uses it");
        release.countDown();
        task.join(10_000);
        other.join(10_000);
        assertTrue(openAtTheEnd.get(), "open until its task was done");
        assertTrue(first.closed(), "closed once the task was done");
        assertEquals(2, cache.loads());
    }
}
