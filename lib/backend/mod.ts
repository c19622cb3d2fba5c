/**
 * Picks and starts the TensorFlow.js backend for a run: `initBackend()` once at start-up,
 * `backendSummary()` into the run folder.
 *
 * Backends:
 * - `wasm`: tfjs-backend-wasm 4.22.0 with SIMD and, under Deno, real multithreading. tfjs turns
 *   threads off when it thinks it runs in Node (Deno looks like Node); we turn the threaded
 *   build back on and give it pthread workers that run under Deno (see `_wasm_threads.ts`).
 *   Threads are verified at start (XNNPACK pool size and a per-thread start counter); on any
 *   failure the single-threaded SIMD build is used and the printed line says why.
 * - `cpu`: tfjs's pure-JS backend (slow, always available, the reference in tests).
 * - `webgpu`: tfjs-backend-webgpu on Deno's `navigator.gpu` (needs a GPU adapter).
 * - `tensorflow`: libtensorflow through `@tensorflow/tfjs-node` (or `-node-gpu`). It is not a
 *   dependency of this project because its install script downloads libtensorflow. To use it,
 *   where the internet is reachable run in the project folder
 *   `deno add npm:@tensorflow/tfjs-node@4.22.0` and then
 *   `deno install --allow-scripts=npm:@tensorflow/tfjs-node` (or `npm i
 *   @tensorflow/tfjs-node@4.22.0`; `tfjs-node-gpu` likewise for CUDA). Keep 4.22.0 so it shares
 *   this project's tfjs-core. Then `--backend=tensorflow` uses it and `auto` prefers it.
 * - `auto`: tfjs-node-gpu, then tfjs-node (only when installed under `node_modules/`; never
 *   fetched), then wasm, then cpu.
 *
 * Matmul precision: with the wasm backend's native matmul and oneDNN (`_dnnl.ts`; `AMT_DNNL`
 * or `BackendOptions.dnnl`: `auto`, `off` or a path) on a CPU with AVX512_BF16 or AMX,
 * `setMatmulPrecision("bf16")` runs every matmul in bf16 with fp32 accumulation (PyTorch's CPU
 * autocast); `resolvePrecision("auto")` picks it where it runs and says why not elsewhere. The
 * one-line report names the bf16 machinery (`oneDNN 2.6.3 bf16 (avx512_bf16, OpenMP)`) or
 * why there is none (`no bf16: ...`).
 *
 * Model layers reach the fast kernels (fused cpu/wasm kernels, the native BLAS matmul) only
 * through {@link ops} (`ops.ts`), never through the private files here.
 *
 * `initBackend` also calls `tf.enableProdMode()`, which silences tfjs's Node banner and its own
 * backend-init warnings (the reasons are reported here instead).
 *
 * @example
 * ```ts ignore
 * import { initBackend } from "./lib/backend/mod.ts";
 * const info = await initBackend({ backend: "auto" }); // prints "backend: wasm (SIMD, 2 threads)"
 * ```
 *
 * @module
 */

import * as tf from "@tensorflow/tfjs";
import {
  findNativePackage,
  NATIVE_PACKAGES,
  startTfjsNode,
  startWebgpu,
  TFJS_NODE_INSTALL,
} from "./_native.ts";
import { installWasmKernels } from "./_wasm_kernels.ts";
import { setStepThreads } from "./_helper.ts";
import {
  attachDnnl,
  blasActive,
  blasLoaded,
  dnnlActive,
  dnnlFp32,
  dnnlLabel,
  fp32GemmFromEnv,
  installBlasMatMul,
  loadBlas,
  matmulPrecision,
  type Precision,
  type PrecisionChoice,
  resolvePrecision,
  setDnnlFp32,
  setMatmulPrecision,
} from "./_blas.ts";
import { cpuBf16, loadDnnl } from "./_dnnl.ts";
import {
  logicalCores,
  MAX_WASM_THREADS,
  startWasm,
  type WasmStart,
  wasmStarted,
  wasmThreadStats,
} from "./_wasm.ts";

/** The fast layer ops (dense, LayerNorm, GELU, attention) the model layers call: see `ops.ts`. */
export * as ops from "./ops.ts";
/**
 * `setFusedBlockEnabled(on)`: whether a transformer block runs as one kernel forward and one
 * backward on wasm with a native matmul (default on; the same function bit for bit, see
 * `_block.ts`), `fusedBlockAvailable()`, `fusedBlockStats()` (blocks run so, forward and
 * backward), `resetFusedBlockStats()`.
 */
export {
  fusedBlockAvailable,
  fusedBlockStats,
  resetFusedBlockStats,
  setFusedBlockEnabled,
} from "./_block.ts";

/**
 * Matmul precision (the wasm backend's native matmul; see `_blas.ts`):
 * `resolvePrecision("auto" | "fp32" | "bf16")` -> `{ precision, reason }` (after `initBackend`;
 * sets nothing; `bf16` throws where it cannot run), `setMatmulPrecision("fp32" | "bf16")`,
 * `matmulPrecision()`, `bf16Missing()` (why bf16 cannot run, or null), `matmulStats()`;
 * `setDnnlFp32(on)` / `dnnlFp32()`: whether 2-D fp32 products run on oneDNN's f32 matmul
 * primitive when oneDNN is loaded (default on; `AMT_FP32_GEMM=blas` turns it off at start).
 */
export {
  bf16Missing,
  dnnlFp32,
  matmulPrecision,
  type MatmulStats,
  matmulStats,
  type Precision,
  PRECISION_CHOICES,
  type PrecisionChoice,
  resetMatmulStats,
  resolvePrecision,
  setDnnlFp32,
  setMatmulPrecision,
} from "./_blas.ts";
/**
 * The bf16 operand copies: `newStep()` (call at a training step's start: frees the copies of
 * the step before), `invalidateBf16Cache()` (the same, after writing into a tensor's memory in
 * place), `bf16Stats()` (conversions, cache hits, bytes held), `setBf16Cache(on, budget)`.
 */
export {
  type Bf16Stats,
  bf16Stats,
  clearBf16Cache as invalidateBf16Cache,
  clearBf16Cache as newStep,
  resetBf16Stats,
  setBf16Cache,
} from "./_bf16.ts";

/** The backends `initBackend` accepts. */
export const BACKEND_CHOICES = ["auto", "wasm", "cpu", "webgpu", "tensorflow"] as const;
/** A backend choice, as given on the command line (`--backend=wasm`). */
export type BackendChoice = typeof BACKEND_CHOICES[number];

/** Options for {@link initBackend}. */
export interface BackendOptions {
  /** Which backend; `auto` picks the fastest one that starts. */
  backend: BackendChoice;
  /** Cap on wasm threads: 0 or absent = one per logical core (at most 8); 1 = single thread. */
  threads?: number;
  /** Do not print the one-line report. */
  quiet?: boolean;
  /**
   * Native matmul for the wasm backend (see `_blas.ts`): `auto` (default; try OpenBLAS, BLIS,
   * MKL, Accelerate), `off`, or a CBLAS library path. Default: `$AMT_BLAS`, else `auto`.
   */
  blas?: string;
  /**
   * oneDNN for bf16 matmuls and threaded batched products, on top of the native matmul (see
   * `_dnnl.ts`): `auto` (default; `libdnnl.so.2`, `libdnnl.so`), `off`, or a library path.
   * Default: `$AMT_DNNL`, else `auto`.
   */
  dnnl?: string;
}

/** What {@link initBackend} started. */
export interface BackendInfo {
  /** tfjs backend name now active: `wasm`, `cpu`, `webgpu` or `tensorflow`. */
  backend: string;
  /** Threads the backend computes on; 0 = managed natively (tensorflow, webgpu). */
  threads: number;
  /** Whether wasm SIMD is in use (false for non-wasm backends). */
  simd: boolean;
  /** Why the result differs from the request, or what it runs on; "" when nothing to say. */
  note: string;
  /**
   * wasm only: the native library that runs matMul (e.g. `OpenBLAS 0.3.21 ...`), or why none
   * does (`no native BLAS found (...)`).
   */
  matmul?: string;
  /** Whether matMul runs natively (wasm + a loaded BLAS). */
  nativeMatmul?: boolean;
  /**
   * wasm only: the bf16 matmul machinery (`oneDNN 2.6.3 bf16 (avx512_bf16, 2 OpenMP threads)`)
   * or why there is none (`no bf16: ...`). Whether matmuls run in bf16 is
   * `matmulPrecision()`.
   */
  bf16?: string;
  /** Whether `setMatmulPrecision("bf16")` can run here. */
  bf16Available?: boolean;
}

/** {@link BackendInfo} plus the environment, for `config.json` / logs of a run. */
export interface BackendSummary extends BackendInfo {
  requested: BackendChoice | "none";
  line: string;
  tfjs: string;
  deno: string;
  v8: string;
  os: string;
  arch: string;
  logicalCores: number;
  /** The native BLAS, when one loaded. */
  blas?: { path: string; label: string; active: boolean };
  /** oneDNN, when it loaded. */
  dnnl?: {
    path: string;
    version: string;
    runtime: string;
    threads: number;
    waitPolicy: string;
    isa: string;
  };
  /** The CPU's bf16 instructions (`avx512_bf16`, `amx_bf16`, `none`, or why unknown). */
  cpuBf16: string;
  /** The precision matmuls run in now. */
  precision: "fp32" | "bf16";
  /** Present once the wasm backend has been started in this process. */
  wasm?: {
    dir: string;
    poolThreads: number;
    pthreadsStarted: number;
    workers: number;
  };
}

interface Current {
  key: string;
  requested: BackendChoice;
  info: BackendInfo;
}

let current: Current | null = null;
/** Serialises `initBackend` calls: tf has one global backend per process. */
let queue: Promise<unknown> = Promise.resolve();

/** The one-line report, e.g. `backend: wasm (SIMD, 2 threads)`. */
export function formatBackend(info: BackendInfo): string {
  if (info.backend === "wasm") {
    const t = info.threads === 1 ? "1 thread" : `${info.threads} threads`;
    const head = `${info.simd ? "SIMD" : "no SIMD"}, ${t}`;
    // the bf16 machinery goes inside the matmul clause, before its thread count
    let matmul = info.matmul ?? "";
    if (info.nativeMatmul && info.bf16) {
      const m = /, \d+ threads?$/.exec(matmul);
      matmul = m ? `${matmul.slice(0, m.index)}; ${info.bf16}${m[0]}` : `${matmul}; ${info.bf16}`;
    }
    const mm = matmul ? (info.nativeMatmul ? `; matmul: ${matmul}` : `; ${matmul}`) : "";
    return `backend: wasm (${info.note ? `${head}: ${info.note}` : head}${mm})`;
  }
  if (info.backend === "cpu") {
    return `backend: cpu (pure JS, 1 thread${info.note ? `: ${info.note}` : ""})`;
  }
  return `backend: ${info.backend}${info.note ? ` (${info.note})` : ""}`;
}

function validate(opts: BackendOptions): number {
  if (!(BACKEND_CHOICES as readonly string[]).includes(opts.backend)) {
    throw new Error(
      `backend must be one of ${BACKEND_CHOICES.join(", ")}; got ${JSON.stringify(opts.backend)}`,
    );
  }
  const threads = opts.threads ?? 0;
  if (!Number.isInteger(threads) || threads < 0) {
    throw new Error(`threads must be an integer >= 0 (0 = auto); got ${threads}`);
  }
  return threads;
}

function wasmInfo(s: WasmStart, asked: number, capNote: string, extra: string[]): BackendInfo {
  const notes = [...extra];
  if (s.fallback !== "") notes.push(s.fallback);
  else if (capNote !== "") notes.push(capNote);
  else if (s.threads !== asked && wasmStarted() !== null) {
    notes.push(`thread count is fixed once wasm started (asked ${asked}, running ${s.threads})`);
  }
  return { backend: "wasm", threads: s.threads, simd: s.simd, note: notes.join("; ") };
}

/** Resolves the wasm thread request: 0 = auto. Returns the count and a note if capped. */
function wasmThreads(threads: number): { want: number; capNote: string } {
  const auto = Math.min(logicalCores(), MAX_WASM_THREADS);
  if (threads === 0) return { want: auto, capNote: "" };
  if (threads > MAX_WASM_THREADS) {
    return {
      want: MAX_WASM_THREADS,
      capNote: `capped at ${MAX_WASM_THREADS} (the build's pthread pool; asked ${threads})`,
    };
  }
  return { want: threads, capNote: "" };
}

async function startCpu(note: string): Promise<BackendInfo> {
  if (!(await tf.setBackend("cpu"))) throw new Error("backend cpu: tf.setBackend('cpu') failed");
  return { backend: "cpu", threads: 1, simd: false, note };
}

async function start(choice: BackendChoice, threads: number): Promise<BackendInfo> {
  switch (choice) {
    case "cpu":
      return await startCpu("");
    case "wasm": {
      const { want, capNote } = wasmThreads(threads);
      return wasmInfo(await startWasm(want), want, capNote, []);
    }
    case "webgpu": {
      const adapter = await startWebgpu();
      return { backend: "webgpu", threads: 0, simd: false, note: adapter };
    }
    case "tensorflow": {
      const installed = NATIVE_PACKAGES.filter((p) => findNativePackage(p) !== null);
      if (installed.length === 0) {
        throw new Error(
          `backend tensorflow: @tensorflow/tfjs-node is not installed under node_modules/. ` +
            `To use it, ${TFJS_NODE_INSTALL}. Or run with --backend=wasm.`,
        );
      }
      const errors: string[] = [];
      for (const pkg of installed) {
        try {
          const what = await startTfjsNode(pkg);
          return { backend: "tensorflow", threads: 0, simd: false, note: what };
        } catch (e) {
          errors.push(e instanceof Error ? e.message : String(e));
        }
      }
      throw new Error(`backend tensorflow: ${errors.join("; ")}. Or run with --backend=wasm.`);
    }
    case "auto": {
      const skipped: string[] = [];
      for (const pkg of NATIVE_PACKAGES) {
        if (findNativePackage(pkg) === null) continue;
        try {
          const what = await startTfjsNode(pkg);
          return { backend: "tensorflow", threads: 0, simd: false, note: what };
        } catch (e) {
          skipped.push(e instanceof Error ? e.message : String(e));
        }
      }
      const { want, capNote } = wasmThreads(threads);
      try {
        return wasmInfo(await startWasm(want), want, capNote, skipped);
      } catch (e) {
        skipped.push(e instanceof Error ? e.message : String(e));
      }
      return await startCpu(skipped.join("; "));
    }
  }
}

/**
 * Starts the backend named by `opts.backend` and prints one line about it unless `quiet`.
 *
 * Idempotent: calling again with the same backend and threads returns the same info without
 * printing; a different choice switches the global tf backend. The wasm thread count is fixed
 * by the first wasm start in a process.
 *
 * @throws if an explicitly named backend cannot start (`webgpu` without an adapter,
 * `tensorflow` without tfjs-node): the message names the backend and what to do.
 */
export function initBackend(opts: BackendOptions): Promise<BackendInfo> {
  const run = queue.then(async () => {
    const threads = validate(opts);
    const key = `${opts.backend}:${threads}`;
    if (
      current !== null && current.key === key && tf.engine().backendName === current.info.backend
    ) {
      return current.info;
    }
    tf.enableProdMode();
    const info = await start(opts.backend, threads);
    if (info.backend === "wasm") {
      installWasmKernels();
      setStepThreads(info.threads);
      withNativeMatmul(info, opts.blas ?? envBlas());
      withDnnl(info, opts.dnnl ?? envDnnl());
    }
    current = { key, requested: opts.backend, info };
    if (!opts.quiet) console.log(formatBackend(info));
    return info;
  });
  queue = run.catch(() => {});
  return run;
}

function envBlas(): string {
  try {
    return Deno.env.get("AMT_BLAS") || "auto";
  } catch {
    return "auto"; // no --allow-env
  }
}

function envDnnl(): string {
  try {
    return Deno.env.get("AMT_DNNL") || "auto";
  } catch {
    return "auto"; // no --allow-env
  }
}

function envFp32Gemm(): string | undefined {
  try {
    return Deno.env.get("AMT_FP32_GEMM");
  } catch {
    return undefined; // no --allow-env
  }
}

/** Loads oneDNN on top of the native matmul; records what bf16 has (or lacks) on `info`. */
function withDnnl(info: BackendInfo, choice: string): void {
  setDnnlFp32(fp32GemmFromEnv(envFp32Gemm()));
  if (!info.nativeMatmul) {
    info.bf16 = "no bf16: it needs the native matmul";
    info.bf16Available = false;
    return;
  }
  const d = loadDnnl(choice, info.threads);
  attachDnnl(d);
  if (typeof d === "string") {
    info.bf16 = `no bf16: ${d}`;
    info.bf16Available = false;
    return;
  }
  const cpu = cpuBf16();
  info.bf16Available = cpu.avx512bf16 || cpu.amxBf16;
  const threads = d.threads > 0 && d.threads !== info.threads ? `, ${d.threads} threads` : "";
  info.bf16 = info.bf16Available
    ? `${dnnlLabel(d)}${threads}`
    : `no bf16: the CPU lacks AVX512_BF16 and AMX-BF16 (oneDNN ${d.version} loaded${
      dnnlFp32() && d.batchedApi ? ", runs the fp32 products" : ""
    })`;
}

/** Loads a CBLAS for wasm's matMul if asked and available; records the outcome on `info`. */
function withNativeMatmul(info: BackendInfo, choice: string): void {
  const blas = loadBlas(choice, info.threads);
  if (typeof blas === "string") {
    info.matmul = blas;
    info.nativeMatmul = false;
    return;
  }
  installBlasMatMul(blas);
  const t = blas.threads === 1 ? "1 thread" : `${blas.threads} threads`;
  info.matmul = `${blas.label}${blas.threads > 0 ? `, ${t}` : ""}`;
  info.nativeMatmul = true;
}

/** The active backend and its environment, as plain JSON for logs and run folders. */
export function backendSummary(): BackendSummary {
  const info: BackendInfo = current?.info ??
    { backend: "none", threads: 0, simd: false, note: "initBackend() not called" };
  const w = wasmStarted();
  const summary: BackendSummary = {
    ...info,
    requested: current?.requested ?? "none",
    line: formatBackend(info),
    tfjs: tf.version.tfjs,
    deno: Deno.version.deno,
    v8: Deno.version.v8,
    os: Deno.build.os,
    arch: Deno.build.arch,
    logicalCores: logicalCores(),
    cpuBf16: cpuBf16().note,
    precision: matmulPrecision(),
  };
  const blas = blasLoaded();
  if (blas !== null) summary.blas = { path: blas.path, label: blas.label, active: blasActive() };
  const d = dnnlActive();
  if (d !== null) {
    const { path, version, runtime, threads, waitPolicy, isa } = d;
    summary.dnnl = { path, version, runtime, threads, waitPolicy, isa };
  }
  if (w !== null) {
    const stats = wasmThreadStats();
    summary.wasm = {
      dir: w.wasmDir,
      poolThreads: stats.poolThreads,
      pthreadsStarted: stats.started,
      workers: stats.workers,
    };
  }
  return summary;
}

/**
 * Resolves a precision choice and applies it to every matmul of this process (training,
 * saliency, feature extraction, evaluation): `auto` is bf16 where the CPU has AVX512_BF16 or AMX
 * and oneDNN serves wasm's native matmul, else fp32. Returns what was chosen and why, for the
 * start line and `run.json`.
 *
 * @throws {RangeError} for an explicit `bf16` that cannot run here, saying what is missing.
 */
export function usePrecision(choice: string): { precision: Precision; reason: string } {
  try {
    const r = resolvePrecision(choice as PrecisionChoice);
    setMatmulPrecision(r.precision);
    return r;
  } catch (e) {
    // a setting that cannot be honoured here: a RangeError, which tasks report in one line
    throw new RangeError((e as Error).message);
  }
}
