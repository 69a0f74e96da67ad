package ai.fluxbatch.jobs.quantize;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.Test;

/** The split of a checkpoint over the workers: by block, in block order, named the Hugging Face way, from names alone. */
class ShardPlanTest {
    private static final List<String> NAMES = List.of(
            "double_blocks.0.img_attn.qkv.weight",
            "double_blocks.0.img_attn.qkv.bias",
            "double_blocks.10.img_mlp.0.weight",
            "double_blocks.2.txt_mod.lin.weight",
            "final_layer.linear.weight",
            "img_in.weight",
            "single_blocks.1.linear2.weight",
            "single_blocks.0.linear1.weight",
            "single_blocks.0.norm.key_norm.scale");

    @Test
    void oneShardPerBlockInBlockOrderAndTheRestLast() {
        List<QuantizeShard> shards = ShardPlan.of(NAMES, "flux1-dev.safetensors");
        assertEquals(
                List.of(
                        "double_blocks.0",
                        "double_blocks.2",
                        "double_blocks.10",
                        "single_blocks.0",
                        "single_blocks.1",
                        ShardPlan.OTHER),
                shards.stream().map(s -> s.groups().get(0)).toList());
        assertEquals("flux1-dev-00001-of-00006.safetensors", shards.get(0).file());
        assertEquals("flux1-dev-00006-of-00006.safetensors", shards.get(5).file());
        assertEquals(
                List.of("double_blocks.0.img_attn.qkv.bias", "double_blocks.0.img_attn.qkv.weight"),
                shards.get(0).tensors());
        assertEquals(
                List.of("final_layer.linear.weight", "img_in.weight"),
                shards.get(5).tensors());
        assertEquals(
                List.of("single_blocks.0.linear1.weight", "single_blocks.0.norm.key_norm.scale"),
                shards.get(3).tensors());
        for (QuantizeShard s : shards) {
            assertEquals(6, s.count());
            assertEquals(shards.indexOf(s) + 1, s.number());
        }
        assertEquals("flux1-dev.safetensors.index.json", ShardPlan.indexName("flux1-dev.safetensors"));
    }

    @Test
    void theSameNamesInAnyOrderGiveTheSamePlan() {
        List<String> shuffled = new ArrayList<>(NAMES);
        Collections.shuffle(shuffled, new Random(7));
        assertEquals(ShardPlan.of(NAMES, "model.safetensors"), ShardPlan.of(shuffled, "model.safetensors"));
        assertEquals(
                "model-00002-of-00006.safetensors",
                ShardPlan.of(shuffled, "model.safetensors").get(1).file());
    }
}
