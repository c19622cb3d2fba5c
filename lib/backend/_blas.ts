/**
 * Optional native matrix multiply for the wasm backend: a system CBLAS (OpenBLAS, BLIS, MKL or
 * Apple Accelerate) loaded with `Deno.dlopen`, registered as the wasm backend's `BatchMatMul`
 * kernel.
 *
 * tfjs-backend-wasm runs plain 2-D matMuls through XNNPACK (~25-50 GFLOP/s on 2 cores here) and
 * every transposed or batched one through a scalar loop (~2 GFLOP/s). A CBLAS `sgemm` reads the
 * operands in place in the wasm heap (no copies), handles both transposes for free, and runs at
 * 150-300 GFLOP/s on the same 2 cores. Batched products (attention's `[B, H, T, d]`) loop `sgemm`
 * over the batch.
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

/** Base pointer of the wasm heap, cached per heap buffer (memory growth replaces it). */
let heapBuffer: ArrayBufferLike | null = null;
let heapBase: Deno.PointerValue = null;
function heapPointer(backend: WasmBackendLike): Deno.PointerObject {
  const buf = backend.wasm.HEAPU8.buffer;
  if (buf !== heapBuffer || heapBase === null) {
    heapBase = Deno.UnsafePointer.of(new Uint8Array(buf));
    heapBuffer = buf;
  }
  return heapBase!;
}

const prod = (xs: number[]) => xs.reduce((a, b) => a * b, 1);

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
    const offA = be.dataIdMap.get(a.dataId).memoryOffset;
    const offB = be.dataIdMap.get(b.dataId).memoryOffset;
    const base = heapPointer(be);
    const ta = transposeA ? TRANS : NO_TRANS, tb = transposeB ? TRANS : NO_TRANS;
    const lda = transposeA ? M : K, ldb = transposeB ? K : N;
    const strideA = bA === 1 ? 0 : M * K * 4, strideB = bB === 1 ? 0 : K * N * 4;
    // Many small products (attention's [B, H, T, d]): one thread each. A threaded sgemm wakes
    // its pool per call, which costs more than the product, badly so on a busy machine.
    const single = batch > 1 && setThreads !== null && blas.threads > 1;
    if (single) setThreads!(1);
    try {
      for (let i = 0; i < batch; i++) {
        sgemm(
          ROW_MAJOR,
          ta,
          tb,
          M,
          N,
          K,
          1,
          Deno.UnsafePointer.offset(base, offA + i * strideA),
          lda,
          Deno.UnsafePointer.offset(base, offB + i * strideB),
          ldb,
          0,
          Deno.UnsafePointer.offset(base, offC + i * M * N * 4),
          N,
        );
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

/** `x [N, in] @ w [in, out] + b [out]` in one sgemm (C starts as the bias rows, beta = 1). */
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
  const c = be.typedArrayFromHeap(out) as Float32Array;
  const bias = be.typedArrayFromHeap(b) as Float32Array;
  for (let r = 0; r < N; r++) c.set(bias, r * M);
  if (K === 0) return out;
  const base = heapPointer(be);
  const at = (t: tf.TensorInfo) =>
    Deno.UnsafePointer.offset(base, be.dataIdMap.get(t.dataId).memoryOffset);
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
