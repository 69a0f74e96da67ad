package ai.fluxbatch.kernel.cpu;

import java.util.Map;
import org.bytedeco.javacpp.Loader;
import org.bytedeco.javacpp.Pointer;
import org.bytedeco.javacpp.PointerPointer;

/**
 * Whether OpenBLAS (with its LAPACK), from JavaCPP's {@code org.bytedeco:openblas} preset, can run in this process.
 * The native library is loaded once, on first use; when it cannot load (another platform, a missing native jar) or
 * {@code -Dfluxbatch.blas=off} (or {@code FLUXBATCH_BLAS=off}) turns it off, the callers keep their Vector API paths,
 * and the reason is logged once.
 *
 * <p>OpenBLAS is set to one thread when it loads, so every call runs on its caller's thread: the callers split their
 * work over their own thread pools, in pieces that depend on the problem's shape only, so results do not depend on a
 * process-wide thread count (the bits of an OpenBLAS product change with its internal partition) and two backends with
 * different thread counts do not fight over one setting. The kernel set OpenBLAS picked for this CPU at load
 * ({@link #kernels()}, read from its dispatch table, {@code OPENBLAS_CORETYPE} overrides the choice) decides where its
 * sgemm is faster than the Vector API (see {@link #vectorBits()}).
 */
public final class NativeBlas {
    private static final System.Logger LOG = System.getLogger(NativeBlas.class.getName());

    /** OpenBLAS's x86-64 kernel sets by the width of their float vectors; the others count as unknown (0). */
    private static final Map<String, Integer> KERNEL_BITS = Map.ofEntries(
            Map.entry("SAPPHIRERAPIDS", 512),
            Map.entry("COOPERLAKE", 512),
            Map.entry("SKYLAKEX", 512),
            Map.entry("ZEN", 256),
            Map.entry("HASWELL", 256),
            Map.entry("EXCAVATOR", 256),
            Map.entry("STEAMROLLER", 256),
            Map.entry("PILEDRIVER", 256),
            Map.entry("BULLDOZER", 256),
            Map.entry("SANDYBRIDGE", 256),
            Map.entry("NEHALEM", 128),
            Map.entry("BARCELONA", 128),
            Map.entry("CORE2", 128),
            Map.entry("PRESCOTT", 128));

    private NativeBlas() {}

    /** True when OpenBLAS loaded and is not turned off. */
    public static boolean available() {
        return Holder.STATE.loaded();
    }

    /** What runs the native products: the OpenBLAS version and kernels, or why the Vector API path runs instead. */
    public static String description() {
        return Holder.STATE.description();
    }

    /**
     * The kernel set OpenBLAS dispatches to on this CPU (its name in upper case, e.g. {@code SKYLAKEX}), or
     * {@code unknown} where the library is not a multi-architecture x86-64 build or did not load.
     */
    public static String kernels() {
        return Holder.STATE.kernels();
    }

    /** The width in bits of the float vectors of OpenBLAS's kernels here (128, 256 or 512), 0 where unknown. */
    public static int vectorBits() {
        return KERNEL_BITS.getOrDefault(kernels(), 0);
    }

    private record State(boolean loaded, String description, String kernels) {}

    /**
     * The name of the table {@code gotoblas} points at, found by comparing addresses of exported symbols (nothing is
     * called): a DYNAMIC_ARCH build picks one table per CPU when it loads.
     */
    private static String dispatchTable() {
        Pointer variable = Loader.addressof("gotoblas");
        if (variable == null) {
            return "unknown";
        }
        Pointer current = new PointerPointer<Pointer>(variable).get(0);
        if (current == null) {
            return "unknown";
        }
        for (String name : KERNEL_BITS.keySet()) {
            Pointer table = Loader.addressof("gotoblas_" + name);
            if (table != null && table.address() == current.address()) {
                return name;
            }
        }
        return "unknown";
    }

    private static final class Holder {
        static final State STATE = load();

        private static State load() {
            if (DenseProducts.configured() == DenseProducts.VECTOR_API) {
                String property = System.getProperty("fluxbatch.blas", System.getenv("FLUXBATCH_BLAS"));
                LOG.log(
                        System.Logger.Level.INFO,
                        "OpenBLAS turned off (fluxbatch.blas=" + property
                                + "): the CPU backend uses its Vector API products");
                return new State(false, "off (fluxbatch.blas=" + property + ")", "unknown");
            }
            try {
                Loader.load(org.bytedeco.openblas.global.openblas.class);
                org.bytedeco.openblas.global.openblas.blas_set_num_threads(1);
                String version = org.bytedeco.openblas.global.openblas.OPENBLAS_VERSION.trim();
                String kernels = dispatchTable();
                int javaBits = jdk.incubator.vector.FloatVector.SPECIES_PREFERRED.vectorBitSize();
                int blasBits = KERNEL_BITS.getOrDefault(kernels, 0);
                String what = version + ", " + kernels + " kernels, 1 thread per call";
                LOG.log(System.Logger.Level.INFO, "CPU dense products: " + what);
                if (blasBits != 0 && blasBits < javaBits) {
                    String forced = System.getenv("OPENBLAS_CORETYPE");
                    LOG.log(
                            System.Logger.Level.INFO,
                            "OpenBLAS runs its " + blasBits + "-bit " + kernels + " kernels"
                                    + (forced == null ? "" : " (OPENBLAS_CORETYPE=" + forced + ")")
                                    + " where the Vector API uses " + javaBits + "-bit vectors: the CPU backend"
                                    + " keeps its Vector API products, which are faster then");
                }
                return new State(true, what, kernels);
            } catch (Throwable e) { // UnsatisfiedLinkError, NoClassDefFoundError: no natives for this platform
                LOG.log(
                        System.Logger.Level.WARNING,
                        "OpenBLAS cannot load (" + e + "): the CPU backend uses its Vector API products");
                return new State(false, "unavailable (" + e.getClass().getSimpleName() + ")", "unknown");
            }
        }
    }
}
