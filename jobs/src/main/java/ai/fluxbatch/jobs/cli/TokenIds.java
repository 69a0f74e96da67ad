package ai.fluxbatch.jobs.cli;

import ai.fluxbatch.model.ModelException;
import ai.fluxbatch.model.safetensors.TensorSource;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/** Token ids {@code [B, L]} read from an input file and checked against a vocabulary before any work. */
record TokenIds(String name, int batch, int length, int[] ids) {

    /** Every tensor whose name ends in {@code input_ids}; at least one is required. */
    static List<TokenIds> readAll(TensorSource src, Path file, int vocabSize, String encoder) {
        List<TokenIds> all = new ArrayList<>();
        for (String name : src.names()) {
            if (name.endsWith("input_ids")) {
                all.add(read(src, name, vocabSize, encoder));
            }
        }
        if (all.isEmpty()) {
            throw new ModelException(
                    "no tensor named '*input_ids' in " + file + ": expected [batch, length] token ids named input_ids");
        }
        return all;
    }

    static TokenIds read(TensorSource src, String name, int vocabSize, String encoder) {
        long[] shape = src.info(name).shape();
        if (shape.length != 2 || shape[0] < 1) {
            throw new ModelException("input tensor '" + name + "' in " + src.file(name) + " has shape "
                    + Arrays.toString(shape) + ", expected [batch, length] token ids");
        }
        long[] values = src.longs(name);
        int[] ids = new int[values.length];
        for (int i = 0; i < values.length; i++) {
            if (values[i] < 0 || values[i] >= vocabSize) {
                throw new ModelException("input tensor '" + name + "' in " + src.file(name) + ": id " + values[i]
                        + " at [" + i / shape[1] + ", " + i % shape[1] + "] is outside the vocabulary of " + encoder
                        + " (expected 0.." + (vocabSize - 1) + ")");
            }
            ids[i] = (int) values[i];
        }
        return new TokenIds(name, (int) shape[0], (int) shape[1], ids);
    }

    /** The input's name with its {@code input_ids} suffix replaced, e.g. {@code long_input_ids -> long_<output>}. */
    String outputName(String output) {
        return name.substring(0, name.length() - "input_ids".length()) + output;
    }
}
