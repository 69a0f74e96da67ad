package ai.fluxbatch.jobs.quantize;

import java.io.Serializable;
import java.util.List;
import java.util.Objects;

/**
 * One shard of a quantized checkpoint written by the workers: shard {@code number} of {@code count}, the file it is
 * written to ({@code flux1-dev-00003-of-00058.safetensors}), the blocks it holds ({@code double_blocks.2}, or {@code
 * other} for the tensors outside the blocks) and the source tensors they take, in name order.
 */
public record QuantizeShard(int number, int count, String file, List<String> groups, List<String> tensors)
        implements Serializable {
    public QuantizeShard {
        Objects.requireNonNull(file, "file");
        groups = List.copyOf(groups);
        tensors = List.copyOf(tensors);
        if (number < 1 || number > count) {
            throw new IllegalArgumentException("shard " + number + " of " + count + ": expected 1 <= number <= count");
        }
    }

    /** "3/58 (double_blocks.2)". */
    public String label() {
        return number + "/" + count + " (" + String.join(", ", groups) + ")";
    }
}
