package ai.fluxbatch.model.distill;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.fluxbatch.kernel.cpu.CpuBackend;
import ai.fluxbatch.model.Golden;
import ai.fluxbatch.model.quant.QuantizeRecipe;
import ai.fluxbatch.model.quant.QuantizedSnapshotWriter;
import ai.fluxbatch.model.safetensors.TensorSource;
import ai.fluxbatch.model.snapshot.FluxSnapshot;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The parameters the driver reads from a student's checkpoint are the ones its loaded TeacherStudent starts from. */
class StudentParametersTest {
    @TempDir
    Path tmp;

    @Test
    void theDriversReadingMatchesTheLoadedStudent() {
        FluxSnapshot teacher = FluxSnapshot.open(Golden.path("flux-tiny-dev"));
        Path q = tmp.resolve("q");
        QuantizedSnapshotWriter.write(
                teacher, q, false, (group, done, total, seconds) -> {}, QuantizeRecipe.ABSMEAN.forLayers("double_.*"));
        FluxSnapshot student = FluxSnapshot.open(q);
        TrainableParameters read;
        try (TensorSource s = student.openTransformer()) {
            read = StudentParameters.read(s);
        }
        TrainableParameters loaded;
        try (StudentGradients g = TeacherStudent.load(
                new CpuBackend(), teacher, student, new DistillSettings(32, 32, 3.5f, teacher.t5MaxLength()))) {
            loaded = g.initial();
        }
        assertEquals(loaded.layers().keySet(), read.layers().keySet());
        assertTrue(read.layers().keySet().stream().allMatch(k -> k.startsWith("double_blocks.")), "ternary only");
        assertTrue(read.layers().size() > 0);
        for (String layer : read.layers().keySet()) {
            assertArrayEquals(loaded.layer(layer).scale(), read.layer(layer).scale(), layer);
            assertArrayEquals(loaded.layer(layer).bias(), read.layer(layer).bias(), layer);
        }
    }
}
