package ai.fluxbatch.model.tokenizer;

import java.util.Arrays;

/**
 * The unigram model's best segmentation, as unigram_model.cc {@code Model::EncodeOptimized} computes it: a Viterbi
 * pass over the normalized UTF-8 bytes keeping, for every end position, the best-scoring path that ends there.
 * Candidates at a character position are the NORMAL, USER_DEFINED and UNUSED pieces that start there (UNUSED ones are
 * then skipped; CONTROL, UNKNOWN and BYTE pieces are never matched); a USER_DEFINED piece scores
 * {@code bytes * maxScore - 0.1} so that it always wins; when no piece covers exactly the one character at a
 * position, the character becomes an unknown piece scoring {@code minScore - 10} (kUnkPenalty). Scores add up in
 * float, ties keep the first candidate found, exactly as the C++ does.
 */
final class SentencePieceUnigram {
    private static final float UNK_PENALTY = 10.0f;

    private final SentencePieceTrie trie;
    private final int[] types;
    private final float[] scores;
    private final int unkId;
    private final float minScore;
    private final float maxScore;

    SentencePieceUnigram(SentencePieceModel model, int unkId) {
        this.types = model.types;
        this.scores = model.scores;
        this.unkId = unkId;
        float min = Float.MAX_VALUE;
        // C's FLT_MIN, the smallest normal float, is what unigram_model.cc starts max_score_ from.
        float max = Float.MIN_NORMAL;
        SentencePieceTrie t = new SentencePieceTrie();
        for (int id = 0; id < model.size(); id++) {
            int type = types[id];
            if (type == SentencePieceModel.NORMAL) {
                min = Math.min(min, scores[id]);
                max = Math.max(max, scores[id]);
            }
            if (type == SentencePieceModel.NORMAL
                    || type == SentencePieceModel.USER_DEFINED
                    || type == SentencePieceModel.UNUSED) {
                t.put(model.pieceBytes[id], id);
            }
        }
        this.trie = t;
        this.minScore = min;
        this.maxScore = max;
    }

    /**
     * Segments normalized text: returns {@code [start0, end0, id0, start1, end1, id1, ...]}, byte ranges of
     * {@code normalized} in order with their piece ids (the unknown id for characters no piece covers).
     */
    int[] segment(byte[] normalized) {
        int size = normalized.length;
        if (size == 0) {
            return new int[0];
        }
        float unkScore = minScore - UNK_PENALTY;
        // best path ending at each byte position: its score, where its last piece starts, and that piece's id
        float[] bestScore = new float[size + 1];
        int[] startsAt = new int[size + 1];
        int[] ids = new int[size + 1];
        Arrays.fill(startsAt, -1);
        int start = 0;
        while (start < size) {
            float scoreTillHere = bestScore[start];
            boolean hasSingleNode = false;
            int mblen = Math.min(SentencePieceNormalizer.Utf8.oneCharLen(normalized[start]), size - start);
            int node = SentencePieceTrie.ROOT;
            for (int keyPos = start; keyPos < size; ) {
                node = trie.child(node, normalized[keyPos] & 0xFF);
                if (node < 0) {
                    break;
                }
                keyPos++;
                int id = trie.value(node);
                if (id < 0 || types[id] == SentencePieceModel.UNUSED) {
                    continue;
                }
                int length = keyPos - start;
                if (types[id] == SentencePieceModel.USER_DEFINED) {
                    // (length * max_score_ - 0.1) is a double in the C++, so the sum is compared in double too
                    double candidate = ((double) (length * maxScore) - 0.1) + scoreTillHere;
                    if (startsAt[keyPos] == -1 || candidate > bestScore[keyPos]) {
                        bestScore[keyPos] = (float) candidate;
                        startsAt[keyPos] = start;
                        ids[keyPos] = id;
                    }
                } else {
                    float candidate = scores[id] + scoreTillHere;
                    if (startsAt[keyPos] == -1 || candidate > bestScore[keyPos]) {
                        bestScore[keyPos] = candidate;
                        startsAt[keyPos] = start;
                        ids[keyPos] = id;
                    }
                }
                if (!hasSingleNode && length == mblen) {
                    hasSingleNode = true;
                }
            }
            if (!hasSingleNode) {
                int target = start + mblen;
                float candidate = unkScore + scoreTillHere;
                if (startsAt[target] == -1 || candidate > bestScore[target]) {
                    bestScore[target] = candidate;
                    startsAt[target] = start;
                    ids[target] = unkId;
                }
            }
            start += mblen;
        }
        int count = 0;
        for (int end = size; end > 0; end = startsAt[end]) {
            count++;
        }
        int[] out = new int[count * 3];
        int k = count;
        for (int end = size; end > 0; end = startsAt[end]) {
            k--;
            out[k * 3] = startsAt[end];
            out[k * 3 + 1] = end;
            out[k * 3 + 2] = ids[end];
        }
        return out;
    }
}
