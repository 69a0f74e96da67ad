package ai.fluxbatch.model.flux;

/** Checks a {@link FluxInputs} against the model before any work starts; messages name the input and its expected size. */
final class FluxInputsCheck {
    private FluxInputsCheck() {}

    static void check(FluxInputs in, FluxConfig c) {
        int b = in.batch(), l = in.imgLength(), t = in.txtLength(), axes = c.axesDim().length;
        if (b < 1 || l < 1 || t < 0) {
            throw new IllegalArgumentException("batch " + b + ", image length " + l + ", text length " + t
                    + ": expected batch >= 1 and image length >= 1");
        }
        length("img", in.img(), (long) b * l * c.inChannels(), "[" + b + ", " + l + ", " + c.inChannels() + "]");
        length("img_ids", in.imgIds(), (long) b * l * axes, "[" + b + ", " + l + ", " + axes + "]");
        length("txt", in.txt(), (long) b * t * c.contextDim(), "[" + b + ", " + t + ", " + c.contextDim() + "]");
        length("txt_ids", in.txtIds(), (long) b * t * axes, "[" + b + ", " + t + ", " + axes + "]");
        length("timesteps", in.timesteps(), b, "[" + b + "]");
        length("y", in.y(), (long) b * c.vecDim(), "[" + b + ", " + c.vecDim() + "]");
        if (c.guidanceEmbed()) {
            if (in.guidance() == null) {
                throw new IllegalArgumentException("guidance is required: this is a guidance-distilled (dev) model");
            }
            length("guidance", in.guidance(), b, "[" + b + "]");
        }
    }

    private static void length(String name, float[] data, long expected, String shape) {
        if (data == null || data.length != expected) {
            throw new IllegalArgumentException("input '" + name + "' has " + (data == null ? "no" : data.length)
                    + " values, expected shape " + shape + " = " + expected + " values");
        }
    }
}
