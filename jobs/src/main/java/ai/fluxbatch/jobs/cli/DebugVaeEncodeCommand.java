package ai.fluxbatch.jobs.cli;

import ai.fluxbatch.model.vae.Autoencoder;
import java.util.concurrent.Callable;
import picocli.CommandLine;
import picocli.CommandLine.Command;

/** {@code fluxbatch debug vae-encode}: pixels to the scaled and shifted latent mean. */
@Command(
        name = "vae-encode",
        mixinStandardHelpOptions = true,
        description = {
            "Encode images with the autoencoder (ae.safetensors, vae/config.json).",
            "Reads 'encode_in' (F32, [B, 3, H, W] in [-1, 1]) and writes 'encode_mean' (F32, [B, 16, H/8, W/8]):"
                    + " the mean of the latent distribution, scaled and shifted as the sampler sees latents."
        })
public final class DebugVaeEncodeCommand implements Callable<Integer> {
    @CommandLine.Mixin
    ModelOption model;

    @CommandLine.Mixin
    DebugFiles files;

    @Override
    public Integer call() {
        return files.run(model, "debug vae-encode", (backend, in, modelDir) -> {
            Autoencoder ae = Autoencoder.load(modelDir, backend);
            files.add(backend, "encode_mean", ae.encode(DebugFiles.read(backend, in, "encode_in", 4)));
        });
    }
}
