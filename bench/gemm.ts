/**
 * `deno run -A bench/gemm.ts [--blas=auto|/path/libblas.so] [--threads=2] [--reps=30]`
 *
 * GFLOP/s of the model's 2-D fp32 products (vit-tiny-32 at batch 64: encoder 1,088 rows,
 * decoder 4,160; the reference step at batch 256: 3,584 and 12,800), each shape timed
 * alternately on the BLAS `sgemm` (OpenBLAS, BLIS, ...) and on oneDNN's f32 matmul primitive,
 * the 25th percentile of `--reps` calls. The tool behind `AMT_FP32_GEMM` (the README's
 * performance section); `bench/pytorch_gemm.py` times the same shapes in PyTorch.
 */
import { parseArgs } from "node:util";
import { loadBlas } from "../lib/backend/_blas.ts";
import { loadDnnl } from "../lib/backend/_dnnl.ts";

/** rows, cols, inner, A transposed, B transposed */
export const GEMM_SHAPES: [number, number, number, boolean, boolean][] = [
  [1088, 576, 192, false, false],
  [1088, 192, 768, false, false],
  [1088, 768, 192, false, false],
  [1088, 192, 768, false, true],
  [192, 768, 1088, true, false],
  [4160, 384, 128, false, false],
  [4160, 128, 512, false, true],
  [128, 512, 4160, true, false],
  [4160, 512, 128, false, false],
  [3584, 768, 192, false, false],
  [768, 192, 3584, true, false],
  [12800, 512, 128, false, false],
];

if (import.meta.main) {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      blas: { type: "string", default: "auto" },
      threads: { type: "string", default: "2" },
      reps: { type: "string", default: "30" },
    },
    strict: true,
  });
  const threads = Number(values.threads), reps = Number(values.reps);
  const blas = loadBlas(values.blas!, threads);
  const dnnl = loadDnnl("auto", threads);
  if (typeof blas === "string") throw new Error(`no BLAS: ${blas}`);
  if (typeof dnnl === "string") throw new Error(`no oneDNN: ${dnnl}`);
  console.log(`BLAS ${blas.label}; oneDNN ${dnnl.version}; ${threads} threads`);
  const ptr = (a: Float32Array) => Deno.UnsafePointer.of(a)!;
  const q1 = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 2];
  for (const [M, N, K, ta, tb] of GEMM_SHAPES) {
    const A = Float32Array.from({ length: M * K }, Math.random);
    const B = Float32Array.from({ length: K * N }, Math.random);
    const C = new Float32Array(M * N);
    const lda = ta ? M : K, ldb = tb ? K : N;
    const prim = dnnl.batched("f32", 1, 1, M, N, K, ta, tb);
    if (prim === null) throw new Error(`oneDNN has no fast f32 matmul for ${M}x${N}x${K}`);
    const tBlas: number[] = [], tDnnl: number[] = [];
    for (let r = 0; r < reps; r++) {
      let t0 = performance.now();
      blas.lib.symbols.cblas_sgemm(
        101,
        ta ? 112 : 111,
        tb ? 112 : 111,
        M,
        N,
        K,
        1,
        ptr(A),
        lda,
        ptr(B),
        ldb,
        0,
        ptr(C),
        N,
      );
      tBlas.push(performance.now() - t0);
      t0 = performance.now();
      prim.run(ptr(A), ptr(B), ptr(C));
      tDnnl.push(performance.now() - t0);
    }
    const gf = (ms: number) => (2 * M * N * K / ms / 1e6).toFixed(0);
    const [b, d] = [q1(tBlas), q1(tDnnl)];
    console.log(
      `${M}x${N}x${K} ${ta ? "T" : "N"}${tb ? "T" : "N"}: sgemm ${b.toFixed(2)} ms ${
        gf(b)
      } GF/s, ` +
        `oneDNN ${d.toFixed(2)} ms ${gf(d)} GF/s`,
    );
  }
}
