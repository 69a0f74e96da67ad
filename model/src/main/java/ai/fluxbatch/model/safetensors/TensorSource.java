package ai.fluxbatch.model.safetensors;

import java.nio.ByteBuffer;
import java.nio.file.Path;
import java.util.Map;
import java.util.SortedSet;

/** Named tensors read from one safetensors file or a sharded set of them. */
public interface TensorSource extends AutoCloseable {

    SortedSet<String> names();

    boolean contains(String name);

    /** The tensor's header entry; a missing tensor is a {@link SafetensorsException} naming the file(s). */
    TensorInfo info(String name);

    /** All elements converted to float32 (BF16/F16 exactly, F64 rounded, integers cast). */
    float[] floats(String name);

    /** All elements converted to float64. */
    double[] doubles(String name);

    /** All elements as longs; a float tensor is accepted only if every value is a whole number. */
    long[] longs(String name);

    /**
     * A read-only little-endian view of {@code length} bytes of the tensor's data starting
     * {@code byteOffset} bytes into it, for reading tensors too large for one array in pieces.
     */
    ByteBuffer bytes(String name, long byteOffset, int length);

    /** The file's {@code __metadata__} (or the index's metadata), never null. */
    Map<String, String> metadata();

    /** The file that holds this tensor. */
    Path file(String name);

    @Override
    void close();
}
