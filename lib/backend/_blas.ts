/**
 * Optional native matrix multiply for the wasm backend: a system CBLAS (OpenBLAS, BLIS, MKL or
 * Apple Accelerate) loaded with `Deno.dlopen`, registered as the wasm backend's `BatchMatMul`
 * kernel, and, when oneDNN loads too (`_dnnl.ts`), bf16 products and threaded batches.
 *
 * tfjs-backend-wasm runs plain 2-D matMuls through XNNPACK (~25-50 GFLOP/s on 2 cores here) and
 * every transposed or batched one through a scalar loop (~2 GFLOP/s). A CBLAS `sgemm` reads the
 * operands in place in the wasm heap (no copies), handles both transposes for free, and runs at
 * 150-300 GFLOP/s on the same 2 cores.
 *
 * Batched products (attention's `[B, H, T, d]`): with oneDNN, one matmul primitive per shape
 * runs the whole batch on oneDNN's threads (the backend's thread count); without it, `sgemm`
 * loops over the batch on one thread (a threaded sgemm per small product costs more in pool
 * wake-ups than it gains). A batch against one shared right operand is a single 2-D product.
 *
 * Precision ({@link setMatmulPrecision}): `fp32` (default) or `bf16`, where every product with
 * both output sides > 1 converts its operands to bf16 (round to nearest even, `_bf16.ts`, each
 * tensor once while it lives) and runs oneDNN's bf16 gemm: fp32 accumulation, fp32 output,
 * the dense layer's bias added in fp32. Vector products (the bias gradient's ones-row product)
 * stay fp32: they are reductions, memory-bound, and gain nothing from bf16.
 *
 * Nothing here is required: when no library loads (none installed, no `--allow-ffi`, another OS),
 * the wasm kernels stay as they are and `initBackend` says why in its one-line report. The
 * choice comes from `BackendOptions.blas` or the `AMT_BLAS` environment variable: `auto`
 * (default: try the known library names), `off`, or a library path.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import type { WasmBackendLike } from "./_wasm_types.ts";
import { type BatchedMatmul, cpuBf16, type Dnnl, DNNL_HINT } from "./_dnnl.ts";
import { beginBf16Product, bf16Operand, clearBf16Cache } from "./_bf16.ts";
import { attachNativeEltwise, heapPointer } from "./_native_eltwise.ts";

/** CBLAS enums. */
const ROW_MAJOR = 101, NO_TRANS = 111, TRANS = 112;

/** Library names tried by `auto`, most wanted first. */
export const BLAS_CANDIDATES: readonly string[] = Deno.build.os === "darwin"
  ? ["/System/Library/Frameworks/Accelerate.framework/Accelerate", "libopenblas.dylib"]
  : Deno.build.os === "windows"
  ? ["libopenblas.dll", "mkl_rt.dll"]
  : [
    "libopenblas.so.0",
    "libopenblas.so",
    "libopenblasp-r0.3.21.so",
    "libblis.so.4",
    "libmkl_rt.so",
    "libmkl_rt.so.2",
  ];

/** What to tell a user who has no BLAS, per OS. */
export const BLAS_HINT = Deno.build.os === "linux"
  ? "apt install libopenblas0-pthread (or set AMT_BLAS=/path/to/libopenblas.so) for native matmuls"
  : "set AMT_BLAS=/path/to/a CBLAS library for native matmuls";

const SYMBOLS = {
  cblas_sgemm: {
    parameters: [
      "i32", // order
      "i32", // transA
      "i32", // transB
      "i32", // M
      "i32", // N
      "i32", // K
      "f32", // alpha
      "pointer", // A
      "i32", // lda
      "pointer", // B
      "i32", // ldb
      "f32", // beta
      "pointer", // C
      "i32", // ldc
    ],
    result: "void",
  },
  openblas_set_num_threads: { parameters: ["i32"], result: "void", optional: true },
  openblas_get_config: { parameters: [], result: "pointer", optional: true },
  bli_thread_set_num_threads: { parameters: ["i64"], result: "void", optional: true },
  MKL_Set_Num_Threads: { parameters: ["i32"], result: "void", optional: true },
} as const;

type BlasLib = Deno.DynamicLibrary<typeof SYMBOLS>;

/** A loaded CBLAS. */
export interface Blas {
  /** The file or name that loaded. */
  path: string;
  /** e.g. `OpenBLAS 0.3.21 NO_AFFINITY Haswell MAX_THREADS=64`, or the file name. */
  label: string;
  /** Threads the library was asked to use (0 = its own default). */
  threads: number;
  lib: BlasLib;
}

let loaded: Blas | null = null;
let active = false;

/** The loaded library, or null. */
export function blasLoaded(): Blas | null {
  return loaded;
}

/** Whether matMul runs on the native library now: it is installed and wasm is the backend. */
export function blasActive(): boolean {
  return active && tf.getBackend() === "wasm";
}

function errorText(e: unknown): string {
  return e instanceof Error ? e.message.split("\n")[0] : String(e);
}

/**
 * Loads a CBLAS. `choice`: `auto`, `off`, or a path. Returns the library or, when none loads,
 * the reason (for the backend report).
 */
export function loadBlas(choice: string, threads: number): Blas | string {
  const r = loadBlasLib(choice, threads);
  if (typeof r === "string") blasNote = r;
  return r;
}

function loadBlasLib(choice: string, threads: number): Blas | string {
  if (loaded !== null) return loaded;
  if (choice === "off") return "native BLAS off (AMT_BLAS=off)";
  if (typeof Deno.dlopen !== "function") return "native BLAS needs Deno.dlopen";
  const names = choice === "auto" ? BLAS_CANDIDATES : [choice];
  const errors: string[] = [];
  for (const name of names) {
    let lib: BlasLib;
    try {
      lib = Deno.dlopen(name, SYMBOLS);
    } catch (e) {
      const msg = errorText(e);
      if (/permission|Requires ffi/i.test(msg)) {
        return "native BLAS needs --allow-ffi (the deno tasks pass -A)";
      }
      errors.push(`${name}: ${msg}`);
      continue;
    }
    const s = lib.symbols;
    if (threads > 0) {
      if (s.openblas_set_num_threads) s.openblas_set_num_threads(threads);
      else if (s.bli_thread_set_num_threads) s.bli_thread_set_num_threads(BigInt(threads));
      else if (s.MKL_Set_Num_Threads) s.MKL_Set_Num_Threads(threads);
    }
    let label = name.split("/").pop()!;
    if (s.openblas_get_config) {
      const p = s.openblas_get_config();
      if (p !== null) label = new Deno.UnsafePointerView(p).getCString().trim();
    }
    loaded = { path: name, label, threads, lib };
    return loaded;
  }
  if (choice !== "auto") {
    return `native BLAS "${choice}" did not load (${errors.join("; ")})`;
  }
  return `no native BLAS found (${BLAS_HINT})`;
}

const prod = (xs: number[]) => xs.reduce((a, b) => a * b, 1);

// ---------------------------------------------------------------------------------------------
// precision

/** What `resolvePrecision` accepts: `auto` picks bf16 where it runs, else fp32. */
export const PRECISION_CHOICES = ["auto", "fp32", "bf16"] as const;
/** A precision request (a config value or `--precision=`). */
export type PrecisionChoice = typeof PRECISION_CHOICES[number];
/** The precision the matmuls run in. */
export type Precision = "fp32" | "bf16";

let dnnl: Dnnl | null = null;
let dnnlNote = "oneDNN is loaded by initBackend() once the wasm backend has a native matmul";
let blasNote = "initBackend() has not started the wasm backend";
let precision: Precision = "fp32";

/** Records the outcome of `loadDnnl` (called by `initBackend`). */
export function attachDnnl(d: Dnnl | string): void {
  if (typeof d === "string") dnnlNote = d;
  else dnnl = d;
  attachNativeEltwise(typeof d === "string" ? null : d.eltwise);
}

/** oneDNN when it serves the matmul now (loaded, and the native matmul active), else null. */
export function dnnlActive(): Dnnl | null {
  return blasActive() ? dnnl : null;
}

/** e.g. `oneDNN 2.6.3 bf16 (avx512_bf16, OpenMP; GELU and bf16 copies; fp32 products)`. */
export function dnnlLabel(d: Dnnl): string {
  const eltwise = d.eltwise ? "; GELU and bf16 copies" : "";
  const fp32 = fp32OnDnnl && d.batchedApi ? "; fp32 products" : "";
  return `oneDNN ${d.version} bf16 (${cpuBf16().note}, ${d.runtime}${eltwise}${fp32})`;
}

function dnnlThreads(d: Dnnl): string {
  return d.threads > 0
    ? `${d.threads} ${d.runtime} thread${d.threads === 1 ? "" : "s"}`
    : `${d.runtime}'s own thread count`;
}

/**
 * What bf16 matmuls need and this process lacks, with what to do about it; null when they can
 * run (wasm backend with the native matmul, oneDNN loaded, a CPU with AVX512_BF16 or AMX-BF16).
 */
export function bf16Missing(): string | null {
  const backend = tf.getBackend();
  if (backend !== "wasm") {
    return `bf16 matmuls run in the wasm backend's native matmul, but the backend is ` +
      `${backend ?? "not started"} (use --backend=wasm or auto)`;
  }
  if (!active) {
    return `bf16 matmuls run in the wasm backend's native matmul, which is not active ` +
      `(${blasNote}; ${BLAS_HINT})`;
  }
  if (dnnl === null) {
    const hint = /AMT_DNNL=off/.test(dnnlNote) ? "unset AMT_DNNL" : DNNL_HINT;
    return `bf16 matmuls need oneDNN, which is not loaded (${dnnlNote}; ${hint})`;
  }
  const cpu = cpuBf16();
  if (!cpu.avx512bf16 && !cpu.amxBf16) {
    return `bf16 matmuls need a CPU with AVX512_BF16 or AMX-BF16, and this one has neither ` +
      `(bf16 flags: ${cpu.note})`;
  }
  return null;
}

function checkPrecision(p: string): void {
  if (!(PRECISION_CHOICES as readonly string[]).includes(p)) {
    throw new Error(
      `precision must be one of ${PRECISION_CHOICES.join(", ")}; got ${JSON.stringify(p)}`,
    );
  }
}

function bf16Unavailable(missing: string): Error {
  return new Error(
    `precision bf16 is not available: ${missing}. Or use precision fp32, or auto (bf16 where ` +
      "it runs, else fp32).",
  );
}

/**
 * Resolves a precision request against this process (call after `initBackend`); sets nothing.
 * `fp32` -> fp32; `bf16` -> bf16 or throws saying what is missing and what to do; `auto` ->
 * bf16 when it can run (see {@link bf16Missing}), else fp32 with the reason.
 *
 * @throws on an unknown choice, or `bf16` where bf16 cannot run.
 */
export function resolvePrecision(
  choice: PrecisionChoice,
): { precision: Precision; reason: string } {
  checkPrecision(choice);
  if (choice === "fp32") return { precision: "fp32", reason: "fp32 as asked" };
  const missing = bf16Missing();
  if (missing === null) {
    const how = `bf16 matmuls (oneDNN ${dnnl!.version}, ${cpuBf16().note}, ${dnnlThreads(dnnl!)})`;
    return { precision: "bf16", reason: choice === "auto" ? `auto: ${how}` : how };
  }
  if (choice === "auto") return { precision: "fp32", reason: `auto: fp32, since ${missing}` };
  throw bf16Unavailable(missing);
}

/**
 * Sets the precision of every matmul the wasm backend's native matmul runs from now on
 * (`ops.linear` forward and backward, attention products, any `tf.matMul`). `bf16` throws when
 * it cannot run (see {@link resolvePrecision}). Going back to fp32 frees the bf16 copies.
 */
export function setMatmulPrecision(p: Precision): void {
  if (p !== "fp32" && p !== "bf16") {
    throw new Error(
      `setMatmulPrecision takes fp32 or bf16 (resolve auto with resolvePrecision first); got ` +
        JSON.stringify(p),
    );
  }
  if (p === "bf16") {
    const missing = bf16Missing();
    if (missing !== null) throw bf16Unavailable(missing);
  } else {
    clearBf16Cache();
  }
  precision = p;
}

/** The precision the native matmul runs in now (`fp32` unless set). */
export function matmulPrecision(): Precision {
  return precision;
}

/** Products by path since the last {@link resetMatmulStats} (counts only). */
export interface MatmulStats {
  /** 2-D products (a batch with a shared right operand counts as one) in fp32 `sgemm`. */
  fp32: number;
  /** 2-D products in oneDNN's bf16 gemm. */
  bf16: number;
  /** Batched products run as one oneDNN matmul primitive (threaded), fp32 or bf16. */
  batchedPrimitive: number;
  /** Batched products looped one small product at a time. */
  batchedLoop: number;
  /** Products kept in fp32 in bf16 mode because one output side is 1 (reductions). */
  vectorFp32: number;
  /** 2-D fp32 products (dense layers included) run as oneDNN's f32 matmul primitive. */
  fp32Dnnl: number;
}

const stats: MatmulStats = {
  fp32: 0,
  bf16: 0,
  batchedPrimitive: 0,
  batchedLoop: 0,
  vectorFp32: 0,
  fp32Dnnl: 0,
};

/** Where 2-D fp32 products run when oneDNN is loaded: `AMT_FP32_GEMM=dnnl|blas`. */
export const FP32_GEMM_CHOICES = ["dnnl", "blas"] as const;
let fp32OnDnnl = true;

/**
 * Runs 2-D fp32 products (dense layers, their gradients, any plain `tf.matMul`) on oneDNN's f32
 * matmul primitive when oneDNN is loaded (`true`, the default), or on the BLAS `sgemm`
 * (`false`). Measured here (`bench/results/2026-12-01c/`), the primitive ran the model's shapes
 * at 194-227 GFLOP/s, OpenBLAS's sgemm at 116-207; and OpenBLAS's threads, spinning after each
 * call, took a core from oneDNN's batched products and GELU between them.
 */
export function setDnnlFp32(on: boolean): void {
  fp32OnDnnl = on;
}

/** Whether 2-D fp32 products go to oneDNN when it is loaded (see {@link setDnnlFp32}). */
export function dnnlFp32(): boolean {
  return fp32OnDnnl;
}

/** Reads `AMT_FP32_GEMM` (unset: `dnnl`). @throws on another value, naming the two. */
export function fp32GemmFromEnv(value: string | undefined): boolean {
  if (value === undefined || value === "" || value === "dnnl") return true;
  if (value === "blas") return false;
  throw new Error(
    `AMT_FP32_GEMM=${value}: use ${FP32_GEMM_CHOICES.join(" or ")} (where 2-D fp32 products ` +
      "run when oneDNN is loaded), or unset it",
  );
}

/** oneDNN's f32 primitive for a 2-D fp32 product, when it should and can run it. */
function fp32Primitive(
  rows: number,
  n: number,
  k: number,
  ta: boolean,
  tb: boolean,
  bias = false,
): BatchedMatmul | null {
  if (!fp32OnDnnl) return null;
  return dnnlActive()?.batched("f32", 1, 1, rows, n, k, ta, tb, bias) ?? null;
}

/** The counters (see {@link MatmulStats}). */
export function matmulStats(): MatmulStats {
  return { ...stats };
}

/** Zeroes the counters. */
export function resetMatmulStats(): void {
  for (const k of Object.keys(stats) as (keyof MatmulStats)[]) stats[k] = 0;
}

// ---------------------------------------------------------------------------------------------
// kernels

/**
 * Registers the native `BatchMatMul` on the wasm backend (which must be started). Shapes the
 * native path does not cover (non-float32, incompatible batch broadcasting) go to the original
 * kernel. Idempotent.
 */
export function installBlasMatMul(blas: Blas): void {
  if (active) return;
  const original = tf.getKernel("BatchMatMul", "wasm");
  if (original === undefined) throw new Error("native BLAS: the wasm backend has no BatchMatMul");
  const fallback = original.kernelFunc;
  const sgemm = blas.lib.symbols.cblas_sgemm;
  const sym = blas.lib.symbols;
  const setThreads: ((n: number) => void) | null = sym.openblas_set_num_threads
    ? (n) => sym.openblas_set_num_threads!(n)
    : sym.bli_thread_set_num_threads
    ? (n) => sym.bli_thread_set_num_threads!(BigInt(n))
    : sym.MKL_Set_Num_Threads
    ? (n) => sym.MKL_Set_Num_Threads!(n)
    : null;
  const kernelFunc: tf.KernelFunc = (args) => {
    const { a, b } = args.inputs as { a: tf.TensorInfo; b: tf.TensorInfo };
    const { transposeA, transposeB } = args.attrs as { transposeA: boolean; transposeB: boolean };
    const be = args.backend as unknown as WasmBackendLike;
    if (a.dtype !== "float32" || b.dtype !== "float32") return fallback(args);
    const ra = a.shape.length, rb = b.shape.length;
    const M = transposeA ? a.shape[ra - 1] : a.shape[ra - 2];
    const K = transposeA ? a.shape[ra - 2] : a.shape[ra - 1];
    const Kb = transposeB ? b.shape[rb - 1] : b.shape[rb - 2];
    const N = transposeB ? b.shape[rb - 2] : b.shape[rb - 1];
    if (K !== Kb) return fallback(args); // the original throws tfjs's own message
    const outerA = a.shape.slice(0, -2), outerB = b.shape.slice(0, -2);
    const bA = prod(outerA), bB = prod(outerB);
    let outer: number[];
    try {
      outer = tf.broadcast_util.assertAndGetBroadcastShape(outerA, outerB);
    } catch {
      return fallback(args);
    }
    const batch = prod(outer);
    if (!(bA === bB || bA === 1 || bB === 1) || batch !== Math.max(bA, bB)) return fallback(args);
    const out = be.makeOutput([...outer, M, N], "float32");
    if (batch * M * N === 0) return out;
    const offC = be.dataIdMap.get(out.dataId).memoryOffset;
    if (K === 0) {
      new Float32Array(be.wasm.HEAPU8.buffer, offC, batch * M * N).fill(0);
      return out;
    }
    const ta = transposeA, tb = transposeB;
    // a batch against one shared right operand, A untransposed: one [batch*M, K] product
    const merged = batch > 1 && bB === 1 && !ta;
    const rows = merged ? batch * M : M, nb = merged ? 1 : batch;
    const d = precision === "bf16" ? dnnlActive() : null;
    const bf16 = d !== null && rows > 1 && N > 1;
    if (d !== null && !bf16) stats.vectorFp32++;
    let offA = be.dataIdMap.get(a.dataId).memoryOffset;
    let offB = be.dataIdMap.get(b.dataId).memoryOffset;
    if (bf16) {
      // the copies may grow the heap: take the base pointer after them
      beginBf16Product(be);
      offA = bf16Operand(be, a, 0);
      offB = bf16Operand(be, b, 1);
    }
    const base = heapPointer(be);
    const at = (off: number) => Deno.UnsafePointer.offset(base, off);
    const lda = ta ? M : K, ldb = tb ? K : N;
    let prim2d: BatchedMatmul | null;
    if (nb === 1) {
      if (bf16) {
        stats.bf16++;
        d!.gemmBf16(ta, tb, rows, N, K, at(offA), lda, at(offB), ldb, 0, at(offC), N);
      } else if ((prim2d = fp32Primitive(rows, N, K, ta, tb)) !== null) {
        stats.fp32Dnnl++;
        prim2d.run(at(offA), at(offB), at(offC));
      } else {
        stats.fp32++;
        sgemm(
          ROW_MAJOR,
          ta ? TRANS : NO_TRANS,
          tb ? TRANS : NO_TRANS,
          rows,
          N,
          K,
          1,
          at(offA),
          lda,
          at(offB),
          ldb,
          0,
          at(offC),
          N,
        );
      }
      return out;
    }
    // Many small products (attention's [B, H, T, d]): one threaded oneDNN primitive for the
    // whole batch when oneDNN is loaded (in either precision).
    const prim = dnnlActive()?.batched(bf16 ? "bf16" : "f32", bA, bB, M, N, K, ta, tb) ?? null;
    if (prim !== null) {
      stats.batchedPrimitive++;
      prim.run(at(offA), at(offB), at(offC));
      return out;
    }
    // Else one product at a time on one thread: a threaded sgemm wakes its pool per call,
    // which costs more than the product, badly so on a busy machine.
    stats.batchedLoop++;
    const es = bf16 ? 2 : 4;
    const strideA = bA === 1 ? 0 : M * K * es, strideB = bB === 1 ? 0 : K * N * es;
    const single = !bf16 && setThreads !== null && blas.threads > 1;
    if (single) setThreads!(1);
    try {
      for (let i = 0; i < batch; i++) {
        const pa = at(offA + i * strideA), pb = at(offB + i * strideB);
        const pc = at(offC + i * M * N * 4);
        if (bf16) d!.gemmBf16(ta, tb, M, N, K, pa, lda, pb, ldb, 0, pc, N);
        else {
          sgemm(
            ROW_MAJOR,
            ta ? TRANS : NO_TRANS,
            tb ? TRANS : NO_TRANS,
            M,
            N,
            K,
            1,
            pa,
            lda,
            pb,
            ldb,
            0,
            pc,
            N,
          );
        }
      }
    } finally {
      if (single) setThreads!(blas.threads);
    }
    return out;
  };
  tf.unregisterKernel("BatchMatMul", "wasm");
  tf.registerKernel({ ...original, kernelFunc });
  if (tf.getKernel(DENSE, "wasm") === undefined) {
    tf.registerKernel({
      kernelName: DENSE,
      backendName: "wasm",
      kernelFunc: (args) => dense(args, blas),
    });
  }
  active = true;
}

/** `x [N, in] @ w [in, out] + b [out]` in one gemm (C starts as the bias rows, beta = 1). */
export const DENSE = "AmtDense";

function dense(args: Parameters<tf.KernelFunc>[0], blas: Blas): tf.TensorInfo {
  const { x, w, b } = args.inputs as Record<string, tf.TensorInfo>;
  const be = args.backend as unknown as WasmBackendLike;
  const [N, K] = x.shape, M = w.shape[1];
  if (w.shape[0] !== K || b.shape[0] !== M) {
    throw new Error(`${DENSE}: shapes x ${x.shape}, w ${w.shape}, b ${b.shape} do not fit`);
  }
  const out = be.makeOutput([N, M], "float32");
  if (N * M === 0) return out;
  // C starts as the bias rows (beta = 1), except where the matmul primitive adds the bias
  const fillBias = () => {
    const c = be.typedArrayFromHeap(out) as Float32Array;
    const bias = be.typedArrayFromHeap(b) as Float32Array;
    for (let r = 0; r < N; r++) c.set(bias, r * M);
  };
  if (K === 0) {
    fillBias();
    return out;
  }
  const d = precision === "bf16" ? dnnlActive() : null;
  const offC = be.dataIdMap.get(out.dataId).memoryOffset;
  if (d !== null && N > 1 && M > 1) {
    beginBf16Product(be);
    const px = bf16Operand(be, x, 0), pw = bf16Operand(be, w, 1);
    const base = heapPointer(be);
    const at = (off: number) => Deno.UnsafePointer.offset(base, off);
    stats.bf16++;
    // one threaded primitive with the bias fused (no pass to copy the bias rows into C and no
    // beta = 1 read of them), else the gemm onto the bias rows
    const prim = d.batched("bf16", 1, 1, N, M, K, false, false, true);
    if (prim !== null) {
      prim.run(at(px), at(pw), at(offC), at(be.dataIdMap.get(b.dataId).memoryOffset));
      return out;
    }
    fillBias();
    d.gemmBf16(false, false, N, M, K, at(px), K, at(pw), M, 1, at(offC), M);
    return out;
  }
  const base = heapPointer(be);
  const at = (t: tf.TensorInfo) =>
    Deno.UnsafePointer.offset(base, be.dataIdMap.get(t.dataId).memoryOffset);
  const prim = d === null ? fp32Primitive(N, M, K, false, false, true) : null;
  if (prim !== null) {
    stats.fp32Dnnl++;
    prim.run(at(x), at(w), at(out), at(b));
    return out;
  }
  fillBias();
  if (d !== null) stats.vectorFp32++;
  stats.fp32++;
  blas.lib.symbols.cblas_sgemm(
    ROW_MAJOR,
    NO_TRANS,
    NO_TRANS,
    N,
    M,
    K,
    1,
    at(x),
    K,
    at(w),
    M,
    1,
    at(out),
    M,
  );
  return out;
}
