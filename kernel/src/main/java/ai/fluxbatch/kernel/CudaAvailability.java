package ai.fluxbatch.kernel;

import ai.fluxbatch.kernel.cuda.CudaModules;
import java.util.Optional;

/**
 * Whether this build can run the CUDA backend at all, before any GPU is touched: its kernels were compiled (the
 * fatbin resources exist) and JavaCPP's CUDA classes are on the class path. Whether a driver and a GPU are there is
 * found out when the backend opens.
 */
public final class CudaAvailability {
    static final String JAVACPP_CLASS = "org.bytedeco.cuda.global.cudart";

    private CudaAvailability() {}

    /** Why this build cannot run the CUDA backend, or empty when it can. */
    public static Optional<String> missing() {
        for (String module : new String[] {CudaModules.TERNARY_MATMUL, CudaModules.OPS}) {
            CudaModules.Image image = CudaModules.load(module);
            if (!image.isPresent()) {
                return Optional.of(image.missingReason());
            }
        }
        try {
            Class.forName(JAVACPP_CLASS, false, CudaAvailability.class.getClassLoader());
        } catch (ClassNotFoundException e) {
            return Optional.of("JavaCPP's CUDA classes (" + JAVACPP_CLASS + ", artifact org.bytedeco:cuda) are not on"
                    + " the class path");
        }
        return Optional.empty();
    }
}
