package ai.fluxbatch.kernel.cuda;

import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.bytedeco.javacpp.Loader;

/**
 * Loading JavaCPP's CUDA bindings, and saying which library is missing when that fails: a JVM reports a missing
 * native library once, as an UnsatisfiedLinkError naming it, and afterwards only "Could not initialize class".
 */
final class CudaLibraries {
    static final String NEEDS = "The CUDA backend needs an NVIDIA driver providing libcuda.so.1 and the"
            + " CUDA 13 libraries libcudart.so.13, libcublas.so.13 (with libcublasLt.so.13) and libnvrtc.so.13 on the"
            + " library path (LD_LIBRARY_PATH), e.g. in the nvidia/cuda:13.x runtime image, or from the CUDA 13 pip"
            + " wheels (nvidia-cuda-runtime, nvidia-cublas, nvidia-cuda-nvrtc)";

    private static final Pattern MISSING_LIBRARY = Pattern.compile(
            "(lib[A-Za-z0-9_+-]+(?:\\.[A-Za-z0-9_+-]+)*?\\.so(?:\\.[0-9]+)*): cannot open shared object file");

    private static final Pattern UNINITIALIZED_CLASS = Pattern.compile("Could not initialize class ([\\w.$]+)");

    private static final Pattern NO_JNI_LIBRARY = Pattern.compile("no (jni\\w+) in java\\.library\\.path");

    /** The libraries each JavaCPP JNI library links. */
    private static final Map<String, String> JNI_NEEDS = Map.of(
            "jnicudart", "libcuda.so.1 (the NVIDIA driver) and libcudart.so.13",
            "jnicublas", "libcublas.so.13 and libcublasLt.so.13",
            "jninvrtc", "libnvrtc.so.13",
            "jnijavacpp", "JavaCPP's own natives (org.bytedeco:javacpp:linux-x86_64)");

    /**
     * The first diagnosis of a binding class that failed to load, by class name: a JVM reports only "Could not
     * initialize class" the second time, without the library that was missing.
     */
    private static final Map<String, String> BINDING_FAILURES = new ConcurrentHashMap<>();

    /** Loads a JavaCPP binding class's natives, turning a missing library into a clear IllegalStateException. */
    static void bind(Class<?> binding, String what) {
        try {
            Loader.load(binding);
        } catch (LinkageError e) { // UnsatisfiedLinkError, NoClassDefFoundError, ExceptionInInitializerError
            throw unavailable(binding.getName(), what, e);
        }
    }

    /** The exception for a binding that could not be loaded: which library is missing when it can tell, and why. */
    static IllegalStateException unavailable(String bindingClass, String what, Throwable e) {
        String diagnosis = diagnose(e);
        if (diagnosis != null) {
            BINDING_FAILURES.putIfAbsent(bindingClass, diagnosis);
        } else {
            diagnosis = earlierDiagnosis(e);
        }
        StringBuilder m = new StringBuilder("CUDA is not available: cannot load ").append(what);
        m.append(diagnosis != null ? ": " + diagnosis : ": " + e)
                .append(". ")
                .append(NEEDS)
                .append('.');
        return new IllegalStateException(m.toString(), e);
    }

    /** What a linkage failure says is missing, or null when it does not say. */
    static String diagnose(Throwable e) {
        for (Throwable t = e; t != null; t = t.getCause()) {
            String msg = String.valueOf(t.getMessage());
            Matcher lib = MISSING_LIBRARY.matcher(msg);
            if (lib.find()) {
                return lib.group(1) + " is missing" + hint(lib.group(1));
            }
        }
        for (Throwable t = e; t != null; t = t.getCause()) {
            String msg = String.valueOf(t.getMessage());
            if (t instanceof NoClassDefFoundError && msg.startsWith("org/bytedeco/")) {
                return "the JavaCPP classes are not on the class path (" + msg + "): add org.bytedeco:javacpp and"
                        + " org.bytedeco:cuda with their linux-x86_64 natives";
            }
            if (msg.contains("Could not initialize class")) {
                return null; // a second attempt: only the first one said why
            }
            Matcher jni = NO_JNI_LIBRARY.matcher(msg);
            if (jni.find() && t.getCause() == null) {
                String needs = JNI_NEEDS.get(jni.group(1));
                return "JavaCPP's " + jni.group(1) + " is not on the class path for " + Loader.getPlatform()
                        + (needs != null ? " (or a library it needs is missing: " + needs + ")" : "")
                        + ": the natives jars org.bytedeco:javacpp:linux-x86_64 and org.bytedeco:cuda:linux-x86_64"
                        + " must be on the class path";
            }
        }
        return null;
    }

    private static String earlierDiagnosis(Throwable e) {
        String failedClass = firstMatch(e, UNINITIALIZED_CLASS);
        if (failedClass == null) {
            return null;
        }
        String earlier = BINDING_FAILURES.get(failedClass);
        if (earlier != null) {
            return earlier;
        }
        String jni = firstMatch(e, NO_JNI_LIBRARY);
        String needs = jni == null ? null : JNI_NEEDS.get(jni);
        return failedClass + " failed to load earlier in this JVM"
                + (needs != null ? " (JavaCPP's " + jni + ", which needs " + needs + ")" : "");
    }

    /** Group 1 of the first match of {@code pattern} in the messages of {@code e} and its causes. */
    private static String firstMatch(Throwable e, Pattern pattern) {
        for (Throwable t = e; t != null; t = t.getCause()) {
            Matcher m = pattern.matcher(String.valueOf(t.getMessage()));
            if (m.find()) {
                return m.group(1);
            }
        }
        return null;
    }

    private static String hint(String library) {
        if (library.startsWith("libcuda.so")) {
            return " (the NVIDIA driver's library: no NVIDIA driver on this machine, or a container started without"
                    + " the GPU, e.g. without --gpus)";
        }
        if (library.matches("lib(cudart|cublas|cublasLt|nvrtc|nvrtc-builtins)\\.so.*")) {
            return " (a CUDA 13 library: put the folder holding it on LD_LIBRARY_PATH)";
        }
        return "";
    }

    static String visibleDevices() {
        String visible = System.getenv("CUDA_VISIBLE_DEVICES");
        return visible == null ? "" : " (CUDA_VISIBLE_DEVICES=" + visible + ")";
    }

    private CudaLibraries() {}
}
