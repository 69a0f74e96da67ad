package ai.fluxbatch.model;

import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.DigestInputStream;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.Collection;
import java.util.HexFormat;
import java.util.List;

/** SHA-256 digests as lower-case hex, for checksums in metadata and stable ids. */
public final class Sha256 {
    private Sha256() {}

    public static MessageDigest digest() {
        try {
            return MessageDigest.getInstance("SHA-256");
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException("SHA-256 is part of every Java runtime", e);
        }
    }

    public static String hex(byte[] data) {
        return HexFormat.of().formatHex(digest().digest(data));
    }

    /** The digest of the files' bytes, read one after the other in the given order. */
    public static String ofFiles(Collection<Path> files) {
        MessageDigest sha = digest();
        byte[] buf = new byte[1 << 20];
        for (Path f : files) {
            try (InputStream in = new DigestInputStream(Files.newInputStream(f), sha)) {
                while (in.read(buf) >= 0) {
                    // the digest sees every byte as it is read
                }
            } catch (IOException e) {
                throw new UncheckedIOException("cannot read " + f + " to checksum it: " + e.getMessage(), e);
            }
        }
        return hex(sha);
    }

    public static String ofFile(Path file) {
        return ofFiles(List.of(file));
    }

    /** The digest of a finished {@link #digest()} as hex. */
    public static String hex(MessageDigest sha) {
        return HexFormat.of().formatHex(sha.digest());
    }
}
