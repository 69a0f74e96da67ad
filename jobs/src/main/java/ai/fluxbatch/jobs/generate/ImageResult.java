package ai.fluxbatch.jobs.generate;

import java.io.Serializable;
import java.util.Map;

/**
 * One row of the metadata table: the image's identity and parameters, where it is, its checksum, per-stage seconds,
 * the executor that made it (and how many times that JVM had loaded this model), and {@code ok}, {@code skipped} or {@code error}.
 * {@code device} and {@code backend}: where it was made ({@link MadeOn}); null where this run made no image.
 */
public record ImageResult(
        String id,
        String source,
        long row,
        long promptIndex,
        String prompt,
        int imageIndex,
        long seed,
        Map<String, String> fields,
        int height,
        int width,
        int steps,
        float guidance,
        int maxSequenceLength,
        String model,
        String modelChecksum,
        String quantization,
        String path,
        String pngSha256,
        double textSeconds,
        double denoiseSeconds,
        double vaeSeconds,
        double writeSeconds,
        String executor,
        int engineLoads,
        String status,
        String error,
        String device,
        String backend,
        byte[] image)
        implements Serializable {

    public static final String OK = "ok";
    public static final String SKIPPED = "skipped";
    public static final String ERROR = "error";

    static ImageResult of(ImageTask t, GenerateSettings s, String path, String status, String error) {
        return new ImageResult(
                t.id(),
                t.source(),
                t.row(),
                t.promptIndex(),
                t.prompt(),
                t.imageIndex(),
                t.seed(),
                t.fields(),
                s.height(),
                s.width(),
                s.steps(),
                s.guidance(),
                s.maxSequenceLength(),
                s.model(),
                s.modelChecksum(),
                s.quantization(),
                path,
                null,
                0,
                0,
                0,
                0,
                Executors.id(),
                Engines.loads(s.model()),
                status,
                error,
                null,
                null,
                null);
    }

    /** This row with where its image was made. */
    ImageResult on(MadeOn where) {
        return copy(
                pngSha256,
                textSeconds,
                denoiseSeconds,
                vaeSeconds,
                writeSeconds,
                engineLoads,
                where.device(),
                where.backend(),
                image);
    }

    ImageResult made(String pngSha256, double text, double denoise, double vae, double write) {
        return copy(pngSha256, text, denoise, vae, write, Engines.loads(model), device, backend, image);
    }

    /**
     * This row with the encoded image itself ({@code null}: none), for a run without an output folder, whose rows
     * carry their images (the DataFrame API).
     */
    ImageResult withImage(byte[] encoded) {
        return copy(
                pngSha256,
                textSeconds,
                denoiseSeconds,
                vaeSeconds,
                writeSeconds,
                engineLoads,
                device,
                backend,
                encoded);
    }

    /** This row with what a made, placed or kept image changes; its identity and parameters as they are. */
    private ImageResult copy(
            String pngSha256,
            double text,
            double denoise,
            double vae,
            double write,
            int engineLoads,
            String device,
            String backend,
            byte[] image) {
        return new ImageResult(
                id,
                source,
                row,
                promptIndex,
                prompt,
                imageIndex,
                seed,
                fields,
                height,
                width,
                steps,
                guidance,
                maxSequenceLength,
                model,
                modelChecksum,
                quantization,
                path,
                pngSha256,
                text,
                denoise,
                vae,
                write,
                executor,
                engineLoads,
                status,
                error,
                device,
                backend,
                image);
    }
}
