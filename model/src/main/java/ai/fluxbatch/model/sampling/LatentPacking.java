package ai.fluxbatch.model.sampling;

/**
 * Latents {@code [16, h, w]} to transformer tokens {@code [(h/2)(w/2), 64]} and back: each token is a 2 x 2 patch,
 * features ordered (channel, row in patch, column in patch), as the reference's rearrange does it.
 */
public final class LatentPacking {
    private LatentPacking() {}

    public static float[] pack(float[] latent, int channels, int h, int w) {
        int th = h / 2, tw = w / 2, f = channels * 4;
        float[] out = new float[th * tw * f];
        for (int c = 0; c < channels; c++) {
            for (int y = 0; y < h; y++) {
                for (int x = 0; x < w; x++) {
                    int token = (y / 2) * tw + x / 2;
                    int feature = c * 4 + (y % 2) * 2 + x % 2;
                    out[token * f + feature] = latent[(c * h + y) * w + x];
                }
            }
        }
        return out;
    }

    public static float[] unpack(float[] tokens, int channels, int h, int w) {
        int tw = w / 2, f = channels * 4;
        float[] out = new float[channels * h * w];
        for (int c = 0; c < channels; c++) {
            for (int y = 0; y < h; y++) {
                for (int x = 0; x < w; x++) {
                    out[(c * h + y) * w + x] = tokens[((y / 2) * tw + x / 2) * f + c * 4 + (y % 2) * 2 + x % 2];
                }
            }
        }
        return out;
    }

    /** Position ids {@code [(h/2)(w/2), 3]}: (0, row, column) of each token. */
    public static float[] imageIds(int h, int w) {
        int th = h / 2, tw = w / 2;
        float[] ids = new float[th * tw * 3];
        for (int r = 0; r < th; r++) {
            for (int c = 0; c < tw; c++) {
                ids[(r * tw + c) * 3 + 1] = r;
                ids[(r * tw + c) * 3 + 2] = c;
            }
        }
        return ids;
    }
}
