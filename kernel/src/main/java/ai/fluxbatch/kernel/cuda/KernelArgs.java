package ai.fluxbatch.kernel.cuda;

import java.util.ArrayList;
import java.util.Collections;
import java.util.List;

/**
 * The arguments of one kernel launch, in the order of the kernel's parameter list: device pointers (a 64-bit
 * address, 0 for a null pointer), 32-bit ints and 32-bit floats.
 */
public final class KernelArgs {
    /** One argument: its kind and value (a pointer or int in {@code bits}, a float's raw bits for FLOAT). */
    public record Arg(Kind kind, long bits) {
        public long pointer() {
            return bits;
        }

        public int intValue() {
            return (int) bits;
        }

        public float floatValue() {
            return Float.intBitsToFloat((int) bits);
        }
    }

    public enum Kind {
        POINTER,
        INT,
        FLOAT
    }

    private final List<Arg> args = new ArrayList<>();

    public KernelArgs ptr(long devicePointer) {
        args.add(new Arg(Kind.POINTER, devicePointer));
        return this;
    }

    public KernelArgs i(int value) {
        args.add(new Arg(Kind.INT, value));
        return this;
    }

    public KernelArgs f(float value) {
        args.add(new Arg(Kind.FLOAT, Float.floatToRawIntBits(value)));
        return this;
    }

    public List<Arg> list() {
        return Collections.unmodifiableList(args);
    }

    public int size() {
        return args.size();
    }

    public Arg get(int i) {
        return args.get(i);
    }
}
