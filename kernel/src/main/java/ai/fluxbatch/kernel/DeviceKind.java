package ai.fluxbatch.kernel;

import java.util.Arrays;
import java.util.Locale;
import java.util.stream.Collectors;

/** The backend a run asks for with {@code --device}: {@code auto} (CUDA when a GPU is visible), {@code cpu} or {@code cuda}. */
public enum DeviceKind {
    AUTO,
    CPU,
    CUDA;

    /** The name as the command line spells it. */
    public String optionName() {
        return name().toLowerCase(Locale.ROOT);
    }

    /** Case-insensitive; anything else is an {@link IllegalArgumentException} listing the choices. */
    public static DeviceKind parse(String text) {
        if (text != null) {
            String t = text.trim().toUpperCase(Locale.ROOT);
            for (DeviceKind kind : values()) {
                if (kind.name().equals(t)) {
                    return kind;
                }
            }
        }
        throw new IllegalArgumentException("unknown device '" + text + "': expected one of " + choices());
    }

    /** "auto, cpu, cuda". */
    public static String choices() {
        return Arrays.stream(values()).map(DeviceKind::optionName).collect(Collectors.joining(", "));
    }
}
