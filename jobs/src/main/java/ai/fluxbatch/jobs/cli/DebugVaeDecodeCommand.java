package ai.fluxbatch.jobs.cli;

import ai.fluxbatch.model.vae.Autoencoder;
import java.util.concurrent.Callable;
import picocli.CommandLine;
import picocli.CommandLine.Command;

/** {@code fluxbatch debug vae-decode}: latents to pixels with the snapshot's autoencoder. */
@Command(
        name = "vae-decode",
        mixinStandardHelpOptions = true,
        description = {
            "Decode latents with the autoencoder (ae.safetensors, vae/config.json).",
            "Reads 'z' (F32, [B, 16, h, w], as the sampler leaves them: scaling and shift are applied here) and writes"
                    + " 'image' (F32, [B, 3, 8h, 8w], in [-1, 1] before clamping)."
        })
public final class DebugVaeDecodeCommand implements Callable<Integer> {
    @CommandLine.Mixin
    ModelOption model;

    @CommandLine.Mixin
    DebugFiles files;

    @Override
    public Integer call() {
        return files.run(model, "debug vae-decode", (backend, in, modelDir) -> {
            Autoencoder ae = Autoencoder.load(modelDir, backend);
            files.add(backend, "image", ae.decode(DebugFiles.read(backend, in, "z", 4)));
        });
    }
}
