package ai.fluxbatch.model.flux;

/**
 * One transformer call, host side: {@code img [B, L, in]}, {@code imgIds [B, L, axes]}, {@code txt [B, T, context]},
 * {@code txtIds [B, T, axes]}, {@code timesteps [B]}, {@code y [B, vec]}, {@code guidance [B]} (dev models only).
 */
public record FluxInputs(
        int batch,
        int imgLength,
        int txtLength,
        float[] img,
        float[] imgIds,
        float[] txt,
        float[] txtIds,
        float[] timesteps,
        float[] y,
        float[] guidance) {}
