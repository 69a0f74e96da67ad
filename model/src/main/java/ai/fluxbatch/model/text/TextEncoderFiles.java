package ai.fluxbatch.model.text;

import ai.fluxbatch.model.JsonFiles;
import ai.fluxbatch.model.ModelException;
import ai.fluxbatch.model.safetensors.TensorSource;
import ai.fluxbatch.model.safetensors.TensorSources;
import com.fasterxml.jackson.databind.JsonNode;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * A text encoder folder of a snapshot ({@code text_encoder/} or {@code text_encoder_2/}): {@code config.json} and
 * {@code model.safetensors} or the sharded {@code model.safetensors.index.json}.
 */
public record TextEncoderFiles(Path folder, Path weights, Path configFile, JsonNode config) {

    public static TextEncoderFiles in(Path folder) {
        if (!Files.isDirectory(folder)) {
            throw new ModelException("text encoder folder " + folder + " is missing: expected config.json and"
                    + " model.safetensors there (Hugging Face snapshot layout)");
        }
        Path single = folder.resolve("model.safetensors");
        Path index = folder.resolve("model.safetensors.index.json");
        Path weights = present(single) ? single : present(index) ? index : null; // open says what a non-file is
        if (weights == null) {
            throw new ModelException("no weights in " + folder + ": expected model.safetensors or"
                    + " model.safetensors.index.json"
                    + (Files.exists(folder.resolve("pytorch_model.bin"))
                            ? " (pytorch_model.bin is a pickle file and is never read: unpickling can run arbitrary code)"
                            : ""));
        }
        Path configFile = folder.resolve("config.json");
        return new TextEncoderFiles(
                folder, weights, configFile, JsonFiles.read(configFile, "the text encoder configuration"));
    }

    private static boolean present(Path p) {
        return Files.exists(p, java.nio.file.LinkOption.NOFOLLOW_LINKS);
    }

    public TensorSource openWeights() {
        return TensorSources.open(weights);
    }
}
