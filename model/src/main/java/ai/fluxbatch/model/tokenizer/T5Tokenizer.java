package ai.fluxbatch.model.tokenizer;

import ai.fluxbatch.model.ModelException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;

/**
 * No pure-Java SentencePiece exists, which is why the normalizer and the Viterbi search are written here.
 *
 * <p>The T5 tokenizer of a FLUX.1 snapshot ({@code tokenizer_2/spiece.model}, a SentencePiece unigram model),
 * encoding exactly as SentencePiece's {@code SentencePieceProcessor::Encode} does: the text is normalized by the
 * model's precompiled charsmap and whitespace rules ({@link SentencePieceNormalizer}), segmented by the unigram
 * model's best path ({@link SentencePieceUnigram}), and then a run of unknown characters becomes one unknown piece
 * (or, in a byte-fallback model, each unknown character becomes its UTF-8 byte pieces). Text that spells a control
 * piece ("&lt;/s&gt;") is plain text here, as in SentencePiece.
 *
 * <p>{@link #encode} is what the T5 encoder takes: the piece ids cut to {@code maxLength - 1}, then eos, then pad
 * up to {@code maxLength}. The eos and pad ids are the model's {@code trainer_spec.eos_id} / {@code pad_id} (T5's
 * 1 and 0 when the file does not set them); the unknown id is the model's UNKNOWN piece (T5: 2).
 *
 * <p>Immutable and thread-safe.
 */
public final class T5Tokenizer {
    private final String source;
    private final String[] pieceText;
    private final int[] pieceTypes;
    private final SentencePieceNormalizer normalizer;
    private final SentencePieceUnigram unigram;
    private final int unkId;
    private final int eosId;
    private final int padId;
    /** Byte-fallback pieces "&lt;0x00&gt;".."&lt;0xFF&gt;" by byte value; null when the model has no byte fallback. */
    private final int[] byteIds;

    private T5Tokenizer(SentencePieceModel model) {
        this.source = model.source;
        this.pieceText = model.pieces;
        this.pieceTypes = model.types;
        SentencePieceModel.TrainerSpec trainer = model.trainer;
        if (trainer.modelType != SentencePieceModel.MODEL_UNIGRAM) {
            throw new ModelException(source + ": trainer_spec.model_type is " + modelTypeName(trainer.modelType)
                    + ", expected UNIGRAM (1): the T5 tokenizer is a SentencePiece unigram model");
        }
        int n = model.size();
        if (n == 0) {
            throw new ModelException(source + ": the SentencePiece model has no pieces, expected a vocabulary");
        }
        int unk = -1;
        int[] bytes = trainer.byteFallback ? new int[256] : null;
        if (bytes != null) {
            Arrays.fill(bytes, -1);
        }
        SentencePieceTrie userDefined = new SentencePieceTrie();
        Map<String, Integer> seen = new HashMap<>();
        for (int id = 0; id < n; id++) {
            String piece = model.pieces[id];
            if (model.pieceBytes[id].length == 0) {
                throw new ModelException(source + ": piece " + id + " is empty, expected a non-empty piece");
            }
            // SentencePiece keeps two maps (NORMAL/USER_DEFINED/UNUSED pieces, and the rest); each must be unique
            boolean normal = isNormalLike(model.types[id]);
            Integer before = seen.putIfAbsent((normal ? "n" : "r") + piece, id);
            if (before != null) {
                throw new ModelException(source + ": piece " + id + " \"" + piece + "\" is already defined as piece "
                        + before + ", expected unique pieces");
            }
            switch (model.types[id]) {
                case SentencePieceModel.UNKNOWN -> {
                    if (unk >= 0) {
                        throw new ModelException(source + ": pieces " + unk + " and " + id + " are both UNKNOWN,"
                                + " expected one unknown piece");
                    }
                    unk = id;
                }
                case SentencePieceModel.USER_DEFINED -> userDefined.put(model.pieceBytes[id], id);
                case SentencePieceModel.BYTE -> {
                    if (bytes == null) {
                        throw new ModelException(source + ": byte piece " + id + " \"" + piece + "\" found although"
                                + " trainer_spec.byte_fallback is false");
                    }
                    int b = byteOfPiece(piece);
                    if (b < 0) {
                        throw new ModelException(source + ": byte piece " + id + " \"" + piece + "\" is invalid,"
                                + " expected <0x00>..<0xFF>");
                    }
                    bytes[b] = id;
                }
                default -> {}
            }
        }
        if (unk < 0) {
            throw new ModelException(source + ": the vocabulary has no unknown piece (type UNKNOWN, T5's \"<unk>\"),"
                    + " expected exactly one");
        }
        if (trainer.hasUnkId && trainer.unkId != unk) {
            throw new ModelException(source + ": trainer_spec.unk_id is " + trainer.unkId + " but the UNKNOWN piece"
                    + " is " + unk + ", expected them to agree");
        }
        if (bytes != null) {
            for (int b = 0; b < 256; b++) {
                if (bytes[b] < 0) {
                    throw new ModelException(source + ": trainer_spec.byte_fallback is true but piece "
                            + String.format("<0x%02X>", b) + " is missing, expected all 256 byte pieces");
                }
            }
        }
        this.unkId = unk;
        this.byteIds = bytes;
        this.eosId = trainer.hasEosId ? trainer.eosId : 1;
        this.padId = trainer.hasPadId ? trainer.padId : 0;
        checkSpecialId("eos_id", eosId, n);
        checkSpecialId("pad_id", padId, n);

        SentencePieceModel.NormalizerSpec spec = model.normalizer;
        SentencePieceCharsMap charsMap = spec.precompiledCharsmap.length == 0
                ? null
                : SentencePieceCharsMap.parse(spec.precompiledCharsmap, source);
        this.normalizer = new SentencePieceNormalizer(
                charsMap,
                userDefined,
                spec.addDummyPrefix,
                spec.removeExtraWhitespaces,
                spec.escapeWhitespaces,
                trainer.treatWhitespaceAsSuffix);
        this.unigram = new SentencePieceUnigram(model, unk);
    }

    /** Loads {@code tokenizer_2/spiece.model}; a missing, corrupt or non-unigram file is a {@link ModelException}. */
    public static T5Tokenizer load(Path spieceModel) {
        Objects.requireNonNull(spieceModel, "spieceModel");
        return new T5Tokenizer(SentencePieceModel.read(spieceModel));
    }

    /** Builds from the bytes of a model file; {@code source} names it in messages. */
    static T5Tokenizer fromBytes(byte[] modelProto, String source) {
        return new T5Tokenizer(SentencePieceModel.parse(modelProto, source));
    }

    /**
     * The T5 encoder's input ids for {@code text}: its piece ids, cut to {@code maxLength - 1}, then eos, then pad
     * up to {@code maxLength}.
     */
    public int[] encode(String text, int maxLength) {
        if (maxLength < 1) {
            throw new IllegalArgumentException("maxLength is " + maxLength + ", expected at least 1 (room for eos)");
        }
        Encoding e = encodeInternal(text);
        int[] out = new int[maxLength];
        int keep = Math.min(e.ids.length, maxLength - 1);
        System.arraycopy(e.ids, 0, out, 0, keep);
        out[keep] = eosId;
        Arrays.fill(out, keep + 1, maxLength, padId);
        return out;
    }

    /** The pieces of {@code text}, as SentencePiece's EncodeAsPieces gives them: no eos, padding or truncation. */
    public List<String> pieces(String text) {
        return encodeInternal(text).pieces();
    }

    /** The piece ids of {@code text} without eos, padding or truncation. */
    public int[] ids(String text) {
        return encodeInternal(text).ids.clone();
    }

    /** {@code text} as the model's normalizer leaves it: the charsmap applied, whitespace tidied and "▁"-escaped. */
    public String normalize(String text) {
        Objects.requireNonNull(text, "text");
        return normalizer.normalize(text);
    }

    /** Number of pieces in the model file (ids run from 0 to vocabSize - 1). */
    public int vocabSize() {
        return pieceText.length;
    }

    public int eosId() {
        return eosId;
    }

    public int padId() {
        return padId;
    }

    public int unkId() {
        return unkId;
    }

    /** The piece with id {@code id}. */
    public String piece(int id) {
        return pieceText[id];
    }

    /** Pieces and ids of one text. */
    private record Encoding(byte[] normalized, int[] starts, int[] ends, int[] ids, String[] byteFallbackPieces) {
        List<String> pieces() {
            List<String> out = new ArrayList<>(ids.length);
            for (int i = 0; i < ids.length; i++) {
                if (byteFallbackPieces != null && byteFallbackPieces[i] != null) {
                    out.add(byteFallbackPieces[i]);
                } else {
                    out.add(new String(normalized, starts[i], ends[i] - starts[i], StandardCharsets.UTF_8));
                }
            }
            return out;
        }
    }

    /**
     * Normalize, segment, and then sentencepiece_processor.cc PopulateSentencePieceText: consecutive unknown pieces
     * merge into one (their text joined), or with byte fallback each unknown piece becomes one byte piece per byte.
     */
    private Encoding encodeInternal(String text) {
        Objects.requireNonNull(text, "text");
        byte[] normalized = normalizer.normalize(SentencePieceNormalizer.Utf8.encode(text));
        int[] seg = unigram.segment(normalized);
        int count = seg.length / 3;
        // every piece, byte pieces included, covers at least one byte of the normalized text
        int capacity = normalized.length;
        int[] starts = new int[capacity];
        int[] ends = new int[capacity];
        int[] ids = new int[capacity];
        String[] bytePieces = null;
        int n = 0;
        boolean prevUnk = false;
        for (int i = 0; i < count; i++) {
            int start = seg[3 * i];
            int end = seg[3 * i + 1];
            int id = seg[3 * i + 2];
            boolean unk = pieceTypes[id] == SentencePieceModel.UNKNOWN;
            if (unk && byteIds != null) {
                if (bytePieces == null) {
                    bytePieces = new String[capacity];
                }
                for (int b = start; b < end; b++) {
                    int value = normalized[b] & 0xFF;
                    starts[n] = b;
                    ends[n] = b + 1;
                    ids[n] = byteIds[value];
                    bytePieces[n] = pieceText[byteIds[value]];
                    n++;
                }
            } else if (unk && prevUnk) {
                ends[n - 1] = end;
            } else {
                starts[n] = start;
                ends[n] = end;
                ids[n] = id;
                n++;
            }
            prevUnk = unk;
        }
        return new Encoding(
                normalized,
                Arrays.copyOf(starts, n),
                Arrays.copyOf(ends, n),
                Arrays.copyOf(ids, n),
                bytePieces == null ? null : Arrays.copyOf(bytePieces, n));
    }

    private void checkSpecialId(String field, int id, int vocabSize) {
        if (id < 0 || id >= vocabSize) {
            throw new ModelException(source + ": trainer_spec." + field + " is " + id + ", expected a piece id in 0.."
                    + (vocabSize - 1) + " (T5 pads with pad_id and ends every sequence with eos_id)");
        }
    }

    private static boolean isNormalLike(int type) {
        return type == SentencePieceModel.NORMAL
                || type == SentencePieceModel.USER_DEFINED
                || type == SentencePieceModel.UNUSED;
    }

    /** model_interface.cc PieceToByte: exactly "&lt;0xHH&gt;" with upper-case hex digits. */
    private static int byteOfPiece(String piece) {
        if (piece.length() != 6 || !piece.startsWith("<0x") || piece.charAt(5) != '>') {
            return -1;
        }
        int hi = upperHexDigit(piece.charAt(3));
        int lo = upperHexDigit(piece.charAt(4));
        return hi < 0 || lo < 0 ? -1 : hi * 16 + lo;
    }

    private static int upperHexDigit(char c) {
        return c >= '0' && c <= '9' ? c - '0' : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
    }

    private static String modelTypeName(int type) {
        return switch (type) {
            case 1 -> "UNIGRAM (1)";
            case 2 -> "BPE (2)";
            case 3 -> "WORD (3)";
            case 4 -> "CHAR (4)";
            default -> String.valueOf(type);
        };
    }
}
