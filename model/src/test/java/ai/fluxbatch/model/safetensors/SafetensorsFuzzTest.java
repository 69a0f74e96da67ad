package ai.fluxbatch.model.safetensors;

import ai.fluxbatch.model.Golden;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Corrupted copies of the tiny golden checkpoints: each must be refused with an error that names the file, or read
 * back with every tensor's bytes exactly where its header puts them in the data the file was built with; never a
 * hang, an out-of-memory, another exception or shifted data. {@value FuzzCases#DEFAULT_CASES} cases per run with a
 * fixed seed; more with {@code -Dfluxbatch.fuzz.cases=N}, another seed with {@code -Dfluxbatch.fuzz.seed=S}.
 */
class SafetensorsFuzzTest {
    private static final List<String> FILES = List.of(
            "flux-tiny-schnell/flux1-schnell.safetensors",
            "flux-tiny-dev/text_encoder_2/model.safetensors",
            "flux-tiny-dev/flux1-dev.safetensors");

    @TempDir
    Path dir;

    @Test
    void corruptedCheckpointsAreRefusedOrReadExactly() throws IOException {
        Random r = FuzzCases.random();
        FuzzCases.Tally tally = new FuzzCases.Tally();
        int n = FuzzCases.cases();
        for (int f = 0; f < FILES.size(); f++) {
            Path source = Golden.path(FILES.get(f));
            byte[] original = Files.readAllBytes(source);
            SafetensorsMutator mutator = new SafetensorsMutator(original);
            Snapshot expected;
            try (SafetensorsFile in = SafetensorsFile.open(source)) {
                expected = Snapshot.of(in);
            }
            Path file = dir.resolve(f + ".safetensors");
            int share = n / FILES.size() + (f < n % FILES.size() ? 1 : 0);
            for (int i = 0; i < share; i++) {
                FuzzCases.run(tally, FILES.get(f), mutator.mutate(r), file, (m, p) -> {
                    try (SafetensorsFile in = SafetensorsFile.open(p)) {
                        return readsExactly(in, m.data(), expected);
                    }
                });
            }
        }
        tally.check("safetensors fuzz");
    }

    /**
     * Every tensor's bytes are the data's bytes at its offsets, and it decodes without error; true when the file holds
     * exactly the tensors (names, dtypes, shapes, bytes) and metadata of {@code expected}.
     */
    static boolean readsExactly(TensorSource in, byte[] data, Snapshot expected) {
        FuzzCases.requireBytesAtOffsets(in, data);
        return Snapshot.of(in).equals(expected);
    }

    /** What a file holds, for comparing: each tensor's header entry and bytes, and the metadata. */
    record Snapshot(List<String> entries, java.util.Map<String, String> metadata) {
        static Snapshot of(TensorSource in) {
            List<String> entries = new ArrayList<>();
            for (String name : in.names()) {
                TensorInfo t = in.info(name);
                entries.add(t + " " + Arrays.hashCode(FuzzCases.bytes(in, name, t)));
            }
            return new Snapshot(entries, in.metadata());
        }
    }
}
