package ai.fluxbatch.model.safetensors;

import java.nio.file.Path;
import java.util.List;
import java.util.Locale;

/** Opens a tensor source by file name: a safetensors file or a sharded index. Never unpickles. */
public final class TensorSources {
    private static final List<String> PICKLE = List.of(".bin", ".pt", ".pth", ".ckpt", ".pkl");

    private TensorSources() {}

    public static TensorSource open(Path path) {
        Path name = path.getFileName();
        String lower = name == null ? "" : name.toString().toLowerCase(Locale.ROOT);
        RegularFiles.require(path);
        if (lower.endsWith(".safetensors.index.json")) {
            return ShardedSafetensors.open(path);
        }
        if (lower.endsWith(".safetensors")) {
            return SafetensorsFile.open(path);
        }
        for (String ext : PICKLE) {
            if (lower.endsWith(ext)) {
                throw new SafetensorsException(
                        "refusing to read " + path + ": it is a pickle file, and unpickling"
                                + " can run arbitrary code; only safetensors are read (convert it with the safetensors library)");
            }
        }
        throw new SafetensorsException("cannot read " + path + ": expected a .safetensors file or a"
                + " .safetensors.index.json index of sharded safetensors");
    }
}
