package ai.fluxbatch.kernel.random;

/**
 * The 32-bit Mersenne Twister as torch's at::mt19937 runs it (same stream as std::mt19937). Written here because
 * java.util has no MT19937 and matching torch's noise needs its exact stream.
 */
final class Mt19937 {
    private static final int N = 624;
    private static final int M = 397;
    private static final int MATRIX_A = 0x9908B0DF;

    private final int[] state = new int[N];
    private int next;
    private int left;

    /** Seeds as torch's init_with_uint32: only the low 32 bits of the seed reach the state. */
    void seed(long seed) {
        state[0] = (int) seed;
        for (int j = 1; j < N; j++) {
            int prev = state[j - 1];
            state[j] = 1812433253 * (prev ^ (prev >>> 30)) + j;
        }
        left = 1;
        next = 0;
    }

    /** The next output; its 32 bits are torch's uint32_t. */
    int nextInt() {
        if (--left == 0) {
            regenerate();
        }
        int y = state[next++];
        y ^= y >>> 11;
        y ^= (y << 7) & 0x9D2C5680;
        y ^= (y << 15) & 0xEFC60000;
        y ^= y >>> 18;
        return y;
    }

    private void regenerate() {
        left = N;
        next = 0;
        int k = 0;
        for (; k < N - M; k++) {
            state[k] = state[k + M] ^ twist(state[k], state[k + 1]);
        }
        for (; k < N - 1; k++) {
            state[k] = state[k + M - N] ^ twist(state[k], state[k + 1]);
        }
        state[N - 1] = state[M - 1] ^ twist(state[N - 1], state[0]);
    }

    private static int twist(int u, int v) {
        int mixed = (u & 0x80000000) | (v & 0x7FFFFFFF);
        return (mixed >>> 1) ^ ((v & 1) != 0 ? MATRIX_A : 0);
    }
}
