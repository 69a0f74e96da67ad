package ai.fluxbatch.jobs.quantize;

import ai.fluxbatch.model.ModelException;
import ai.fluxbatch.model.quant.CheckpointQuantizer;
import ai.fluxbatch.model.safetensors.SafetensorsFile;
import ai.fluxbatch.model.safetensors.TensorSource;
import ai.fluxbatch.model.safetensors.TensorSources;
import ai.fluxbatch.model.snapshot.DiffusersNames;
import ai.fluxbatch.model.snapshot.DiffusersTensorSource;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.Collection;
import java.util.List;
import java.util.Map;
import java.util.SortedMap;
import java.util.TreeMap;
import java.util.stream.Stream;

/**
 * The driver's last step of a spread quantize run: checks the shards the workers wrote and indexes them as Hugging Face
 * indexes a sharded checkpoint, {@code NAME.index.json} = {@code {"metadata": {...}, "weight_map": {tensor: shard}}},
 * with the quantized checkpoint's metadata as the metadata (all of it, and nothing else, so that the sharded checkpoint
 * reads back with the same metadata as the one-file checkpoint of a one-process run: no {@code total_size}).
 */
public final class ShardIndex {
    private static final ObjectMapper JSON = new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT);

    private ShardIndex() {}

    /**
     * Removes what failed attempts left in {@code folder} (temporary shard files), checks that each planned shard is
     * there with the metadata {@code metadata} and tensors of its own blocks only, that the shards hold every tensor of
     * {@code sourceNames} and none twice, and writes the index {@code checkpointName.index.json}; returns it.
     */
    public static Path write(
            Path folder,
            String checkpointName,
            List<QuantizeShard> shards,
            Map<String, String> metadata,
            Collection<String> sourceNames,
            DiffusersNames.NameMap diffusers)
            throws IOException {
        removeTemporaries(folder, shards);
        SortedMap<String, String> weightMap = new TreeMap<>();
        for (QuantizeShard shard : shards) {
            Path file = folder.resolve(shard.file());
            if (!Files.isRegularFile(file)) {
                throw new ModelException(
                        "shard " + shard.label() + " is missing: expected " + file + " once every task succeeded");
            }
            try (TensorSource s = diffusers == null
                    ? SafetensorsFile.open(file)
                    : DiffusersTensorSource.openShard(SafetensorsFile.open(file), diffusers, file.toString())) {
                if (!s.metadata().equals(metadata)) {
                    throw new ModelException("shard " + file + " has the metadata " + s.metadata() + ", expected "
                            + metadata + " (the driver and the executors run different fluxbatch versions?)");
                }
                for (String name : s.names()) {
                    if (!shard.groups().contains(CheckpointQuantizer.groupOf(name))) {
                        throw new ModelException("shard " + file + " holds '" + name + "', which belongs to "
                                + CheckpointQuantizer.groupOf(name) + ", not to " + shard.groups());
                    }
                    String before = weightMap.put(name, shard.file());
                    if (before != null) {
                        throw new ModelException(
                                "tensor '" + name + "' is in two shards, " + before + " and " + shard.file());
                    }
                }
            }
        }
        for (String name : sourceNames) {
            if (!weightMap.containsKey(name)) {
                throw new ModelException("no shard holds the source tensor '" + name + "'");
            }
        }
        ObjectNode root = JSON.createObjectNode();
        ObjectNode meta = root.putObject("metadata");
        metadata.forEach(meta::put);
        SortedMap<String, String> written = weightMap;
        if (diffusers != null) { // the shards hold each tensor under its diffusers name(s)
            written = new TreeMap<>();
            for (Map.Entry<String, String> e : weightMap.entrySet()) {
                for (String part : diffusers.forReference(e.getKey()).parts()) {
                    written.put(part, e.getValue());
                }
            }
        }
        ObjectNode map = root.putObject("weight_map");
        written.forEach(map::put);
        Path index = folder.resolve(ShardPlan.indexName(checkpointName));
        Path tmp = folder.resolve("." + index.getFileName() + ".tmp");
        Files.write(tmp, (JSON.writeValueAsString(root) + "\n").getBytes(StandardCharsets.UTF_8));
        Files.move(tmp, index, StandardCopyOption.ATOMIC_MOVE);
        try (TensorSource check = TensorSources.open(index)) { // what readers will do: every shard opens
            if (!check.metadata().equals(metadata) || !check.names().equals(written.keySet())) {
                throw new ModelException("the index " + index + " does not read back as written");
            }
        }
        return index;
    }

    /** SafetensorsWriter's temporaries of the planned shards ({@code .NAME.tmp-HEX}): attempts that died mid-write. */
    private static void removeTemporaries(Path folder, List<QuantizeShard> shards) throws IOException {
        List<Path> leftovers;
        try (Stream<Path> files = Files.list(folder)) {
            leftovers = files.filter(p -> shards.stream()
                            .anyMatch(s -> p.getFileName().toString().startsWith("." + s.file() + ".tmp-")))
                    .toList();
        }
        for (Path p : leftovers) {
            Files.deleteIfExists(p);
        }
    }
}
