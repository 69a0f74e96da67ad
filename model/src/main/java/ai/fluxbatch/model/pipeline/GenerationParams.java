package ai.fluxbatch.model.pipeline;

/**
 * Size, steps and guidance shared by a batch of images. Height and width are positive multiples of 16 (one latent
 * token covers 16 x 16 pixels) up to {@value #MAX_SIDE}; FLUX.1 was trained up to about 2 megapixels.
 */
public record GenerationParams(int height, int width, int steps, float guidance) {
    public static final int MAX_SIDE = 4096;
    public static final int MAX_STEPS = 1000;

    public GenerationParams {
        side("height", height);
        side("width", width);
        if (steps < 1 || steps > MAX_STEPS) {
            throw new IllegalArgumentException("steps is " + steps + ", expected 1.." + MAX_STEPS);
        }
        if (!Float.isFinite(guidance) || guidance < 0) {
            throw new IllegalArgumentException("guidance is " + guidance + ", expected a finite number >= 0");
        }
    }

    private static void side(String name, int v) {
        if (v < 16 || v > MAX_SIDE || v % 16 != 0) {
            throw new IllegalArgumentException(
                    name + " is " + v + ", expected a multiple of 16 from 16 to " + MAX_SIDE);
        }
    }

    /** Latent height and width: 2 * ceil(side / 16), which is side / 8 for multiples of 16. */
    public int latentHeight() {
        return height / 8;
    }

    public int latentWidth() {
        return width / 8;
    }

    /** Transformer image tokens: one per 2 x 2 latent patch. */
    public int imageTokens() {
        return (height / 16) * (width / 16);
    }
}
