#!/usr/bin/env python3
"""The cuBLAS BF16 baseline of the ternary kernel benchmark, through torch, on the GPU machine.

Times torch.matmul in bfloat16 (bf16 storage and inputs, float32 accumulation in cuBLAS: what a BF16 FLUX.1-dev runs)
for y [M, N] = x [M, K] @ W[N, K].t() on the FLUX.1-dev block linear shapes (out x in) and M = 1, 64, 256, 1024 and
4608 (4096 image + 512 text tokens at 1024 x 1024; the M values run-on-gpu.sh gives the Java benchmark): warm-up, then reps back to back, torch.cuda.synchronize, wall time / reps
(time.perf_counter; includes the launch overhead, as the Java side's System.nanoTime timing does). Writes

    {"device": ..., "torch": ..., "cuda": ..., "results": [{"name", "out", "in", "m", "ms", "reps", "tflops"}]}

to the path given (the Java benchmark, ai.fluxbatch.model.bench.CudaBenchmark kernels --torch FILE, reads it and prints
the ternary kernel's speedups against it) and prints it.

    python3 bench/gpu/torch_baseline.py OUT.json [--m 1,64,256,1024,4608] [--reps N]
"""
import argparse
import json
import sys
import time

# (name, out, in): FLUX.1-dev's distinct block linear shapes
SHAPES = [
    ("double mod.lin", 18432, 3072),
    ("double attn.qkv + single modulation.lin", 9216, 3072),
    ("double attn.proj", 3072, 3072),
    ("double mlp.0", 12288, 3072),
    ("double mlp.2", 3072, 12288),
    ("single linear1", 21504, 3072),
    ("single linear2", 3072, 15360),
]
WARMUP = 3
AUTO_SECONDS = 0.1


def time_matmul(torch, x, wt, reps):
    for _ in range(WARMUP):
        torch.matmul(x, wt)
    torch.cuda.synchronize()
    if reps <= 0:
        t0 = time.perf_counter()
        torch.matmul(x, wt)
        torch.cuda.synchronize()
        one = max(1e-7, time.perf_counter() - t0)
        reps = int(max(3, min(2000, -(-AUTO_SECONDS // one))))
    t0 = time.perf_counter()
    for _ in range(reps):
        torch.matmul(x, wt)
    torch.cuda.synchronize()
    return (time.perf_counter() - t0) * 1e3 / reps, reps


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("out", help="the JSON file to write")
    p.add_argument("--m", default="1,64,256,1024,4608", help="comma-separated M values (default 1,64,256,1024,4608)")
    p.add_argument("--reps", type=int, default=0, help="reps per timing (default: about %.2f s each)" % AUTO_SECONDS)
    args = p.parse_args()
    ms = [int(v) for v in args.m.split(",") if v.strip()]

    import torch  # imported here so that --help works without torch

    if not torch.cuda.is_available():
        print("torch_baseline.py: torch sees no CUDA device (torch %s, built for CUDA %s)"
              % (torch.__version__, torch.version.cuda), file=sys.stderr)
        return 2
    dev = torch.device("cuda", 0)
    props = torch.cuda.get_device_properties(dev)
    device = "%s (sm_%d%d, %.1f GiB)" % (props.name, props.major, props.minor, props.total_memory / 2 ** 30)
    print("torch_baseline.py: torch %s (CUDA %s) on %s; bf16 torch.matmul(x [M, K], W[N, K].t()), M in %s"
          % (torch.__version__, torch.version.cuda, device, ms), flush=True)
    torch.manual_seed(0)
    results = []
    with torch.inference_mode():
        for name, n, k in SHAPES:
            w = torch.randn(n, k, device=dev, dtype=torch.bfloat16) * (k ** -0.5)
            wt = w.t()
            for m in ms:
                x = torch.randn(m, k, device=dev, dtype=torch.bfloat16)
                ms_per_call, reps = time_matmul(torch, x, wt, args.reps)
                tflops = 2.0 * m * n * k / (ms_per_call * 1e-3) / 1e12
                results.append({"name": name, "out": n, "in": k, "m": m, "ms": ms_per_call, "reps": reps,
                                "tflops": tflops})
                print("%-40s %6dx%-6d M=%-5d %9.4f ms (%7.2f TFLOP/s, weights %7.1f GB/s, %d reps)"
                      % (name, n, k, m, ms_per_call, tflops, 2.0 * n * k / (ms_per_call * 1e-3) / 1e9, reps),
                      flush=True)
                del x
            del w, wt
            torch.cuda.empty_cache()
    doc = {"device": device, "torch": torch.__version__, "cuda": torch.version.cuda, "warmup": WARMUP,
           "timing": "wall time / reps after torch.cuda.synchronize (time.perf_counter)", "results": results}
    with open(args.out, "w") as f:
        json.dump(doc, f, indent=1)
    print(json.dumps(doc, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
