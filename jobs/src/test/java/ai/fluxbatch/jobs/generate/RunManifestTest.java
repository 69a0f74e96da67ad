package ai.fluxbatch.jobs.generate;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.fluxbatch.kernel.DeviceKind;
import ai.fluxbatch.kernel.cuda.GemmPrecision;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.util.List;
import org.junit.jupiter.api.Test;

/** The run manifest's comparison: each difference named once, older manifests and corrupt ones handled. */
class RunManifestTest {
    private static RunManifest manifest(int steps, float guidance, long seed, OutputLayout layout) {
        GenerateSettings s = new GenerateSettings(
                "/models/flux",
                "sha256:abc",
                "absmean",
                "/out",
                layout,
                64,
                48,
                steps,
                guidance,
                256,
                1,
                false,
                DeviceKind.AUTO,
                GemmPrecision.values()[0]);
        return RunManifest.of(s, seed);
    }

    private static ObjectNode stored(RunManifest m) throws IOException {
        return RunManifest.parse(m.toJson(), RunManifest.FILE);
    }

    @Test
    void theSameSettingsHaveNoDifferenceAndEachOtherOneIsNamed() throws IOException {
        RunManifest a = manifest(20, 3.5f, 0, OutputLayout.DEFAULT);
        assertEquals(List.of(), a.differences(stored(a)));
        assertEquals(
                List.of(),
                manifest(20, 0.1f, 0, OutputLayout.DEFAULT)
                        .differences(stored(manifest(20, 0.1f, 0, OutputLayout.DEFAULT))));
        RunManifest b = manifest(30, 4f, 7, OutputLayout.GENEVAL);
        assertEquals(
                List.of(
                        "--steps: the output was made with 20, this run asks for 30",
                        "--guidance: the output was made with 3.5, this run asks for 4.0",
                        "--seed: the output was made with 0, this run asks for 7",
                        "--layout: the output was made with default, this run asks for geneval"),
                b.differences(stored(a)));
    }

    @Test
    void aSettingAnOlderManifestLacksIsNotComparedAndAnUnknownOneIsNamed() throws IOException {
        RunManifest now = manifest(20, 3.5f, 0, OutputLayout.DEFAULT);
        ObjectNode older = stored(now);
        older.remove("max_sequence_length");
        assertEquals(List.of(), now.differences(older));
        older.put("sampler", "dpm");
        assertEquals(
                List.of("--sampler: the output was made with dpm, a setting this version of fluxbatch does not know"),
                now.differences(older));
        older.put("model_fingerprint", "sha256:other");
        assertTrue(
                now.differences(older)
                        .contains("--model (its transformer fingerprint): the output was made with sha256:other, this"
                                + " run asks for sha256:abc"),
                now.differences(older).toString());
    }

    @Test
    void aCorruptManifestIsNamed() {
        IOException e = assertThrows(
                IOException.class,
                () -> RunManifest.parse("{\"steps\": 2".getBytes(StandardCharsets.UTF_8), "/out/run.json"));
        assertTrue(e.getMessage().startsWith("/out/run.json is not valid JSON"), e.getMessage());
        IOException array = assertThrows(
                IOException.class, () -> RunManifest.parse("[1]".getBytes(StandardCharsets.UTF_8), "/out/run.json"));
        assertTrue(array.getMessage().contains("not a JSON object"), array.getMessage());
    }
}
