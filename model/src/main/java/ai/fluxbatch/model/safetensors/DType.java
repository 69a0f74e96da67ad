package ai.fluxbatch.model.safetensors;

import java.util.Arrays;
import java.util.stream.Collectors;

/** The element types this reader and writer understand, named as in the safetensors header. */
public enum DType {
    F64(8),
    F32(4),
    F16(2),
    BF16(2),
    I64(8),
    I32(4),
    I8(1),
    U8(1);

    private final int size;

    DType(int size) {
        this.size = size;
    }

    /** Bytes per element. */
    public int size() {
        return size;
    }

    /** The dtype with this header name (case-sensitive, e.g. "BF16"). */
    public static DType fromName(String name) {
        for (DType d : values()) {
            if (d.name().equals(name)) {
                return d;
            }
        }
        throw new SafetensorsException(
                "unknown dtype " + (name == null ? "null" : "'" + name + "'") + "; supported: " + supportedNames());
    }

    static String supportedNames() {
        return Arrays.stream(values()).map(Enum::name).collect(Collectors.joining(", "));
    }
}
