package ai.fluxbatch.kernel.cuda;

import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.util.Optional;

/**
 * The CUDA kernels this build compiled: {@code kernel/src/main/cuda/NAME.cu} becomes the classpath resource
 * {@code /ai/fluxbatch/kernel/cuda/NAME.fatbin} when the build found nvcc (sm_80 and sm_90 machine code plus
 * compute_90 PTX, loaded with {@code cuModuleLoadData}, so the runtime needs only the driver). A build without nvcc
 * (or with {@code -Dfluxbatch.skipCuda=true}) has no such resource: {@link #load} then says so instead of failing.
 * Every build also ships the sources as {@code /ai/fluxbatch/kernel/cuda/NAME.cu} ({@link #source}), which the CUDA
 * backend compiles with NVRTC for a GPU that the fatbin has no code for.
 */
public final class CudaModules {
    /** The ternary matmul module; kernels {@link TernaryLaunch#SMALL_M_KERNEL} and {@link TernaryLaunch#TILED_KERNEL}. */
    public static final String TERNARY_MATMUL = "ternary_matmul";
    /** The element-wise, normalisation and layout kernels ({@link OpsKernels}). */
    public static final String OPS = "fluxbatch_ops";
    /** The first four bytes of a fatbin, {@code 0xBA55ED50} little-endian. */
    public static final int FATBIN_MAGIC = 0xBA55ED50;

    private CudaModules() {}

    /** A module's image, or why there is none. */
    public static final class Image {
        private final String name;
        private final byte[] bytes;
        private final String missingReason;

        private Image(String name, byte[] bytes, String missingReason) {
            this.name = name;
            this.bytes = bytes;
            this.missingReason = missingReason;
        }

        public String name() {
            return name;
        }

        public boolean isPresent() {
            return bytes != null;
        }

        /** The fatbin for {@code cuModuleLoadData}. */
        public byte[] bytes() {
            if (bytes == null) {
                throw new IllegalStateException(missingReason);
            }
            return bytes.clone();
        }

        /** Null when present. */
        public String missingReason() {
            return missingReason;
        }

        @Override
        public String toString() {
            return bytes != null ? "CUDA module " + name + " (" + bytes.length + " bytes)" : missingReason;
        }
    }

    public static String resourcePath(String name) {
        return "/ai/fluxbatch/kernel/cuda/" + name + ".fatbin";
    }

    /** The classpath resource of module {@code name}'s CUDA source, {@code kernel/src/main/cuda/NAME.cu}. */
    public static String sourcePath(String name) {
        return "/ai/fluxbatch/kernel/cuda/" + name + ".cu";
    }

    /**
     * The CUDA source of module {@code name} (the bytes of {@code NAME.cu}, UTF-8 text), for NVRTC; empty when the
     * resource is absent (no such module, or a jar built without the sources).
     */
    public static Optional<byte[]> source(String name) {
        String path = sourcePath(name);
        try (InputStream in = CudaModules.class.getResourceAsStream(path)) {
            return in == null ? Optional.empty() : Optional.of(in.readAllBytes());
        } catch (IOException e) {
            throw new UncheckedIOException("reading resource " + path, e);
        }
    }

    /** The compiled module {@code name}, or an absent image whose reason says the build had no CUDA kernels. */
    public static Image load(String name) {
        String path = resourcePath(name);
        try (InputStream in = CudaModules.class.getResourceAsStream(path)) {
            if (in == null) {
                return new Image(
                        name,
                        null,
                        "this build has no CUDA kernels: resource " + path + " is absent (nvcc was"
                                + " not found at build time, or the build ran with -Dfluxbatch.skipCuda=true; build where"
                                + " /usr/local/cuda/bin/nvcc exists or pass -Dnvcc=/path/to/nvcc)");
            }
            byte[] bytes = in.readAllBytes();
            if (!isFatbin(bytes)) {
                throw new IllegalStateException("resource " + path + " (" + bytes.length
                        + " bytes) does not start with the fatbin magic 0x" + Integer.toHexString(FATBIN_MAGIC)
                        + ": a broken build");
            }
            return new Image(name, bytes, null);
        } catch (IOException e) {
            throw new UncheckedIOException("reading resource " + path, e);
        }
    }

    public static Image ternaryMatmul() {
        return load(TERNARY_MATMUL);
    }

    /** Whether {@code bytes} start with the fatbin header magic (little-endian {@code 0xBA55ED50}). */
    public static boolean isFatbin(byte[] bytes) {
        if (bytes.length < 16) {
            return false;
        }
        int magic = (bytes[0] & 0xff) | (bytes[1] & 0xff) << 8 | (bytes[2] & 0xff) << 16 | (bytes[3] & 0xff) << 24;
        return magic == FATBIN_MAGIC;
    }
}
