package ai.fluxbatch.jobs.cli;

import ai.fluxbatch.model.snapshot.FluxSnapshot;
import ai.fluxbatch.model.text.T5Encoder;
import ai.fluxbatch.model.text.TextEncoderFiles;
import java.util.concurrent.Callable;
import picocli.CommandLine;
import picocli.CommandLine.Command;

/** {@code fluxbatch debug t5}: the T5 encoder on token ids. */
@Command(
        name = "t5",
        mixinStandardHelpOptions = true,
        description = {
            "Run the T5 encoder (text_encoder_2/) on token ids.",
            "Every input tensor whose name ends in 'input_ids' ([B, L] integers) gives the tensor of the same name with"
                    + " 'input_ids' replaced by 'last_hidden_state' (F32, [B, L, d_model])."
        })
public final class DebugT5Command implements Callable<Integer> {
    @CommandLine.Mixin
    ModelOption model;

    @CommandLine.Mixin
    DebugFiles files;

    @Override
    public Integer call() {
        return files.run(model, "debug t5", (backend, in, modelDir) -> {
            T5Encoder t5 = T5Encoder.load(
                    TextEncoderFiles.in(FluxSnapshot.open(modelDir).t5TextEncoder()), backend);
            for (TokenIds ids : TokenIds.readAll(in, files.input, t5.config().vocabSize(), "the T5 encoder")) {
                files.add(backend, ids.outputName("last_hidden_state"), t5.encode(ids.ids(), ids.batch()));
            }
        });
    }
}
