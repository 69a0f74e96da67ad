package ai.fluxbatch.jobs.generate;

import java.util.Locale;

/**
 * How the images are stored ({@code --format}): {@code files}, one object per image under the {@link OutputLayout};
 * {@code webdataset}, tar shards of {@code --images-per-shard} samples under {@code shards/} ({@link
 * WebDatasetShardWriter}) with a Parquet index ({@link ShardIndex}).
 */
public enum OutputFormat {
    FILES,
    WEBDATASET;

    /** {@code --images-per-shard} when none is given. */
    public static final int DEFAULT_IMAGES_PER_SHARD = 1000;

    public static OutputFormat parse(String s) {
        return switch (s.toLowerCase(Locale.ROOT)) {
            case "files" -> FILES;
            case "webdataset" -> WEBDATASET;
            default -> throw new IllegalArgumentException("--format is '" + s + "', expected files or webdataset");
        };
    }

    /** As {@code --format} names it. */
    public String optionValue() {
        return name().toLowerCase(Locale.ROOT);
    }
}
