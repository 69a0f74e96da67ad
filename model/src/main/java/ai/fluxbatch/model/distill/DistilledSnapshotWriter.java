package ai.fluxbatch.model.distill;

import ai.fluxbatch.model.ModelException;
import ai.fluxbatch.model.quant.QuantizedSnapshotWriter;
import ai.fluxbatch.model.quant.TernaryFormat;
import ai.fluxbatch.model.safetensors.SafetensorsWriter;
import ai.fluxbatch.model.safetensors.TensorInfo;
import ai.fluxbatch.model.safetensors.TensorSource;
import ai.fluxbatch.model.snapshot.FluxSnapshot;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.WritableByteChannel;
import java.nio.file.Path;
import java.util.Map;

/**
 * The snapshot a distillation produces: the student's snapshot with its transformer checkpoint rewritten, every
 * tensor copied byte for byte (the ternary codes included) except the trained scales and biases, written as F32; the
 * same format version, {@code quantization_method} {@code <student's method>+distill}, and the distillation's
 * settings and results under {@code distill_*} in {@code __metadata__}. The rest of the folder follows the rules of
 * every quantized snapshot ({@link QuantizedSnapshotWriter}): the student's files a snapshot runs with, hard-linked or
 * copied (its {@value #CHECKPOINTS} folder, if it is itself a distillation's output, is left out), {@code
 * transformer/config.json} with the distilled method in its {@code quantization_config}, and a new model card; the
 * folder is built beside {@code output} and renamed into place, replacing what is there.
 */
public final class DistilledSnapshotWriter {
    /** The folder of a distillation's checkpoints inside its output. */
    public static final String CHECKPOINTS = "checkpoints";

    private DistilledSnapshotWriter() {}

    /** The method a distilled checkpoint records: {@code absmean -> absmean+distill} (once, however often). */
    public static String method(String studentMethod) {
        return studentMethod.endsWith(TernaryFormat.DISTILL_SUFFIX)
                ? studentMethod
                : studentMethod + TernaryFormat.DISTILL_SUFFIX;
    }

    /**
     * @param metadata the distillation's own {@code __metadata__} entries (settings, sample count, losses)
     * @param extras   what to add to the folder before it replaces {@code output} (the run's checkpoints)
     * @return what it left out of the student's folder
     */
    public static QuantizedSnapshotWriter.Written write(
            FluxSnapshot student,
            Path output,
            TrainableParameters trained,
            Trainable trainable,
            Map<String, String> metadata,
            QuantizedSnapshotWriter.Extras extras) {
        return QuantizedSnapshotWriter.write(
                student,
                output,
                true,
                QuantizedSnapshotWriter.inSourceLayout(
                        student,
                        target -> writeTransformer(student.transformerFile(), target, trained, trainable, metadata)),
                rel -> rel.getNameCount() == 1 && rel.toString().equals(CHECKPOINTS),
                extras);
    }

    static void writeTransformer(
            Path source, Path target, TrainableParameters trained, Trainable trainable, Map<String, String> metadata) {
        try (TensorSource in = FluxSnapshot.openTransformer(source)) {
            Map<String, String> meta = in.metadata();
            if (!meta.containsKey(TernaryFormat.KEY_FORMAT)) {
                throw new ModelException(
                        source + " is not a 1.58-bit checkpoint (no " + TernaryFormat.KEY_FORMAT + ")");
            }
            SafetensorsWriter w = new SafetensorsWriter();
            meta.forEach(w::metadata);
            w.metadata(TernaryFormat.KEY_METHOD, method(meta.getOrDefault(TernaryFormat.KEY_METHOD, "unknown")));
            metadata.forEach(w::metadata);
            for (String name : in.names()) {
                TensorInfo info = in.info(name);
                float[] value = trainedValue(name, trained, trainable);
                if (value != null) {
                    if (info.numel() != value.length) {
                        throw new ModelException("tensor '" + name + "' in " + source + " has " + info.numel()
                                + " values, the trained parameters " + value.length);
                    }
                    w.addF32(name, new long[] {value.length}, value);
                } else {
                    w.add(name, info.dtype(), info.shape(), out -> copy(in, info, out));
                }
            }
            if (trainable.biases()) { // a trained bias the checkpoint did not have
                trained.layers().forEach((layer, p) -> {
                    String bias = Adam.biasTensor(layer);
                    if (!in.contains(bias)) {
                        w.addF32(bias, new long[] {p.channels()}, p.bias());
                    }
                });
            }
            w.write(target);
        }
    }

    private static float[] trainedValue(String name, TrainableParameters trained, Trainable trainable) {
        if (trainable.scales() && name.endsWith(".weight_scale")) {
            LayerParameters p = trained.layers().get(name.substring(0, name.length() - ".weight_scale".length()));
            return p == null ? null : p.scale();
        }
        if (trainable.biases() && name.endsWith(".bias")) {
            LayerParameters p = trained.layers().get(name.substring(0, name.length() - ".bias".length()));
            return p == null ? null : p.bias();
        }
        return null;
    }

    private static void copy(TensorSource in, TensorInfo info, WritableByteChannel out) throws IOException {
        long n = info.byteLength();
        for (long at = 0; at < n; ) {
            int len = (int) Math.min(n - at, 1 << 26);
            ByteBuffer b = in.bytes(info.name(), at, len);
            while (b.hasRemaining()) {
                out.write(b);
            }
            at += len;
        }
    }
}
