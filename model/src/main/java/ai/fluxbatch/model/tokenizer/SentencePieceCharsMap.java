package ai.fluxbatch.model.tokenizer;

import ai.fluxbatch.model.ModelException;
import java.util.Arrays;
import java.util.BitSet;
import java.util.function.BiConsumer;

/**
 * A {@code NormalizerSpec.precompiled_charsmap}: {@code <uint32 little-endian trie size><Darts-clone double-array
 * trie over UTF-8 bytes><NUL-terminated replacement strings>}. The trie maps a byte sequence to the offset of its
 * replacement string. Lookups read the double array directly, as SentencePiece's normalizer does; the whole trie
 * is walked once when loaded so that a corrupt map fails then, naming the file, rather than on some later prompt.
 */
final class SentencePieceCharsMap {
    /** normalizer.h kMaxTrieResultsSize: SentencePiece keeps the first 32 prefix matches at a position. */
    private static final int MAX_TRIE_RESULTS = 32;

    private final int[] units;
    private final byte[] pool;
    private final int leaves;

    private SentencePieceCharsMap(int[] units, byte[] pool, int leaves) {
        this.units = units;
        this.pool = pool;
        this.leaves = leaves;
    }

    /** Decodes and validates a precompiled charsmap; {@code source} names the model file in messages. */
    static SentencePieceCharsMap parse(byte[] blob, String source) {
        String what = source + ": normalizer_spec.precompiled_charsmap";
        if (blob.length <= 4) {
            throw new ModelException(what + " is " + blob.length + " bytes, expected a 4-byte trie size followed"
                    + " by the trie and the replacement strings");
        }
        long trieSize = (blob[0] & 0xFFL) | (blob[1] & 0xFFL) << 8 | (blob[2] & 0xFFL) << 16 | (blob[3] & 0xFFL) << 24;
        if (trieSize > blob.length - 4L) {
            throw new ModelException(what + " declares a " + trieSize + "-byte trie but only " + (blob.length - 4)
                    + " bytes follow the size field");
        }
        if (trieSize % 4 != 0 || trieSize == 0) {
            throw new ModelException(what + " declares a " + trieSize + "-byte trie, expected a non-zero multiple"
                    + " of 4 (32-bit double-array units)");
        }
        int n = (int) (trieSize / 4);
        int[] units = new int[n];
        for (int i = 0, p = 4; i < n; i++, p += 4) {
            units[i] = (blob[p] & 0xFF)
                    | (blob[p + 1] & 0xFF) << 8
                    | (blob[p + 2] & 0xFF) << 16
                    | (blob[p + 3] & 0xFF) << 24;
        }
        byte[] pool = Arrays.copyOfRange(blob, 4 + (int) trieSize, blob.length);
        int leaves = validate(units, pool, what);
        return new SentencePieceCharsMap(units, pool, leaves);
    }

    // Darts-clone unit layout (darts.h DoubleArrayUnit).
    private static boolean hasLeaf(int unit) {
        return ((unit >>> 8) & 1) == 1;
    }

    private static int value(int unit) {
        return unit & 0x7FFF_FFFF;
    }

    private static int label(int unit) {
        return unit & (0x8000_0000 | 0xFF);
    }

    private static int offset(int unit) {
        return (unit >>> 10) << ((unit & (1 << 9)) >>> 6);
    }

    /**
     * Walks every node of the trie once, depth first: indices in range, no cycles, every leaf value a NUL-terminated
     * string. Darts-clone builds its array from a DAWG, so a node may have several parents; it is checked once.
     */
    private static int validate(int[] units, byte[] pool, String what) {
        BitSet done = new BitSet(units.length);
        BitSet onPath = new BitSet(units.length);
        // the path from the root: node ids, and the next label to try at each
        int[] nodes = new int[64];
        int[] nextLabel = new int[64];
        int depth = 0;
        nodes[0] = 0;
        nextLabel[0] = 1;
        onPath.set(0);
        int leaves = 0;
        while (depth >= 0) {
            int node = nodes[depth];
            int base = node ^ offset(units[node]);
            if (nextLabel[depth] == 1 && node != 0 && hasLeaf(units[node])) {
                if (base >= units.length) {
                    throw new ModelException(what + ": trie unit " + node + " points to leaf " + base + " outside the "
                            + units.length + "-unit trie");
                }
                int v = value(units[base]);
                int nul = v < pool.length ? indexOfNul(pool, v) : -1;
                if (nul < 0) {
                    throw new ModelException(what + ": trie leaf " + base + " points to replacement string at "
                            + v + ", expected a NUL-terminated string inside the " + pool.length
                            + "-byte string table");
                }
                leaves++;
            }
            int child = -1;
            while (nextLabel[depth] < 256) {
                int b = nextLabel[depth]++;
                int c = base ^ b;
                if (c < units.length && label(units[c]) == b) {
                    child = c;
                    break;
                }
            }
            if (child < 0) {
                onPath.clear(node);
                done.set(node);
                depth--;
                continue;
            }
            if (onPath.get(child)) {
                throw new ModelException(what + ": trie unit " + child + " is its own descendant, expected an"
                        + " acyclic double array");
            }
            if (done.get(child)) {
                continue;
            }
            if (++depth == nodes.length) {
                nodes = Arrays.copyOf(nodes, depth * 2);
                nextLabel = Arrays.copyOf(nextLabel, depth * 2);
            }
            nodes[depth] = child;
            nextLabel[depth] = 1;
            onPath.set(child);
        }
        return leaves;
    }

    private static int indexOfNul(byte[] pool, int from) {
        for (int i = from; i < pool.length; i++) {
            if (pool[i] == 0) {
                return i;
            }
        }
        return -1;
    }

    /** Number of distinct leaf nodes (shared suffixes count once). */
    int leaves() {
        return leaves;
    }

    /** The replacement strings, each NUL-terminated; {@link #longestMatch} values index into it. */
    byte[] pool() {
        return pool;
    }

    /** Length of the replacement string starting at {@code valueOffset} in {@link #pool()}. */
    int replacementLength(int valueOffset) {
        int i = valueOffset;
        while (i < pool.length && pool[i] != 0) {
            i++;
        }
        return i - valueOffset;
    }

    /**
     * The longest key that is a prefix of {@code in[pos, end)}, among the first 32 matches (normalizer.cc
     * NormalizePrefix): {@code (length << 32) | valueOffset}, or -1 when no key matches.
     */
    long longestMatch(byte[] in, int pos, int end) {
        int node = offset(units[0]);
        int found = 0;
        long best = -1;
        int bestLength = 0;
        for (int i = pos; i < end; i++) {
            int b = in[i] & 0xFF;
            node ^= b;
            if (node >= units.length) {
                return best;
            }
            int unit = units[node];
            if (label(unit) != b) {
                return best;
            }
            node ^= offset(unit);
            // every leaf reachable without NUL bytes was checked when loading; a NUL byte can lead elsewhere
            if (hasLeaf(unit) && node < units.length && value(units[node]) < pool.length) {
                if (found < MAX_TRIE_RESULTS) {
                    int length = i + 1 - pos;
                    if (bestLength == 0 || length > bestLength) {
                        bestLength = length;
                        best = ((long) length << 32) | value(units[node]);
                    }
                }
                found++;
            }
        }
        return best;
    }

    /** Every rule of the map as (key bytes, replacement bytes), in trie order; for tests and inspection. */
    void forEachRule(BiConsumer<byte[], byte[]> action) {
        walk(0, new byte[0], action);
    }

    private void walk(int node, byte[] key, BiConsumer<byte[], byte[]> action) {
        int base = node ^ offset(units[node]);
        if (node != 0 && hasLeaf(units[node])) {
            int v = value(units[base]);
            action.accept(key, Arrays.copyOfRange(pool, v, v + replacementLength(v)));
        }
        for (int b = 1; b < 256; b++) {
            int child = base ^ b;
            if (child < units.length && label(units[child]) == b) {
                byte[] longer = Arrays.copyOf(key, key.length + 1);
                longer[key.length] = (byte) b;
                walk(child, longer, action);
            }
        }
    }
}
