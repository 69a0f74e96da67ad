package ai.fluxbatch.model.tokenizer;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.fluxbatch.model.Golden;
import ai.fluxbatch.model.ModelException;
import java.io.ByteArrayOutputStream;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import org.junit.jupiter.api.Test;

/** The precompiled charsmap: Darts-clone layout, longest match, validation of broken maps. */
class SentencePieceCharsMapTest {
    private static final int BLOCK = 256;

    /**
     * A precompiled charsmap for {@code rules}: a valid but roomy Darts-clone double array in which every node's
     * children (and its leaf, at label 0) sit in a 256-unit block of their own.
     */
    static byte[] charsMap(Map<String, String> rules) {
        List<Map<Integer, Integer>> children = new ArrayList<>();
        List<Integer> values = new ArrayList<>();
        children.add(new TreeMap<>());
        values.add(-1);
        ByteArrayOutputStream pool = new ByteArrayOutputStream();
        for (Map.Entry<String, String> r : rules.entrySet()) {
            int node = 0;
            for (byte b : r.getKey().getBytes(StandardCharsets.UTF_8)) {
                Integer next = children.get(node).get(b & 0xFF);
                if (next == null) {
                    next = children.size();
                    children.add(new TreeMap<>());
                    values.add(-1);
                    children.get(node).put(b & 0xFF, next);
                }
                node = next;
            }
            values.set(node, pool.size());
            pool.writeBytes(r.getValue().getBytes(StandardCharsets.UTF_8));
            pool.write(0);
        }
        int n = children.size();
        int[] units = new int[(n + 1) * BLOCK];
        // as darts-clone's fix_block does, an unused unit gets a label that no lookup reaching it can match
        for (int id = 1; id < units.length; id++) {
            units[id] = (id & 0xFF) ^ 1;
        }
        int[] position = new int[n];
        // node i keeps its children in block i + 1; the root's unit is unit 0
        for (int i = 0; i < n; i++) {
            int base = (i + 1) * BLOCK;
            for (Map.Entry<Integer, Integer> c : children.get(i).entrySet()) {
                position[c.getValue()] = base ^ c.getKey();
            }
        }
        for (int i = 0; i < n; i++) {
            int base = (i + 1) * BLOCK;
            int offset = position[i] ^ base;
            int label = i == 0 ? 0 : position[i] & 0xFF;
            boolean leaf = values.get(i) >= 0;
            units[position[i]] = offset << 10 | (leaf ? 1 << 8 : 0) | label;
            if (leaf) {
                units[base] = 0x8000_0000 | values.get(i);
            }
        }
        return blob(units, pool.toByteArray());
    }

    static byte[] blob(int[] units, byte[] pool) {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        writeLe(out, units.length * 4);
        for (int u : units) {
            writeLe(out, u);
        }
        out.writeBytes(pool);
        return out.toByteArray();
    }

    private static void writeLe(ByteArrayOutputStream out, int v) {
        for (int i = 0; i < 4; i++) {
            out.write(v >>> (8 * i) & 0xFF);
        }
    }

    private static String replacement(SentencePieceCharsMap m, String input) {
        byte[] in = input.getBytes(StandardCharsets.UTF_8);
        long match = m.longestMatch(in, 0, in.length);
        if (match < 0) {
            return null;
        }
        int value = (int) match;
        return (match >>> 32) + ":" + new String(m.pool(), value, m.replacementLength(value), StandardCharsets.UTF_8);
    }

    @Test
    void longestRuleWinsAndReplacementsMayBeEmpty() {
        Map<String, String> rules = new LinkedHashMap<>();
        rules.put("a", "1");
        rules.put("ab", "two");
        rules.put("abc", "");
        rules.put("é", "e");
        SentencePieceCharsMap m = SentencePieceCharsMap.parse(charsMap(rules), "m");
        assertEquals("1:1", replacement(m, "a"));
        assertEquals("1:1", replacement(m, "ax"));
        assertEquals("2:two", replacement(m, "abd"));
        assertEquals("3:", replacement(m, "abcd"));
        assertEquals("2:e", replacement(m, "é!"));
        assertEquals(null, replacement(m, "b"));
        assertEquals(null, replacement(m, "\u0000a"));
        assertEquals(4, m.leaves());

        Map<String, String> seen = new TreeMap<>();
        m.forEachRule((k, v) -> seen.put(new String(k, StandardCharsets.UTF_8), new String(v, StandardCharsets.UTF_8)));
        assertEquals(new TreeMap<>(rules), seen);
    }

    @Test
    void theGoldenNmtNfkcMapLoads() {
        SentencePieceModel model = SentencePieceModel.read(Golden.path("flux-tiny-dev", "tokenizer_2", "spiece.model"));
        SentencePieceCharsMap m = SentencePieceCharsMap.parse(model.normalizer.precompiledCharsmap, "golden");
        int[] rules = {0};
        m.forEachRule((k, v) -> rules[0]++);
        assertEquals(224725, rules[0]);
        assertEquals("3:A", replacement(m, "Ａ"));
        assertEquals("3:fi", replacement(m, "ﬁ"));
        assertEquals("3:é", replacement(m, "e\u0301"));
        assertEquals("1: ", replacement(m, "\t"));
    }

    private static void assertBroken(byte[] blob, String expected) {
        ModelException e =
                assertThrows(ModelException.class, () -> SentencePieceCharsMap.parse(blob, "/m/spiece.model"));
        assertTrue(e.getMessage().startsWith("/m/spiece.model: normalizer_spec.precompiled_charsmap"), e.getMessage());
        assertTrue(e.getMessage().contains(expected), e.getMessage());
    }

    @Test
    void sizesThatDoNotFitAreRefused() {
        assertBroken(new byte[] {8, 0, 0, 0}, "is 4 bytes");
        assertBroken(new byte[] {(byte) 0xFF, (byte) 0xFF, 0, 0, 1, 2, 3, 4}, "declares a 65535-byte trie but only 4");
        assertBroken(new byte[] {6, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8}, "non-zero multiple of 4");
        assertBroken(new byte[] {0, 0, 0, 0, 1}, "non-zero multiple of 4");
    }

    @Test
    void brokenTriesAreRefusedWhenLoaded() {
        byte[] good = charsMap(Map.of("a", "x"));
        int units = (good.length - 4 - 2) / 4;
        // the leaf of "a" points past the string table
        int[] u = units(good, units);
        int leaf = 2 * BLOCK;
        u[leaf] = 0x8000_0000 | 1000;
        assertBroken(blob(u, new byte[] {'x', 0}), "points to replacement string at 1000");
        // a string table without its NUL
        assertBroken(blob(units(good, units), new byte[] {'x'}), "NUL-terminated");
        // a node whose children block is the root's: "a" is its own child
        u = units(good, units);
        int a = BLOCK ^ 'a';
        u[a] = (a ^ BLOCK) << 10 | 1 << 8 | 'a';
        assertBroken(blob(u, new byte[] {'x', 0}), "its own descendant");
        // a leaf outside the array
        u = units(good, units);
        u[a] = (a ^ (8 * BLOCK)) << 10 | 1 << 8 | 'a';
        assertBroken(blob(u, new byte[] {'x', 0}), "outside the " + units + "-unit trie");
    }

    private static int[] units(byte[] blob, int n) {
        int[] u = new int[n];
        for (int i = 0; i < n; i++) {
            int p = 4 + 4 * i;
            u[i] = (blob[p] & 0xFF)
                    | (blob[p + 1] & 0xFF) << 8
                    | (blob[p + 2] & 0xFF) << 16
                    | (blob[p + 3] & 0xFF) << 24;
        }
        return u;
    }
}
