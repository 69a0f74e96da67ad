package ai.fluxbatch.jobs.output;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;

import org.apache.hadoop.fs.Path;
import org.junit.jupiter.api.Test;

class LocationsTest {
    @Test
    void aLocalPathIsLiteralAndAValueWithASchemeIsAUri() {
        Path local = Locations.path("/tmp/o%20 #y/");
        assertNull(local.toUri().getScheme());
        assertEquals("/tmp/o%20 #y", local.toUri().getPath());
        assertNull(local.toUri().getFragment());
        assertEquals(
                "/tmp/o%20 #y/_fluxbatch", new Path(local, "_fluxbatch").toUri().getPath());
        assertEquals("/tmp/a b", Locations.path("file:/tmp/a%20b").toUri().getPath());
        assertEquals("/tmp/a b", Locations.path("file:/tmp/a b").toUri().getPath());
        Path s3 = Locations.path("s3a://bucket/out/");
        assertEquals("s3a", s3.toUri().getScheme());
        assertEquals("bucket", s3.toUri().getAuthority());
        assertEquals("/out/x", new Path(s3, "x").toUri().getPath());
    }
}
