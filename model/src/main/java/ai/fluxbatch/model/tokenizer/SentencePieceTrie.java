package ai.fluxbatch.model.tokenizer;

import java.util.Arrays;

/**
 * A byte trie from UTF-8 pieces to ids, walked one byte at a time: the Viterbi search follows it from each
 * character position (SentencePiece walks a Darts double array the same way), and the normalizer uses it to find
 * the longest user-defined symbol at a position. Edges live in one open-addressing hash table keyed by
 * (node, byte), so a step is a hash probe and building needs no sorting.
 */
final class SentencePieceTrie {
    static final int ROOT = 0;

    private long[] edgeKeys = new long[1024];
    private int[] edgeTargets = new int[1024];
    private int edges;
    private int[] values = new int[256];
    private int nodes = 1;

    SentencePieceTrie() {
        Arrays.fill(values, -1);
    }

    /** Adds {@code key -> value}; a later value for the same key replaces the earlier one. */
    void put(byte[] key, int value) {
        if (value < 0) {
            throw new IllegalArgumentException("negative value " + value);
        }
        int node = ROOT;
        for (byte b : key) {
            int next = child(node, b & 0xFF);
            if (next < 0) {
                next = newNode();
                addEdge(node, b & 0xFF, next);
            }
            node = next;
        }
        values[node] = value;
    }

    /** The node reached from {@code node} by byte {@code b} (0..255), or -1. */
    int child(int node, int b) {
        long key = edgeKey(node, b);
        int mask = edgeKeys.length - 1;
        for (int i = hash(key) & mask; ; i = (i + 1) & mask) {
            long k = edgeKeys[i];
            if (k == key) {
                return edgeTargets[i];
            }
            if (k == 0) {
                return -1;
            }
        }
    }

    /** The value stored at {@code node}, or -1 when no key ends there. */
    int value(int node) {
        return values[node];
    }

    /** Length of the longest key that is a prefix of {@code s[pos, end)}, 0 when none. */
    int longestPrefix(byte[] s, int pos, int end) {
        int node = ROOT;
        int longest = 0;
        for (int i = pos; i < end; i++) {
            node = child(node, s[i] & 0xFF);
            if (node < 0) {
                break;
            }
            if (values[node] >= 0) {
                longest = i + 1 - pos;
            }
        }
        return longest;
    }

    boolean isEmpty() {
        return edges == 0;
    }

    private int newNode() {
        if (nodes == values.length) {
            int old = values.length;
            values = Arrays.copyOf(values, old * 2);
            Arrays.fill(values, old, values.length, -1);
        }
        return nodes++;
    }

    private void addEdge(int node, int b, int target) {
        if ((edges + 1) * 2 > edgeKeys.length) {
            rehash(edgeKeys.length * 2);
        }
        insert(edgeKey(node, b), target);
        edges++;
    }

    private void insert(long key, int target) {
        int mask = edgeKeys.length - 1;
        int i = hash(key) & mask;
        while (edgeKeys[i] != 0) {
            i = (i + 1) & mask;
        }
        edgeKeys[i] = key;
        edgeTargets[i] = target;
    }

    private void rehash(int capacity) {
        long[] oldKeys = edgeKeys;
        int[] oldTargets = edgeTargets;
        edgeKeys = new long[capacity];
        edgeTargets = new int[capacity];
        for (int i = 0; i < oldKeys.length; i++) {
            if (oldKeys[i] != 0) {
                insert(oldKeys[i], oldTargets[i]);
            }
        }
    }

    /** Never 0, which marks an empty slot. */
    private static long edgeKey(int node, int b) {
        return ((long) node << 8 | b) + 1;
    }

    private static int hash(long key) {
        long h = key * 0x9E37_79B9_7F4A_7C15L;
        return (int) (h >>> 32);
    }
}
