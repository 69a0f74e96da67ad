package ai.fluxbatch.model.vae;

import ai.fluxbatch.kernel.Backend;
import ai.fluxbatch.kernel.Tensor;
import ai.fluxbatch.model.JsonFiles;
import ai.fluxbatch.model.ModelException;
import ai.fluxbatch.model.WeightReader;
import ai.fluxbatch.model.safetensors.TensorSource;
import ai.fluxbatch.model.safetensors.TensorSources;
import ai.fluxbatch.model.snapshot.DiffusersNames;
import ai.fluxbatch.model.snapshot.DiffusersTensorSource;
import com.fasterxml.jackson.databind.JsonNode;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.stream.Stream;

/**
 * The FLUX autoencoder as the reference implementation computes it ({@code ae.safetensors}, reference tensor names,
 * scaling from {@code vae/config.json}): {@link #decode} turns latents into images in [-1, 1] (roughly), and
 * {@link #encode} images into latents. Images are {@code [B, C, H, W]}; all activations stay on the backend.
 */
public final class Autoencoder {
    static final String WEIGHTS = "ae.safetensors";
    /** The diffusers layout's weights, in {@code vae/}. */
    static final String DIFFUSERS_WEIGHTS = "diffusion_pytorch_model.safetensors";

    private static final String CONFIG_WHAT = "the autoencoder configuration (diffusers AutoencoderKL schema:"
            + " block_out_channels, layers_per_block, latent_channels, scaling_factor, shift_factor, ...)";

    private final Backend backend;
    private final AutoencoderConfig config;
    private final Encoder encoder;
    private final Decoder decoder;

    private Autoencoder(Backend backend, AutoencoderConfig config, Encoder encoder, Decoder decoder) {
        this.backend = backend;
        this.config = config;
        this.encoder = encoder;
        this.decoder = decoder;
    }

    /**
     * Loads the autoencoder of a snapshot folder with {@code vae/config.json}: the original layout's {@code
     * ae.safetensors} when present, else the diffusers layout's {@code vae/diffusion_pytorch_model.safetensors}, read
     * under the reference names through {@link DiffusersNames#autoencoder}.
     */
    public static Autoencoder load(Path snapshotRoot, Backend backend) {
        if (!Files.isDirectory(snapshotRoot)) {
            throw new ModelException("model folder " + snapshotRoot + " does not exist or is not a folder: expected a"
                    + " FLUX.1 snapshot folder holding " + WEIGHTS + " (or vae/" + DIFFUSERS_WEIGHTS
                    + ") and vae/config.json");
        }
        Path configFile = snapshotRoot.resolve("vae").resolve("config.json");
        JsonNode json = JsonFiles.read(configFile, CONFIG_WHAT);
        try (TensorSource weights = openWeights(snapshotRoot)) {
            return load(weights, json, configFile, backend);
        }
    }

    /**
     * The autoencoder weights of a snapshot folder under the reference names: {@code ae.safetensors}, else the
     * diffusers layout's {@code vae/diffusion_pytorch_model.safetensors} through {@link DiffusersNames#autoencoder}
     * (its names checked here); a clear error when neither is there. The caller closes it.
     */
    public static TensorSource openWeights(Path snapshotRoot) {
        Path weights = snapshotRoot.resolve(WEIGHTS);
        if (Files.exists(weights, java.nio.file.LinkOption.NOFOLLOW_LINKS)) { // a fifo or dangling link: open says so
            return TensorSources.open(weights);
        }
        Path diffusers = snapshotRoot.resolve("vae").resolve(DIFFUSERS_WEIGHTS);
        if (!Files.exists(diffusers, java.nio.file.LinkOption.NOFOLLOW_LINKS)) {
            throw missingWeights(snapshotRoot, weights);
        }
        return openDiffusers(diffusers);
    }

    /** The diffusers-named autoencoder weights in {@code file} under the reference names. */
    public static TensorSource openDiffusers(Path file) {
        TensorSource raw = TensorSources.open(file);
        return DiffusersTensorSource.open(raw, DiffusersNames.autoencoder(raw.names()), file.toString());
    }

    /** Loads an autoencoder from its weights (reference names) and its diffusers-schema config.json. */
    public static Autoencoder load(Path weightsFile, Path configFile, Backend backend) {
        JsonNode json = JsonFiles.read(configFile, CONFIG_WHAT);
        try (TensorSource weights = TensorSources.open(weightsFile)) {
            return load(weights, json, configFile, backend);
        }
    }

    /** Loads from open weights (left open) and the parsed config ({@code configFile} names it in messages). */
    public static Autoencoder load(TensorSource weights, JsonNode config, Path configFile, Backend backend) {
        AutoencoderConfig c = AutoencoderConfig.derive(weights, config, configFile);
        WeightReader r = new WeightReader(weights, backend, c.toString());
        return new Autoencoder(backend, c, Encoder.load(r, c), Decoder.load(r, c));
    }

    public AutoencoderConfig config() {
        return config;
    }

    /**
     * Latents {@code z [B, latent, h, w]} to images {@code [B, out, h * 8, w * 8]} (for FLUX's four levels):
     * {@code decoder(z / scaling_factor + shift_factor)}. {@code z} is left as it is.
     */
    public Tensor decode(Tensor z) {
        requireImage("decode", "latent z", z, config.latentChannels(), 1);
        Tensor unscaled = affine(z, 1.0 / config.scalingFactor(), config.shiftFactor());
        Tensor image = decoder.apply(backend, unscaled);
        unscaled.close();
        return image;
    }

    /**
     * Images {@code [B, in, H, W]} (values in [-1, 1]) to latents {@code [B, latent, H / 8, W / 8]}:
     * {@code scaling_factor * (mean - shift_factor)}, the mean of the latent distribution (the reference's encode
     * draws a sample from it instead; the mean is the deterministic choice). {@code image} is left as it is.
     */
    public Tensor encode(Tensor image) {
        requireImage("encode", "image", image, config.inChannels(), config.downscale());
        Tensor moments = encoder.apply(backend, image);
        int[] s = moments.shape();
        int latent = config.latentChannels();
        Tensor mean = backend.sliceRows(backend.reshape(moments, s[0], s[1], s[2] * s[3]), 0, latent);
        moments.close();
        double scale = config.scalingFactor();
        Tensor scaled = affine(mean, scale, -scale * config.shiftFactor());
        mean.close();
        return backend.reshape(scaled, s[0], latent, s[2], s[3]);
    }

    /**
     * {@code a * x + b} element-wise, on the backend: {@code modulate} computes {@code (1 + scale) * x + shift} row by
     * row, so x is seen as rows of its last axis with constant scale {@code a - 1} and shift {@code b}.
     */
    private Tensor affine(Tensor x, double a, double b) {
        int[] s = x.shape();
        int last = s[s.length - 1];
        int rows = Math.toIntExact(x.numel() / last);
        float[] scale = new float[last], shift = new float[last];
        Arrays.fill(scale, (float) (a - 1));
        Arrays.fill(shift, (float) b);
        Tensor scaleT = backend.upload(scale, 1, last), shiftT = backend.upload(shift, 1, last);
        Tensor out = backend.modulate(backend.reshape(x, 1, rows, last), shiftT, scaleT);
        scaleT.close();
        shiftT.close();
        return backend.reshape(out, s);
    }

    private static void requireImage(String op, String what, Tensor t, int channels, int minSide) {
        int[] s = t.shape();
        if (s.length != 4 || s[1] != channels || s[0] < 1 || s[2] < minSide || s[3] < minSide) {
            throw new IllegalArgumentException(op + ": " + what + " has shape " + Arrays.toString(s) + ", expected [B, "
                    + channels + ", H, W] with B >= 1 and H, W >= " + minSide);
        }
    }

    private static ModelException missingWeights(Path root, Path weights) {
        List<Path> pickles = new ArrayList<>();
        boolean diffusers = false;
        for (Path dir : new Path[] {root, root.resolve("vae")}) {
            if (!Files.isDirectory(dir)) {
                continue;
            }
            try (Stream<Path> files = Files.list(dir)) {
                for (Path p : (Iterable<Path>) files::iterator) {
                    String name = p.getFileName().toString().toLowerCase(Locale.ROOT);
                    boolean autoencoderFile = dir.equals(root) ? name.startsWith("ae.") : true;
                    if (autoencoderFile && name.matches(".*\\.(bin|pt|pth|ckpt|pkl)$")) {
                        pickles.add(p);
                    }
                    diffusers |= !dir.equals(root) && name.endsWith(".safetensors");
                }
            } catch (IOException e) {
                throw new ModelException("cannot list " + dir + ": " + e.getMessage(), e);
            }
        }
        StringBuilder m = new StringBuilder(weights + " is missing: expected the FLUX autoencoder weights with the"
                + " reference tensor names (encoder.*, decoder.*) there, as in black-forest-labs/FLUX.1-dev, or the"
                + " diffusers layout's " + root.resolve("vae").resolve(DIFFUSERS_WEIGHTS));
        if (!pickles.isEmpty()) {
            m.append("; found only ")
                    .append(pickles)
                    .append(", pickle files, which are never read because" + " unpickling can run arbitrary code");
        }
        if (diffusers) {
            m.append("; the other safetensors files in ")
                    .append(root.resolve("vae"))
                    .append(" are not read");
        }
        return new ModelException(m.toString());
    }
}
