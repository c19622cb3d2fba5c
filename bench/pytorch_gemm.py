#!/usr/bin/env python3
"""The shapes of bench/gemm.ts in PyTorch (torch.matmul, fp32): GFLOP/s, 25th percentile.

    .venv/bin/python bench/pytorch_gemm.py [--threads 2] [--reps 30]
"""
import argparse
import time

import torch

# rows, cols, inner, A transposed, B transposed (as bench/gemm.ts)
SHAPES = [(1088, 576, 192, 0, 0), (1088, 192, 768, 0, 0), (1088, 768, 192, 0, 0),
          (1088, 192, 768, 0, 1), (192, 768, 1088, 1, 0), (4160, 384, 128, 0, 0),
          (4160, 128, 512, 0, 1), (128, 512, 4160, 1, 0), (4160, 512, 128, 0, 0),
          (3584, 768, 192, 0, 0), (768, 192, 3584, 1, 0), (12800, 512, 128, 0, 0)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--reps", type=int, default=30)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    for m, n, k, ta, tb in SHAPES:
        a = torch.rand(k, m).t() if ta else torch.rand(m, k)
        b = torch.rand(n, k).t() if tb else torch.rand(k, n)
        times = []
        for _ in range(args.reps):
            t0 = time.perf_counter()
            a @ b
            times.append((time.perf_counter() - t0) * 1e3)
        ms = sorted(times)[len(times) // 4]
        print(f"{m}x{n}x{k} {'T' if ta else 'N'}{'T' if tb else 'N'}: torch {ms:.2f} ms "
              f"{2 * m * n * k / ms / 1e6:.0f} GF/s")


if __name__ == "__main__":
    main()
