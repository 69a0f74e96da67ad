package ai.fluxbatch.jobs.output;

import java.net.URI;
import java.util.regex.Pattern;
import org.apache.hadoop.fs.Path;

/**
 * The Hadoop path of a location the user gave ({@code --prompts}, {@code --output}): a value with a scheme
 * ({@code s3a://b/out}, {@code file:/tmp/a%20b}) is a URI, with its escapes (a space is taken as one); any other value
 * is a local path taken literally, {@code %}, {@code #} and spaces included ({@code /tmp/50%/out} is that folder), as
 * Spark's readers and writers take it.
 */
public final class Locations {
    private static final Pattern SCHEME = Pattern.compile("[A-Za-z][A-Za-z0-9+.-]*:");

    private Locations() {}

    /** {@code location} as a Hadoop path; an IllegalArgumentException if it is a malformed URI. */
    public static Path path(String location) {
        return SCHEME.matcher(location).lookingAt()
                ? new Path(URI.create(location.replace(" ", "%20")))
                : new Path(location);
    }
}
