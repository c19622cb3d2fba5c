/**
 * Starts tfjs-backend-wasm 4.22.0: locates the `.wasm` binaries, turns on the threaded-SIMD
 * build when more than one thread is wanted, checks the threads really run, and otherwise
 * falls back to the single-threaded SIMD build with the reason recorded.
 *
 * @module
 */

import * as tf from "@tensorflow/tfjs";
import * as wasm from "@tensorflow/tfjs-backend-wasm";
import {
  liveWorkers,
  PTHREAD_POOL_SIZE,
  startedPthreads,
  terminateWorkers,
  threadsPossible,
  withDenoPthreads,
} from "./_wasm_threads.ts";

/** How long the threaded build may take to load its pthread workers before we give up. */
const THREADED_START_TIMEOUT_MS = 30_000;
/** How long to wait for XNNPACK's pool threads to report in after the backend started. */
const PTHREAD_REPORT_TIMEOUT_MS = 3_000;
const SIMD_BINARY = "tfjs-backend-wasm-simd.wasm";

/** What `startWasm` found. */
export interface WasmStart {
  threads: number;
  simd: boolean;
  /** Why fewer threads than asked for are used; "" when none. */
  fallback: string;
  /** Folder the `.wasm` binaries are read from, or "" for tfjs's default. */
  wasmDir: string;
}

let started: WasmStart | null = null;

/** The outcome of the first `startWasm` in this process, or null before it. */
export function wasmStarted(): WasmStart | null {
  return started;
}

/** Logical cores as Deno reports them (at least 1). */
export function logicalCores(): number {
  return Math.max(1, navigator.hardwareConcurrency || 1);
}

function exists(path: string): boolean {
  try {
    Deno.statSync(path);
    return true;
  } catch {
    return false;
  }
}

/**
 * Finds `node_modules/@tensorflow/tfjs-backend-wasm/dist/` independent of the working directory:
 * first through module resolution, then by walking up from this file.
 */
export function findWasmDir(): string {
  try {
    const entry = new URL(import.meta.resolve("@tensorflow/tfjs-backend-wasm"));
    if (entry.protocol === "file:") {
      const dir = new URL("./", entry).pathname;
      if (exists(dir + SIMD_BINARY)) return dir;
    }
  } catch {
    // Not resolvable as a file (e.g. a remote import); try the walk below.
  }
  let dir = new URL("./", import.meta.url);
  while (dir.protocol === "file:") {
    const cand = new URL("node_modules/@tensorflow/tfjs-backend-wasm/dist/", dir).pathname;
    if (exists(cand + SIMD_BINARY)) return cand;
    const parent = new URL("../", dir);
    if (parent.href === dir.href) break;
    dir = parent;
  }
  return "";
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Resolves to the value of `p`, or rejects with `message` after `ms`. Clears its timer. */
async function withTimeout<T>(p: Promise<T>, ms: number, message: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(message)), ms);
  });
  try {
    return await Promise.race([p, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

function errorText(e: unknown): string {
  if (e instanceof Error) return e.message;
  if (typeof e === "object" && e !== null && "message" in e) return String(e.message);
  return String(e);
}

/** Tries the threaded-SIMD build; returns the thread count in use or throws why not. */
async function startThreaded(want: number): Promise<number> {
  tf.env().set("WASM_HAS_MULTITHREAD_SUPPORT", true);
  wasm.setThreadsCount(want);
  // XNNPACK's pool uses the calling thread plus (want - 1) pthreads: start just those workers.
  const ok = await withDenoPthreads(
    want,
    (failure) =>
      withTimeout(
        Promise.race([tf.setBackend("wasm"), failure]),
        THREADED_START_TIMEOUT_MS,
        `pthread workers did not load within ${THREADED_START_TIMEOUT_MS / 1000} s`,
      ),
    want - 1,
  );
  if (!ok) throw new Error("tf.setBackend('wasm') returned false for the threaded build");
  const got = wasm.getThreadsCount();
  // XNNPACK's pool runs the caller plus (got - 1) pthreads; each bumps the counter on entry.
  const deadline = performance.now() + PTHREAD_REPORT_TIMEOUT_MS;
  while (startedPthreads() < got - 1 && performance.now() < deadline) await sleep(10);
  if (startedPthreads() < got - 1) {
    throw new Error(`only ${startedPthreads()} of ${got - 1} pool threads started`);
  }
  if (got < 2) throw new Error(`the XNNPACK pool reports ${got} thread(s)`);
  return got;
}

/** Puts the wasm backend back into a state where the single-threaded build can start. */
async function resetAfterThreadedFailure(): Promise<void> {
  tf.env().set("WASM_HAS_MULTITHREAD_SUPPORT", false);
  // Read the engine's tables directly: `tf.findBackend` would start a backend it lacks.
  const engine = tf.engine() as unknown as {
    registry: Record<string, unknown>;
    registryFactory: Record<string, { factory: () => tf.KernelBackend; priority: number }>;
  };
  const entry = engine.registryFactory.wasm;
  if ("wasm" in engine.registry && entry !== undefined) {
    // The threaded module started but its threads are not usable: drop that instance and
    // register the same factory again so the next setBackend builds a fresh module.
    tf.removeBackend("wasm");
    tf.registerBackend("wasm", entry.factory, entry.priority);
  }
  await terminateWorkers();
}

/**
 * Starts the wasm backend once per process with up to `want` threads (>= 1).
 * Later calls reuse the running module: the thread count is fixed once the module exists.
 */
export async function startWasm(want: number): Promise<WasmStart> {
  if (started !== null) {
    if (!(await tf.setBackend("wasm"))) throw new Error("backend wasm: tf.setBackend failed");
    return started;
  }
  const wasmDir = findWasmDir();
  if (wasmDir !== "") wasm.setWasmPaths(wasmDir);
  const simd = Boolean(await tf.env().getAsync("WASM_HAS_SIMD_SUPPORT"));

  let fallback = "";
  let threads = 1;
  if (want > 1) {
    const blocker = !simd
      ? "the threaded build needs wasm SIMD, which this runtime lacks"
      : threadsPossible();
    if (blocker !== null) {
      fallback = blocker;
    } else {
      try {
        threads = await startThreaded(want);
        if (threads < want) fallback = `XNNPACK pool gave ${threads} of ${want} threads`;
      } catch (e) {
        fallback = `threaded wasm failed (${errorText(e)})`;
        threads = 1;
        await resetAfterThreadedFailure();
      }
    }
  }
  if (threads === 1) {
    tf.env().set("WASM_HAS_MULTITHREAD_SUPPORT", false);
    wasm.setThreadsCount(1);
    let ok = false;
    try {
      ok = await tf.setBackend("wasm");
    } catch (e) {
      throw new Error(`backend wasm: failed to start (${errorText(e)}); try --backend=cpu`);
    }
    if (!ok) {
      throw new Error(
        `backend wasm: failed to start (binaries looked up in "${wasmDir || "tfjs default"}"); ` +
          "run `deno install` so node_modules/@tensorflow/tfjs-backend-wasm exists, or use " +
          "--backend=cpu",
      );
    }
  }
  started = { threads, simd, fallback, wasmDir };
  return started;
}

/** Thread bookkeeping for summaries and tests. */
export function wasmThreadStats(): { poolThreads: number; started: number; workers: number } {
  let poolThreads = 0;
  try {
    poolThreads = started === null ? 0 : wasm.getThreadsCount();
  } catch {
    poolThreads = 0;
  }
  return { poolThreads, started: startedPthreads(), workers: liveWorkers() };
}

/** Upper bound on wasm threads in this build (Emscripten's pre-spawned pool). */
export const MAX_WASM_THREADS = PTHREAD_POOL_SIZE;
