package ai.fluxbatch.jobs.cli;

import ai.fluxbatch.model.snapshot.FluxSnapshot;
import ai.fluxbatch.model.text.ClipTextModel;
import ai.fluxbatch.model.text.TextEncoderFiles;
import java.util.concurrent.Callable;
import picocli.CommandLine;
import picocli.CommandLine.Command;

/** {@code fluxbatch debug clip}: the CLIP text model on token ids. */
@Command(
        name = "clip",
        mixinStandardHelpOptions = true,
        description = {
            "Run the CLIP text model (text_encoder/) on token ids.",
            "'input_ids' ([B, L] integers) gives 'last_hidden_state' (F32, [B, L, hidden]) and 'pooler_output'"
                    + " (F32, [B, hidden]); any other '<prefix>input_ids' gives '<prefix>last_hidden_state' and"
                    + " '<prefix>pooler_output'."
        })
public final class DebugClipCommand implements Callable<Integer> {
    @CommandLine.Mixin
    ModelOption model;

    @CommandLine.Mixin
    DebugFiles files;

    @Override
    public Integer call() {
        return files.run(model, "debug clip", (backend, in, modelDir) -> {
            ClipTextModel clip = ClipTextModel.load(
                    TextEncoderFiles.in(FluxSnapshot.open(modelDir).clipTextEncoder()), backend);
            for (TokenIds ids : TokenIds.readAll(in, files.input, clip.config().vocabSize(), "the CLIP text model")) {
                ClipTextModel.Output out = clip.encode(ids.ids(), ids.batch());
                files.add(backend, ids.outputName("last_hidden_state"), out.lastHiddenState())
                        .add(backend, ids.outputName("pooler_output"), out.pooled());
            }
        });
    }
}
