package ai.fluxbatch.jobs.quantize;

import ai.fluxbatch.model.ModelException;
import ai.fluxbatch.model.calib.CalibrationFile;
import ai.fluxbatch.model.calib.CalibrationStats;
import ai.fluxbatch.model.quant.CheckpointQuantizer;
import ai.fluxbatch.model.quant.QuantizeProgress;
import ai.fluxbatch.model.quant.QuantizeRecipe;
import ai.fluxbatch.model.quant.TernaryFormat;
import ai.fluxbatch.model.safetensors.TensorSource;
import ai.fluxbatch.model.snapshot.DiffusersTensorSource;
import ai.fluxbatch.model.snapshot.FluxSnapshot;
import java.io.IOException;
import java.io.Serializable;
import java.io.UncheckedIOException;
import java.net.InetAddress;
import java.net.UnknownHostException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.regex.Pattern;
import org.apache.hadoop.conf.Configuration;

/**
 * The work of one task: one shard of the quantized checkpoint, written by {@link CheckpointQuantizer} from the source
 * tensors of the shard into {@code folder} (under a temporary name, renamed when complete, so an attempt that dies
 * leaves no shard and a retried one replaces it with the same bytes). The statistics of the shard's layers, and only
 * those, are read here from the statistics files; the quantizer makes its own compute backend.
 */
public final class ShardWriter {
    /** What a task reports: the shard, the source bytes it took and how long it took. */
    public record Written(int number, String file, long sourceBytes, double seconds) implements Serializable {}

    private ShardWriter() {}

    /** Writes {@code shard}; {@code hadoop} (the job's Hadoop configuration) reaches a model URI. */
    public static Written write(
            QuantizeSettings settings,
            Configuration hadoop,
            QuantizeShard shard,
            Path folder,
            QuantizeProgress progress) {
        long start = System.nanoTime();
        Path transformer = settings.transformerFile(hadoop);
        requireVisible(transformer, "the transformer checkpoint (--model)", false);
        requireVisible(folder, "the output's staging folder (beside --output)", true);
        for (String f : settings.calibration()) {
            requireVisible(Path.of(f), "the statistics file (--calibration)", false);
        }
        Set<String> tensors = new HashSet<>(shard.tensors());
        long bytes = 0;
        try (TensorSource source = FluxSnapshot.openTransformer(transformer)) {
            for (String name : shard.tensors()) {
                if (!source.contains(name)) {
                    throw new ModelException("shard " + shard.label() + " lists tensor '" + name + "', which "
                            + transformer + " does not hold: the checkpoint changed while it was being quantized");
                }
                bytes += source.info(name).byteLength();
            }
            QuantizeRecipe recipe = settings.recipe(statistics(settings, source, shard.tensors()));
            CheckpointQuantizer quantizer =
                    new CheckpointQuantizer(source, transformer, settings.sourceSha256(), progress, recipe);
            Path target = folder.resolve(shard.file());
            if (source instanceof DiffusersTensorSource diffusers) { // the shard keeps the source's diffusers names
                Path reference = folder.resolve("." + shard.file() + ".tmp-reference-names");
                try {
                    quantizer.write(reference, tensors::contains);
                    diffusers.rewriteInDiffusersNames(reference, target);
                } finally {
                    try {
                        Files.deleteIfExists(reference);
                    } catch (IOException e) {
                        throw new UncheckedIOException("cannot remove " + reference + ": " + e.getMessage(), e);
                    }
                }
            } else {
                quantizer.write(target, tensors::contains);
            }
        }
        return new Written(shard.number(), shard.file(), bytes, (System.nanoTime() - start) / 1e9);
    }

    /** The statistics of the layers among {@code tensors} that this run may quantize; null when the method reads none. */
    private static CalibrationStats statistics(QuantizeSettings settings, TensorSource source, List<String> tensors) {
        if (settings.calibration().isEmpty()) {
            return null;
        }
        Set<String> layers = new HashSet<>();
        for (String name : tensors) {
            if (name.endsWith(".weight") && !source.contains(TernaryFormat.scaleName(name))) {
                String layer = name.substring(0, name.length() - ".weight".length());
                if (settings.layers() == null || Pattern.matches(settings.layers(), layer)) {
                    layers.add(layer);
                }
            }
        }
        return CalibrationFile.readAll(
                        settings.calibration().stream().map(Path::of).toList(), layers::contains)
                .stats();
    }

    private static void requireVisible(Path p, String what, boolean folder) {
        if (folder ? !Files.isDirectory(p) : !Files.isRegularFile(p)) {
            throw new ModelException("the worker on " + host() + " cannot see " + what + " " + p + ": with --master,"
                    + " --model, --calibration and --output must lie on a file system that every executor mounts"
                    + " at the same path (a shared or network file system)");
        }
    }

    private static String host() {
        try {
            return InetAddress.getLocalHost().getHostName();
        } catch (UnknownHostException e) {
            return "this host";
        }
    }
}
