package ai.fluxbatch.jobs.generate;

import ai.fluxbatch.kernel.DeviceKind;
import ai.fluxbatch.kernel.cuda.GemmPrecision;
import ai.fluxbatch.model.pipeline.GenerationParams;
import java.io.Serializable;
import java.util.Objects;

/**
 * What every task of one generate run shares; shipped to executors, so plain serializable values only.
 * {@code maxSequenceLength} is the T5 length of the prompts' embeddings.
 * {@code device} is what {@code --device} asked for: each task resolves it on its executor
 * ({@code ExecutorDevice}); {@code gemmPrecision} is the CUDA backend's matmul arithmetic. {@code imageFormat} and
 * {@code jpegQuality} say how images are encoded, {@code format} and {@code imagesPerShard} how they are stored.
 */
public record GenerateSettings(
        String model,
        String modelChecksum,
        String quantization,
        String output,
        OutputLayout layout,
        int height,
        int width,
        int steps,
        float guidance,
        int maxSequenceLength,
        int batchSize,
        boolean overwrite,
        DeviceKind device,
        GemmPrecision gemmPrecision,
        ImageFormat imageFormat,
        int jpegQuality,
        OutputFormat format,
        int imagesPerShard)
        implements Serializable {

    public GenerateSettings {
        Objects.requireNonNull(device, "device");
        Objects.requireNonNull(gemmPrecision, "gemmPrecision");
        Objects.requireNonNull(imageFormat, "imageFormat");
        Objects.requireNonNull(format, "format");
    }

    /** PNG files under the layout, as before {@code --image-format} and {@code --format}. */
    public GenerateSettings(
            String model,
            String modelChecksum,
            String quantization,
            String output,
            OutputLayout layout,
            int height,
            int width,
            int steps,
            float guidance,
            int maxSequenceLength,
            int batchSize,
            boolean overwrite,
            DeviceKind device,
            GemmPrecision gemmPrecision) {
        this(
                model,
                modelChecksum,
                quantization,
                output,
                layout,
                height,
                width,
                steps,
                guidance,
                maxSequenceLength,
                batchSize,
                overwrite,
                device,
                gemmPrecision,
                ImageFormat.PNG,
                ImageFormat.DEFAULT_JPEG_QUALITY,
                OutputFormat.FILES,
                OutputFormat.DEFAULT_IMAGES_PER_SHARD);
    }

    public GenerationParams params() {
        return new GenerationParams(height, width, steps, guidance);
    }
}
