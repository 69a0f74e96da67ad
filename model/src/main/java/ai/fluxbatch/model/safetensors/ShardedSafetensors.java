package ai.fluxbatch.model.safetensors;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.SortedMap;
import java.util.SortedSet;
import java.util.TreeMap;
import java.util.TreeSet;

/**
 * Tensors spread over several safetensors files by a {@code *.safetensors.index.json}
 * ({@code {"metadata": {...}, "weight_map": {"tensor": "shard.safetensors"}}}). Each shard is opened once.
 */
public final class ShardedSafetensors implements TensorSource {
    private final Path index;
    private final Map<String, String> metadata;
    private final SortedMap<String, SafetensorsFile> byTensor;
    private final SortedSet<String> names;
    private final Map<String, SafetensorsFile> shards;

    private ShardedSafetensors(
            Path index,
            Map<String, String> metadata,
            SortedMap<String, SafetensorsFile> byTensor,
            Map<String, SafetensorsFile> shards) {
        this.index = index;
        this.metadata = metadata;
        this.byTensor = byTensor;
        this.names = Collections.unmodifiableSortedSet(new TreeSet<>(byTensor.keySet()));
        this.shards = shards;
    }

    public static ShardedSafetensors open(Path indexJson) {
        JsonNode root = readIndex(indexJson);
        JsonNode weightMap = root.get("weight_map");
        if (weightMap == null || !weightMap.isObject()) {
            throw new SafetensorsException("index " + indexJson + " has no \"weight_map\" object mapping tensor names"
                    + " to shard files; found " + (weightMap == null ? "nothing" : HeaderParser.describe(weightMap)));
        }
        Map<String, String> metadata = metadata(indexJson, root.get("metadata"));
        Path folder = indexJson.toAbsolutePath().getParent();
        Map<String, SafetensorsFile> shards = new LinkedHashMap<>();
        try {
            SortedMap<String, SafetensorsFile> byTensor = new TreeMap<>();
            for (Map.Entry<String, JsonNode> e : weightMap.properties()) {
                String tensor = e.getKey();
                if (!e.getValue().isTextual()) {
                    throw new SafetensorsException("index " + indexJson + ": weight_map entry for tensor '" + tensor
                            + "' should be a shard file name but is " + HeaderParser.describe(e.getValue()));
                }
                String shardName = e.getValue().textValue();
                SafetensorsFile shard = shards.get(shardName);
                if (shard == null) {
                    shard = openShard(indexJson, folder, shardName);
                    shards.put(shardName, shard);
                }
                if (!shard.contains(tensor)) {
                    throw new SafetensorsException("tensor '" + tensor + "' is mapped to shard '" + shardName
                            + "' by index " + indexJson + ", but " + shard.path() + " does not contain it");
                }
                byTensor.put(tensor, shard);
            }
            return new ShardedSafetensors(indexJson, metadata, byTensor, Collections.unmodifiableMap(shards));
        } catch (RuntimeException e) {
            for (SafetensorsFile s : shards.values()) {
                try {
                    s.close();
                } catch (RuntimeException suppressed) {
                    e.addSuppressed(suppressed);
                }
            }
            throw e;
        }
    }

    private static JsonNode readIndex(Path indexJson) {
        RegularFiles.require(indexJson);
        JsonNode root;
        try {
            root = HeaderParser.JSON.readTree(Files.readAllBytes(indexJson));
        } catch (NoSuchFileException e) {
            throw new SafetensorsException("cannot open index " + indexJson + ": no such file", e);
        } catch (JsonProcessingException e) {
            throw new SafetensorsException("index " + indexJson + " is not valid JSON: " + e.getOriginalMessage(), e);
        } catch (IOException e) {
            throw new SafetensorsException("cannot read index " + indexJson + ": " + e, e);
        }
        if (root == null || !root.isObject()) {
            throw new SafetensorsException("index " + indexJson + " is not a JSON object: found "
                    + (root == null || root.isMissingNode() ? "nothing" : HeaderParser.describe(root)));
        }
        return root;
    }

    /** The index's metadata with every value as text (indexes usually hold numbers such as total_size). */
    private static Map<String, String> metadata(Path indexJson, JsonNode node) {
        if (node == null || node.isNull()) {
            return Map.of();
        }
        if (!node.isObject()) {
            throw new SafetensorsException(
                    "index " + indexJson + ": \"metadata\" should be an object but is " + HeaderParser.describe(node));
        }
        Map<String, String> out = new LinkedHashMap<>();
        for (Map.Entry<String, JsonNode> e : node.properties()) {
            JsonNode v = e.getValue();
            out.put(e.getKey(), v.isValueNode() ? v.asText() : v.toString());
        }
        return Collections.unmodifiableMap(out);
    }

    private static SafetensorsFile openShard(Path indexJson, Path folder, String shardName) {
        Path shard = folder.resolve(shardName).normalize();
        if (!shard.startsWith(folder.normalize())) {
            throw new SafetensorsException("index " + indexJson + " names shard '" + shardName
                    + "', which lies outside the index's folder " + folder);
        }
        String problem = RegularFiles.problem(shard);
        if (problem != null) {
            throw new SafetensorsException("shard '" + shardName + "' listed in index " + indexJson
                    + (problem.equals(RegularFiles.ABSENT)
                            ? " does not exist: expected " + shard
                            : ": " + shard + " " + problem));
        }
        try {
            return SafetensorsFile.open(shard);
        } catch (SafetensorsException e) {
            throw new SafetensorsException(
                    "cannot open shard '" + shardName + "' of index " + indexJson + ": " + e.getMessage(), e);
        }
    }

    /** The index file this source was opened from. */
    public Path index() {
        return index;
    }

    @Override
    public SortedSet<String> names() {
        return names;
    }

    @Override
    public boolean contains(String name) {
        return byTensor.containsKey(name);
    }

    @Override
    public TensorInfo info(String name) {
        return shard(name).info(name);
    }

    @Override
    public float[] floats(String name) {
        return shard(name).floats(name);
    }

    @Override
    public double[] doubles(String name) {
        return shard(name).doubles(name);
    }

    @Override
    public long[] longs(String name) {
        return shard(name).longs(name);
    }

    @Override
    public ByteBuffer bytes(String name, long byteOffset, int length) {
        return shard(name).bytes(name, byteOffset, length);
    }

    @Override
    public Map<String, String> metadata() {
        return metadata;
    }

    @Override
    public Path file(String name) {
        return shard(name).path();
    }

    @Override
    public void close() {
        SafetensorsException failure = null;
        for (SafetensorsFile s : shards.values()) {
            try {
                s.close();
            } catch (SafetensorsException e) {
                if (failure == null) {
                    failure = e;
                } else {
                    failure.addSuppressed(e);
                }
            }
        }
        if (failure != null) {
            throw failure;
        }
    }

    private SafetensorsFile shard(String name) {
        SafetensorsFile s = byTensor.get(name);
        if (s == null) {
            throw new SafetensorsException("tensor '" + name + "' not found in " + index + " (its weight_map lists "
                    + byTensor.size() + " tensors in " + shards.size() + " shards)");
        }
        return s;
    }

    @Override
    public String toString() {
        return "ShardedSafetensors[" + index + ", " + names.size() + " tensors in " + shards.size() + " shards]";
    }
}
