"""numpy's float32 matmul x [M, K] @ w[N, K].T (OpenBLAS sgemm) for bench/MatmulBenchmark.java.

Usage: python3 bench/numpy_sgemm.py M N K REPS [nt|nn]; nn times x [M, K] @ w [K, N] instead (a linear layer's input
gradient). Prints one line: the median wall and calling-thread CPU milliseconds of
REPS calls after two more, then numpy's version. The thread count is OpenBLAS's own (OPENBLAS_NUM_THREADS); with one
thread the product runs on the calling thread, so its CPU time is the steadier figure on a shared machine. With
OPENBLAS_VERBOSE=2 OpenBLAS names the kernels it picked on stderr ("Core: Haswell").
"""
import sys
import time

import numpy as np


def main():
    m, n, k, reps = (int(a) for a in sys.argv[1:5])
    layout = sys.argv[5] if len(sys.argv) > 5 else "nt"
    rng = np.random.default_rng(m * 31 + n * 7 + k)
    x = rng.standard_normal((m, k), dtype=np.float32)
    w = rng.standard_normal((n, k), dtype=np.float32).T if layout == "nt" else rng.standard_normal((k, n), dtype=np.float32)
    y = np.empty((m, n), dtype=np.float32)
    for _ in range(2):
        np.matmul(x, w, out=y)
    wall, cpu = [], []
    for _ in range(reps):
        c0, t0 = time.thread_time(), time.perf_counter()
        np.matmul(x, w, out=y)
        wall.append(time.perf_counter() - t0)
        cpu.append(time.thread_time() - c0)
    wall.sort()
    cpu.sort()
    print(f"{wall[reps // 2] * 1e3:.4f} {cpu[reps // 2] * 1e3:.4f} numpy-{np.__version__}")


if __name__ == "__main__":
    main()
