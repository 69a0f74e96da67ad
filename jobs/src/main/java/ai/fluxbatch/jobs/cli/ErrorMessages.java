package ai.fluxbatch.jobs.cli;

import java.lang.reflect.InvocationTargetException;
import java.lang.reflect.UndeclaredThrowableException;
import java.util.Collections;
import java.util.IdentityHashMap;
import java.util.Set;
import java.util.concurrent.CompletionException;
import java.util.concurrent.ExecutionException;
import java.util.regex.Pattern;
import org.apache.spark.SparkException;

/**
 * The one line a failed command prints: the message of the exception that says what went wrong, not of the layers
 * that carried it. Spark wraps a task's failure in a {@link SparkException} ("Job aborted due to stage failure ...")
 * around further SparkExceptions around the real cause (for a damaged Parquet file: "file:/x.parquet is not a Parquet
 * file ..."), so those and other pure carriers are unwrapped down to the first exception that is not one.
 */
final class ErrorMessages {
    /** Spark's preamble before a remote task's exception when the cause itself did not travel. */
    private static final Pattern STAGE_FAILURE = Pattern.compile(
            "^Job aborted due to stage failure: .*?most recent failure: Lost task [^:]*?\\): (?:[\\w.$]+(?:Exception|Error): )?");

    private ErrorMessages() {}

    /**
     * The message of {@code e}'s first non-carrier cause, first line only, secrets masked; its class if it has none.
     * Where that message quotes its carrier cause (code that added context to a Spark failure, as "cannot read Parquet
     * file F: " + e.getMessage()), the quote is replaced by what the cause itself comes down to.
     */
    static String of(Throwable e) {
        return Redact.text(unwrapped(e, Collections.newSetFromMap(new IdentityHashMap<>())));
    }

    private static String unwrapped(Throwable e, Set<Throwable> seen) {
        Throwable t = e;
        while (t.getCause() != null && seen.add(t) && isCarrier(t)) {
            t = t.getCause();
        }
        String message = message(t);
        Throwable cause = t.getCause();
        if (cause != null && !seen.contains(cause) && isCarrier(cause) && cause.getMessage() != null) {
            int quoted = message.indexOf(message(cause));
            if (quoted > 0) {
                return message.substring(0, quoted) + unwrapped(cause, seen);
            }
        }
        return STAGE_FAILURE.matcher(message).replaceFirst("");
    }

    /** The first line of the message, or the class name. */
    private static String message(Throwable t) {
        String m = t.getMessage();
        if (m == null || m.isBlank()) {
            return t.getClass().getName();
        }
        m = m.strip();
        int newline = m.indexOf('\n');
        return newline < 0 ? m : m.substring(0, newline).strip();
    }

    private static boolean isCarrier(Throwable t) {
        String m = t.getMessage();
        return t instanceof SparkException
                || t instanceof ExecutionException
                || t instanceof CompletionException
                || t instanceof InvocationTargetException
                || t instanceof UndeclaredThrowableException
                || m == null
                || m.isBlank()
                || (t.getCause() != null && m.equals(t.getCause().toString()));
    }
}
