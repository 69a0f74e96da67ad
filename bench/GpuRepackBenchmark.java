import ai.fluxbatch.kernel.cuda.GpuTernaryLayout;
import java.util.Random;

/**
 * Time of GpuTernaryLayout.fromHfPacked (the CUDA backend's repacking at load) on one FLUX.1-dev-sized layer of
 * random codes; bench/results/gpu-repack-vm.txt has the before and after.
 */
public class GpuRepackBenchmark {
    public static void main(String[] a) {
        System.out.printf(
                "machine: %s, %d cores, Java %s (one thread)%n",
                System.getProperty("os.arch"),
                Runtime.getRuntime().availableProcessors(),
                System.getProperty("java.version"));
        int out = 3072, in = 12288;
        byte[] p = new byte[(out + 3) / 4 * in];
        Random r = new Random(1);
        for (int i = 0; i < p.length; i++) {
            int b = 0;
            for (int j = 0; j < 4; j++) b |= r.nextInt(3) << (2 * j);
            p[i] = (byte) b;
        }
        for (int w = 0; w < 3; w++) GpuTernaryLayout.fromHfPacked(p, out, in);
        long t0 = System.nanoTime();
        int reps = 5;
        for (int i = 0; i < reps; i++) GpuTernaryLayout.fromHfPacked(p, out, in);
        double ns = (System.nanoTime() - t0) / (double) reps / ((long) out * in);
        System.out.printf("fromHfPacked [%d, %d] random codes: %.2f ns per weight%n", out, in, ns);
    }
}
