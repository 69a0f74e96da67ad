package ai.fluxbatch.model.safetensors;

import static org.junit.jupiter.api.Assertions.assertTimeoutPreemptively;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.fluxbatch.model.ModelException;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Random;

/**
 * Running fuzz cases: {@value #DEFAULT_CASES} per test by default with a fixed seed, {@code -Dfluxbatch.fuzz.cases=N}
 * and {@code -Dfluxbatch.fuzz.seed=S} for more or others. A case passes when it is refused with a
 * SafetensorsException or ModelException naming the file, or accepted (unless it must fail) with the content its body
 * checks; anything else (another exception, a timeout, an out-of-memory, a wrong read) is a failure.
 */
public final class FuzzCases {
    public static final int DEFAULT_CASES = 300;

    private FuzzCases() {}

    /** Tallies of one fuzz run, printed at the end and checked. */
    public static final class Tally {
        int cases;
        int refused;
        int acceptedIdentical;
        int acceptedChanged;
        final List<String> failures = new ArrayList<>();

        public void check(String what) {
            System.out.printf(
                    "%s: %d cases, %d refused with a clear error, %d accepted identical, %d accepted with"
                            + " changed content (data bytes, names or dtypes the format cannot check), %d failures%n",
                    what, cases, refused, acceptedIdentical, acceptedChanged, failures.size());
            assertTrue(
                    failures.isEmpty(),
                    failures.size() + " of " + cases + " cases failed:\n"
                            + String.join("\n", failures.subList(0, Math.min(20, failures.size()))));
        }
    }

    public static int cases() {
        return Integer.getInteger("fluxbatch.fuzz.cases", DEFAULT_CASES);
    }

    public static Random random() {
        return new Random(Long.getLong("fluxbatch.fuzz.seed", 20250613L));
    }

    /** Runs {@code body} on each case with a timeout; a clear refusal names {@code file}. */
    public static void run(Tally tally, String label, SafetensorsMutator.Mutation m, Path file, CaseBody body) {
        tally.cases++;
        String where = label + " #" + tally.cases + " (" + m.description() + ")";
        try {
            Files.write(file, m.bytes());
            Boolean identical = assertTimeoutPreemptively(Duration.ofSeconds(20), () -> body.run(m, file));
            if (m.mustFail()) {
                tally.failures.add(where + ": accepted, expected a refusal");
            } else if (identical) {
                tally.acceptedIdentical++;
            } else {
                tally.acceptedChanged++;
            }
        } catch (SafetensorsException | ModelException e) {
            if (e.getMessage() != null && e.getMessage().contains(file.toString())) {
                tally.refused++;
            } else {
                tally.failures.add(where + ": the error does not name " + file + ": " + e.getMessage());
            }
        } catch (AssertionError | RuntimeException | OutOfMemoryError | IOException e) {
            tally.failures.add(where + ": " + e);
        }
    }

    /** Reads the case's file; returns whether it held exactly the original content. */
    @FunctionalInterface
    public interface CaseBody {
        boolean run(SafetensorsMutator.Mutation m, Path file) throws Exception;
    }

    /**
     * Every tensor of {@code in} reads exactly the bytes of {@code data} (the data area the file was built with) at its
     * data_offsets, and decodes: no header mistake shifted or hid data.
     */
    public static void requireBytesAtOffsets(TensorSource in, byte[] data) {
        for (String name : in.names()) {
            TensorInfo t = in.info(name);
            byte[] want = Arrays.copyOfRange(data, (int) t.begin(), (int) t.end());
            if (!Arrays.equals(want, bytes(in, name, t))) {
                throw new AssertionError("tensor '" + name + "' " + t + " does not read the data at its offsets");
            }
            if (in.floats(name).length != t.numel()) {
                throw new AssertionError("tensor '" + name + "' decodes to the wrong length");
            }
        }
    }

    static byte[] bytes(TensorSource in, String name, TensorInfo t) {
        ByteBuffer b = in.bytes(name, 0, Math.toIntExact(t.byteLength()));
        byte[] out = new byte[b.remaining()];
        b.get(out);
        return out;
    }
}
