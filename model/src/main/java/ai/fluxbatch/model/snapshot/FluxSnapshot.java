package ai.fluxbatch.model.snapshot;

import ai.fluxbatch.model.ModelException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.stream.Stream;

/**
 * A FLUX.1 snapshot in the Hugging Face repository layout: the original single-file transformer
 * ({@code flux1-dev.safetensors}, {@code flux1-schnell.safetensors}, or a sharded {@code *.safetensors.index.json})
 * at the root, {@code transformer/config.json}, and the other components in their folders.
 */
public final class FluxSnapshot {
    private static final ObjectMapper JSON = new ObjectMapper();
    private static final List<String> KNOWN_TRANSFORMER_FILES = List.of(
            "flux1-dev.safetensors", "flux1-schnell.safetensors",
            "flux1-dev.safetensors.index.json", "flux1-schnell.safetensors.index.json");
    private static final List<String> NOT_A_TRANSFORMER = List.of("ae.safetensors");

    private final Path root;
    private final Path transformerFile;
    private final JsonNode transformerConfig;

    private FluxSnapshot(Path root, Path transformerFile, JsonNode transformerConfig) {
        this.root = root;
        this.transformerFile = transformerFile;
        this.transformerConfig = transformerConfig;
    }

    public static FluxSnapshot open(Path dir) {
        if (!Files.exists(dir)) {
            throw new ModelException("model folder " + dir + " does not exist: expected a FLUX.1 snapshot folder"
                    + " in the Hugging Face layout (flux1-dev.safetensors, transformer/config.json, ...)");
        }
        if (!Files.isDirectory(dir)) {
            throw new ModelException("model " + dir + " is a file: --model takes the snapshot folder that holds it");
        }
        Path config = dir.resolve("transformer").resolve("config.json");
        return new FluxSnapshot(dir, findTransformer(dir), readJson(config, "the transformer configuration"));
    }

    public Path root() {
        return root;
    }

    public Path transformerFile() {
        return transformerFile;
    }

    public JsonNode transformerConfig() {
        return transformerConfig;
    }

    static JsonNode readJson(Path file, String what) {
        if (!Files.isRegularFile(file)) {
            throw new ModelException(file + " is missing: expected " + what + " there (Hugging Face snapshot layout)");
        }
        try {
            JsonNode node = JSON.readTree(file.toFile());
            if (node == null || !node.isObject()) {
                throw new ModelException(file + " is not a JSON object: expected " + what);
            }
            return node;
        } catch (IOException e) {
            throw new ModelException(file + " is not valid JSON (" + e.getMessage() + "): expected " + what, e);
        }
    }

    private static Path findTransformer(Path dir) {
        for (String name : KNOWN_TRANSFORMER_FILES) {
            Path p = dir.resolve(name);
            if (Files.isRegularFile(p)) {
                return p;
            }
        }
        List<Path> candidates = new ArrayList<>();
        List<Path> pickles = new ArrayList<>();
        try (Stream<Path> files = Files.list(dir)) {
            files.filter(Files::isRegularFile).forEach(p -> {
                String name = p.getFileName().toString().toLowerCase(Locale.ROOT);
                if ((name.endsWith(".safetensors") || name.endsWith(".safetensors.index.json"))
                        && !NOT_A_TRANSFORMER.contains(name)) {
                    candidates.add(p);
                } else if (name.matches(".*\\.(bin|pt|pth|ckpt|pkl)$")) {
                    pickles.add(p);
                }
            });
        } catch (IOException e) {
            throw new ModelException("cannot list model folder " + dir + ": " + e.getMessage(), e);
        }
        if (candidates.size() == 1) {
            return candidates.get(0);
        }
        String expected = "expected the FLUX.1 transformer as flux1-dev.safetensors or flux1-schnell.safetensors"
                + " (or one *.safetensors / *.safetensors.index.json) in " + dir;
        if (candidates.isEmpty()) {
            throw new ModelException("no transformer checkpoint found: " + expected
                    + (pickles.isEmpty() ? "" : "; found only pickle files " + pickles
                    + ", which are never read because unpickling can run arbitrary code"));
        }
        throw new ModelException("several transformer checkpoints found " + candidates + ": " + expected);
    }
}
