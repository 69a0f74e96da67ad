package ai.fluxbatch.jobs.quantize;

import ai.fluxbatch.model.quant.CheckpointQuantizer;
import java.util.ArrayList;
import java.util.Collection;
import java.util.Comparator;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.TreeMap;

/**
 * How a checkpoint's tensors are split over the workers: one shard per transformer block ({@code double_blocks.N},
 * {@code single_blocks.N}), in block order, and one last shard for every tensor outside the blocks (embeddings, final
 * layer). The split depends on the tensor names alone, never on the cluster, so every run of the same source writes
 * the same shards under the same names, and a retried task rewrites its own shard.
 *
 * <p>Shards are named as Hugging Face names the shards of a large checkpoint: {@code flux1-dev.safetensors} becomes
 * {@code flux1-dev-00001-of-00058.safetensors} and so on, indexed by {@code flux1-dev.safetensors.index.json}.
 */
public final class ShardPlan {
    static final String OTHER = "other";
    private static final String SUFFIX = ".safetensors";

    private ShardPlan() {}

    /** The shards of a checkpoint whose one-file form is named {@code checkpointName}, for its tensors {@code names}. */
    public static List<QuantizeShard> of(Collection<String> names, String checkpointName) {
        Map<String, List<String>> groups = new TreeMap<>(ShardPlan::compareGroups);
        for (String name : names.stream().sorted().toList()) {
            groups.computeIfAbsent(CheckpointQuantizer.groupOf(name), g -> new ArrayList<>())
                    .add(name);
        }
        String base = checkpointName.endsWith(SUFFIX)
                ? checkpointName.substring(0, checkpointName.length() - SUFFIX.length())
                : checkpointName;
        List<QuantizeShard> shards = new ArrayList<>();
        int count = groups.size(), number = 0;
        for (Map.Entry<String, List<String>> g : groups.entrySet()) {
            number++;
            String file = String.format(Locale.ROOT, "%s-%05d-of-%05d%s", base, number, count, SUFFIX);
            shards.add(new QuantizeShard(number, count, file, List.of(g.getKey()), g.getValue()));
        }
        return shards;
    }

    /** The index file of a checkpoint whose one-file form is named {@code checkpointName}. */
    public static String indexName(String checkpointName) {
        return checkpointName + ".index.json";
    }

    /** double_blocks by number, then single_blocks by number, then anything else by name, "other" last. */
    static int compareGroups(String a, String b) {
        return Comparator.comparingInt(ShardPlan::kind)
                .thenComparingLong(ShardPlan::number)
                .thenComparing(Comparator.naturalOrder())
                .compare(a, b);
    }

    private static int kind(String group) {
        return group.startsWith("double_blocks.")
                ? 0
                : group.startsWith("single_blocks.") ? 1 : group.equals(OTHER) ? 3 : 2;
    }

    private static long number(String group) {
        String n = group.substring(group.indexOf('.') + 1);
        return n.matches("\\d{1,18}") ? Long.parseLong(n) : Long.MAX_VALUE;
    }
}
