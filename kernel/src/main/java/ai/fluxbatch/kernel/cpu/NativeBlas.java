package ai.fluxbatch.kernel.cpu;

import java.util.Locale;

/**
 * Whether OpenBLAS (with its LAPACK), from JavaCPP's {@code org.bytedeco:openblas} preset, can run in this process.
 * The native library is loaded once, on first use; when it cannot load (another platform, a missing native jar) or
 * {@code -Dfluxbatch.blas=off} (or {@code FLUXBATCH_BLAS=off}) turns it off, the callers keep their Vector API paths,
 * and the reason is logged once.
 */
public final class NativeBlas {
    private static final System.Logger LOG = System.getLogger(NativeBlas.class.getName());

    private NativeBlas() {}

    /** True when OpenBLAS loaded and is not turned off. */
    public static boolean available() {
        return Holder.STATE.loaded();
    }

    /** What runs the native products: the OpenBLAS version, or why the Vector API path runs instead. */
    public static String description() {
        return Holder.STATE.description();
    }

    private record State(boolean loaded, String description) {}

    private static final class Holder {
        static final State STATE = load();

        private static State load() {
            String property = System.getProperty("fluxbatch.blas", System.getenv("FLUXBATCH_BLAS"));
            if (property != null && property.toLowerCase(Locale.ROOT).matches("off|false|0|none")) {
                LOG.log(
                        System.Logger.Level.INFO,
                        "OpenBLAS turned off (fluxbatch.blas=" + property
                                + "): the CPU backend uses its Vector API products");
                return new State(false, "off (fluxbatch.blas=" + property + ")");
            }
            try {
                org.bytedeco.javacpp.Loader.load(org.bytedeco.openblas.global.openblas.class);
                String what = org.bytedeco.openblas.global.openblas.OPENBLAS_VERSION.trim();
                return new State(true, what);
            } catch (Throwable e) { // UnsatisfiedLinkError, NoClassDefFoundError: no natives for this platform
                LOG.log(
                        System.Logger.Level.WARNING,
                        "OpenBLAS cannot load (" + e + "): the CPU backend uses its Vector API products");
                return new State(false, "unavailable (" + e.getClass().getSimpleName() + ")");
            }
        }
    }
}
