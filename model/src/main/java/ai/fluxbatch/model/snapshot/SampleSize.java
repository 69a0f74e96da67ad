package ai.fluxbatch.model.snapshot;

import ai.fluxbatch.model.JsonFiles;
import ai.fluxbatch.model.ModelException;
import com.fasterxml.jackson.databind.JsonNode;
import java.nio.file.Path;

/**
 * The image size a snapshot makes when none is asked for, derived from its configs as diffusers' pipelines derive it:
 * {@code sampleSize x vaeScaleFactor} pixels a side. {@code sampleSize} is {@code sample_size} of
 * {@code transformer/config.json} when it has one (where diffusers' SD3 pipeline reads it), else {@value #FLUX1}, the
 * {@code default_sample_size} diffusers' FluxPipeline fixes, FLUX.1's configs having none; {@code vaeScaleFactor} is
 * 2^(n - 1) for the n {@code block_out_channels} of {@code vae/config.json} (8 for FLUX.1's autoencoder). So 1024 x 1024
 * for FLUX.1-dev and -schnell, and 64 x 64 for the shipped miniature, whose transformer config says 8.
 *
 * @param sampleSize latent pixels a side
 * @param vaeScaleFactor image pixels per latent pixel
 * @param configured whether {@code sampleSize} is the transformer config's own rather than FLUX.1's
 */
public record SampleSize(int sampleSize, int vaeScaleFactor, boolean configured) {
    /** diffusers' FluxPipeline {@code default_sample_size}: the sample size of a config that has none. */
    public static final int FLUX1 = 128;

    /** More down-sampling stages than any autoencoder has; bounds the scale factor 2^(n - 1). */
    private static final int MAX_BLOCKS = 16;

    public SampleSize {
        if (sampleSize < 1 || vaeScaleFactor < 1 || (long) sampleSize * vaeScaleFactor > Integer.MAX_VALUE) {
            throw new IllegalArgumentException("sample size " + sampleSize + " x VAE scale factor " + vaeScaleFactor
                    + ": expected positive numbers whose product is an int");
        }
    }

    /** Image pixels a side: {@code sampleSize * vaeScaleFactor}. */
    public int pixels() {
        return sampleSize * vaeScaleFactor;
    }

    /**
     * Reads both configs; a missing file, or a field that is absent where needed or not a positive integer, is an error
     * naming the file and the field.
     */
    public static SampleSize read(Path transformerConfig, Path vaeConfig) {
        JsonNode t = JsonFiles.read(transformerConfig, "the transformer configuration");
        JsonNode size = t.get("sample_size");
        boolean configured = size != null && !size.isNull();
        int sampleSize = FLUX1;
        if (configured) {
            if (!size.canConvertToInt() || !size.isIntegralNumber() || size.asInt() < 1) {
                throw new ModelException(transformerConfig + ": sample_size is " + size
                        + ", expected a positive integer (latent pixels a side of the default image size)");
            }
            sampleSize = size.asInt();
        }
        JsonNode v = JsonFiles.read(
                vaeConfig,
                "the autoencoder configuration with block_out_channels (the default image size derives from their"
                        + " number)");
        JsonNode blocks = v.get("block_out_channels");
        if (blocks == null || !blocks.isArray() || blocks.isEmpty() || blocks.size() > MAX_BLOCKS) {
            throw new ModelException(vaeConfig + ": block_out_channels is " + blocks + ", expected a list of 1 to "
                    + MAX_BLOCKS + " channel counts (the autoencoder's scale factor is 2 to the power of their number"
                    + " minus 1)");
        }
        int scale = 1 << (blocks.size() - 1);
        if ((long) sampleSize * scale > Integer.MAX_VALUE) {
            throw new ModelException(transformerConfig + ": sample_size " + sampleSize + " x the VAE scale factor "
                    + scale + " of " + vaeConfig + " is no image size");
        }
        return new SampleSize(sampleSize, scale, configured);
    }

    /** Where {@link #pixels()} comes from, for messages: {@code sample_size 128 (FLUX.1's) x VAE scale factor 8}. */
    public String describe() {
        return "sample_size " + sampleSize + (configured ? "" : " (FLUX.1's: the transformer config has none)")
                + " x VAE scale factor " + vaeScaleFactor;
    }
}
