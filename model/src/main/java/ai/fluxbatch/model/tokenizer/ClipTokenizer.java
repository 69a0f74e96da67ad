package ai.fluxbatch.model.tokenizer;

import ai.fluxbatch.model.ModelException;
import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.Iterator;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Objects;
import java.util.concurrent.ConcurrentHashMap;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * The CLIP text tokenizer (CLIP-L, FLUX's {@code tokenizer/}), as the original openai/CLIP
 * simple_tokenizer.py does it: clean-up ({@link ClipTextCleaner}), a Unicode-aware pre-tokenization
 * regex, byte-level BPE over GPT-2's byte-to-character table with {@code </w>} marking a word's end.
 * Written by hand because no Java library reproduces this tokenizer; {@code vocab.json} and
 * {@code merges.txt} are the Hugging Face files. Thread-safe: the only mutable state is the word cache.
 */
public final class ClipTokenizer {
    /** The context length of CLIP's text encoder. */
    public static final int DEFAULT_MAX_LENGTH = 77;

    static final String START_TOKEN = "<|startoftext|>";
    static final String END_TOKEN = "<|endoftext|>";
    private static final String END_OF_WORD = "</w>";

    /** Words kept in the cache at most, so a long batch job does not grow it without bound. */
    private static final int CACHE_LIMIT = 1 << 17;

    /**
     * The original's pattern with python-regex semantics: case-insensitive, {@code \p{L}}, {@code \p{N}} and a
     * Unicode {@code \s} (the White_Space property, as Python's regex module has it).
     */
    private static final Pattern PRE_TOKEN = Pattern.compile(
            "<\\|startoftext\\|>|<\\|endoftext\\|>|'s|'t|'re|'ve|'m|'ll|'d|\\p{L}+|\\p{N}|[^\\s\\p{L}\\p{N}]+",
            Pattern.CASE_INSENSITIVE | Pattern.UNICODE_CASE | Pattern.UNICODE_CHARACTER_CLASS);

    /** GPT-2's bytes_to_unicode: printable bytes stand for themselves, the others for 256 + n in byte order. */
    private static final char[] BYTE_TO_CHAR = new char[256];

    static {
        int n = 0;
        for (int b = 0; b < 256; b++) {
            boolean printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
            BYTE_TO_CHAR[b] = printable ? (char) b : (char) (256 + n++);
        }
    }

    private final Map<String, Integer> vocab;
    private final Map<String, Integer> mergeRanks;
    private final int startId;
    private final int endId;
    private final Path vocabFile;
    private final Map<String, String[]> cache = new ConcurrentHashMap<>();

    private ClipTokenizer(Map<String, Integer> vocab, Map<String, Integer> mergeRanks, Path vocabFile) {
        this.vocab = vocab;
        this.mergeRanks = mergeRanks;
        this.vocabFile = vocabFile;
        this.startId = requireSpecial(vocab, START_TOKEN, vocabFile);
        this.endId = requireSpecial(vocab, END_TOKEN, vocabFile);
        // the original seeds its cache with the special tokens: typed into a prompt they stay one token
        cache.put(START_TOKEN, new String[] {START_TOKEN});
        cache.put(END_TOKEN, new String[] {END_TOKEN});
    }

    /** Reads {@code vocab.json} and {@code merges.txt} from a snapshot's {@code tokenizer/} folder. */
    public static ClipTokenizer load(Path tokenizerDir) {
        Objects.requireNonNull(tokenizerDir, "tokenizerDir");
        if (!Files.isDirectory(tokenizerDir)) {
            throw new ModelException("CLIP tokenizer folder " + tokenizerDir
                    + " does not exist or is not a folder: expected a folder with vocab.json and merges.txt");
        }
        Path vocabFile = tokenizerDir.resolve("vocab.json");
        Path mergesFile = tokenizerDir.resolve("merges.txt");
        Map<String, Integer> vocab = readVocab(vocabFile);
        Map<String, Integer> ranks = readMerges(mergesFile);
        return new ClipTokenizer(vocab, ranks, vocabFile);
    }

    /** {@link #encode(String, int)} with CLIP's 77. */
    public int[] encode(String text) {
        return encode(text, DEFAULT_MAX_LENGTH);
    }

    /**
     * {@code [<|startoftext|>] + bpe ids[:maxLength - 2] + [<|endoftext|>]}, padded with
     * {@code <|endoftext|>} to exactly {@code maxLength} ids.
     */
    public int[] encode(String text, int maxLength) {
        if (maxLength < 2) {
            throw new IllegalArgumentException("maxLength " + maxLength + ": must be at least 2 (start and end token)");
        }
        int[] ids = new int[maxLength];
        Arrays.fill(ids, endId);
        ids[0] = startId;
        int n = 1;
        Iterator<String> it = bpeTokens(text).iterator();
        while (n < maxLength - 1 && it.hasNext()) {
            ids[n++] = id(it.next());
        }
        return ids;
    }

    /** The BPE tokens of a text, without start and end token and untruncated. */
    public List<String> bpeTokens(String text) {
        Objects.requireNonNull(text, "text");
        String cleaned = ClipTextCleaner.clean(text);
        List<String> out = new ArrayList<>();
        Matcher m = PRE_TOKEN.matcher(cleaned);
        while (m.find()) {
            String word = byteEncode(m.group());
            String[] pieces = cache.get(word);
            if (pieces == null) {
                pieces = bpe(word);
                if (cache.size() < CACHE_LIMIT) {
                    cache.put(word, pieces);
                }
            }
            for (String p : pieces) {
                id(p); // fail here, naming the token, rather than later in encode
                out.add(p);
            }
        }
        return out;
    }

    /** The number of entries in vocab.json. */
    public int vocabSize() {
        return vocab.size();
    }

    private int id(String token) {
        Integer id = vocab.get(token);
        if (id == null) {
            throw new ModelException("BPE token '" + token + "' is not in " + vocabFile
                    + ": expected a vocab.json that holds every token its merges.txt can produce");
        }
        return id;
    }

    /** A word's UTF-8 bytes, each as its bytes_to_unicode character. */
    static String byteEncode(String word) {
        byte[] bytes = word.getBytes(StandardCharsets.UTF_8);
        char[] chars = new char[bytes.length];
        for (int i = 0; i < bytes.length; i++) {
            chars[i] = BYTE_TO_CHAR[bytes[i] & 0xFF];
        }
        return new String(chars);
    }

    /**
     * BPE of one byte-encoded word: its characters, the last with {@code </w>}; the adjacent pair of lowest
     * merge rank is merged everywhere (left to right), until no adjacent pair has a rank.
     */
    private String[] bpe(String word) {
        List<String> symbols = new ArrayList<>(word.length());
        for (int i = 0; i < word.length() - 1; i++) {
            symbols.add(String.valueOf(word.charAt(i)));
        }
        symbols.add(word.charAt(word.length() - 1) + END_OF_WORD);
        while (symbols.size() > 1) {
            int best = Integer.MAX_VALUE;
            String first = null;
            String second = null;
            for (int i = 0; i < symbols.size() - 1; i++) {
                Integer rank = mergeRanks.get(symbols.get(i) + ' ' + symbols.get(i + 1));
                if (rank != null && rank < best) {
                    best = rank;
                    first = symbols.get(i);
                    second = symbols.get(i + 1);
                }
            }
            if (first == null) {
                break;
            }
            List<String> merged = new ArrayList<>(symbols.size());
            for (int i = 0; i < symbols.size(); i++) {
                if (i < symbols.size() - 1
                        && symbols.get(i).equals(first)
                        && symbols.get(i + 1).equals(second)) {
                    merged.add(first + second);
                    i++;
                } else {
                    merged.add(symbols.get(i));
                }
            }
            symbols = merged;
        }
        return symbols.toArray(new String[0]);
    }

    // ---------------------------------------------------------------- files

    private static Map<String, Integer> readVocab(Path file) {
        if (!Files.isRegularFile(file)) {
            throw new ModelException(
                    "CLIP vocabulary " + file + " is missing: expected vocab.json, a JSON object of token to id");
        }
        JsonNode root;
        try {
            root = new ObjectMapper().readTree(file.toFile());
        } catch (JsonProcessingException e) {
            throw new ModelException(
                    "CLIP vocabulary " + file + " is not valid JSON (" + e.getOriginalMessage()
                            + "): expected a JSON object of token to id",
                    e);
        } catch (IOException e) {
            throw new ModelException("cannot read CLIP vocabulary " + file + ": " + e.getMessage(), e);
        }
        if (root == null || !root.isObject()) {
            throw new ModelException("CLIP vocabulary " + file + " holds "
                    + (root == null || root.isMissingNode()
                            ? "nothing"
                            : "a JSON " + root.getNodeType().toString().toLowerCase(Locale.ROOT))
                    + ": expected a JSON object of token to id");
        }
        if (root.isEmpty()) {
            throw new ModelException(
                    "CLIP vocabulary " + file + " is an empty JSON object: expected token to id entries");
        }
        Map<String, Integer> vocab = new HashMap<>(root.size() * 2);
        Iterator<Map.Entry<String, JsonNode>> fields = root.fields();
        while (fields.hasNext()) {
            Map.Entry<String, JsonNode> e = fields.next();
            JsonNode v = e.getValue();
            if (!v.isIntegralNumber() || !v.canConvertToInt() || v.intValue() < 0) {
                throw new ModelException("CLIP vocabulary " + file + ": token '" + e.getKey() + "' has " + v
                        + ": expected a non-negative integer id");
            }
            vocab.put(e.getKey(), v.intValue());
        }
        return vocab;
    }

    private static Map<String, Integer> readMerges(Path file) {
        if (!Files.isRegularFile(file)) {
            throw new ModelException(
                    "CLIP merges " + file + " is missing: expected merges.txt, one 'a b' merge a line");
        }
        List<String> lines;
        try {
            lines = Files.readAllLines(file, StandardCharsets.UTF_8);
        } catch (IOException e) {
            throw new ModelException("cannot read CLIP merges " + file + " as UTF-8 text: " + e.getMessage(), e);
        }
        Map<String, Integer> ranks = new HashMap<>(lines.size() * 2);
        int rank = 0;
        for (int i = 0; i < lines.size(); i++) {
            String line = lines.get(i);
            if (line.endsWith("\r")) {
                line = line.substring(0, line.length() - 1);
            }
            if (i == 0 && line.startsWith("#")) {
                continue; // "#version: 0.2"
            }
            if (line.isEmpty()) {
                continue;
            }
            int space = line.indexOf(' ');
            if (space <= 0 || space == line.length() - 1 || line.indexOf(' ', space + 1) >= 0) {
                throw new ModelException("CLIP merges " + file + " line " + (i + 1) + " is '" + line
                        + "': expected two symbols separated by one space");
            }
            // a repeated merge takes its later rank, as the original's dict(zip(merges, range(...))) does
            ranks.put(line, rank++);
        }
        return ranks;
    }

    private static int requireSpecial(Map<String, Integer> vocab, String token, Path file) {
        Integer id = vocab.get(token);
        if (id == null) {
            throw new ModelException(
                    "CLIP vocabulary " + file + " has no " + token + ": expected CLIP's special tokens");
        }
        return id;
    }
}
