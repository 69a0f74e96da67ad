package ai.fluxbatch.model.flux;

import ai.fluxbatch.model.ModelException;
import ai.fluxbatch.model.safetensors.TensorSource;
import java.util.Arrays;

/**
 * Reads one transformer call from tensors named as in the golden forward cases: {@code img, img_ids, txt, txt_ids,
 * timesteps, y} and {@code guidance} (dev only); ids may be stored as floats or integers.
 */
public final class FluxInputsReader {
    private FluxInputsReader() {}

    public static FluxInputs read(TensorSource src, FluxConfig config) {
        int axes = config.axesDim().length;
        long[] img = shape(src, "img", 3);
        int b = (int) img[0], l = (int) img[1];
        expect(src, "img", img, b, l, config.inChannels());
        long[] txt = shape(src, "txt", 3);
        int t = (int) txt[1];
        expect(src, "txt", txt, b, t, config.contextDim());
        expect(src, "img_ids", shape(src, "img_ids", 3), b, l, axes);
        expect(src, "txt_ids", shape(src, "txt_ids", 3), b, t, axes);
        expect(src, "timesteps", shape(src, "timesteps", 1), b);
        expect(src, "y", shape(src, "y", 2), b, config.vecDim());
        float[] guidance = null;
        if (config.guidanceEmbed()) {
            expect(src, "guidance", shape(src, "guidance", 1), b);
            guidance = src.floats("guidance");
        }
        return new FluxInputs(
                b,
                l,
                t,
                src.floats("img"),
                src.floats("img_ids"),
                src.floats("txt"),
                src.floats("txt_ids"),
                src.floats("timesteps"),
                src.floats("y"),
                guidance);
    }

    private static long[] shape(TensorSource src, String name, int rank) {
        if (!src.contains(name)) {
            throw new ModelException("input tensor '" + name + "' is missing from " + describe(src)
                    + ": expected img, img_ids, txt, txt_ids, timesteps, y (and guidance for dev models)");
        }
        long[] s = src.info(name).shape();
        if (s.length != rank) {
            throw new ModelException("input tensor '" + name + "' in " + src.file(name) + " has shape "
                    + Arrays.toString(s) + ", expected rank " + rank);
        }
        return s;
    }

    private static void expect(TensorSource src, String name, long[] actual, long... expected) {
        if (!Arrays.equals(actual, expected)) {
            throw new ModelException("input tensor '" + name + "' in " + src.file(name) + " has shape "
                    + Arrays.toString(actual) + ", expected " + Arrays.toString(expected));
        }
    }

    private static String describe(TensorSource src) {
        return src.names().isEmpty()
                ? "the input file"
                : src.file(src.names().first()).toString();
    }
}
