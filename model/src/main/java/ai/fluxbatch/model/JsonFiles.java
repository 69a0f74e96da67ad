package ai.fluxbatch.model;

import ai.fluxbatch.model.safetensors.RegularFiles;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.nio.file.Path;

/** Reads the JSON files of a snapshot (configs, vocabularies) with errors that name the file and its role. */
public final class JsonFiles {
    private static final ObjectMapper JSON = new ObjectMapper();

    private JsonFiles() {}

    /** A JSON object from {@code file}; {@code what} says what the file should hold, for the error message. */
    public static JsonNode read(Path file, String what) {
        JsonNode node = readAny(file, what);
        if (!node.isObject()) {
            throw new ModelException(file + " is not a JSON object: expected " + what);
        }
        return node;
    }

    /** Any JSON value from {@code file}. */
    public static JsonNode readAny(Path file, String what) {
        String problem = RegularFiles.problem(file);
        if (problem != null) {
            throw new ModelException(file + (problem.equals(RegularFiles.ABSENT) ? " is missing" : " " + problem)
                    + ": expected " + what + " there");
        }
        try {
            JsonNode node = JSON.readTree(file.toFile());
            if (node == null || node.isMissingNode()) {
                throw new ModelException(file + " is empty: expected " + what);
            }
            return node;
        } catch (IOException e) {
            throw new ModelException(file + " is not valid JSON (" + e.getMessage() + "): expected " + what, e);
        }
    }
}
