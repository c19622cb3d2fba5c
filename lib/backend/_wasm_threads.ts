/**
 * Multithreading for tfjs-backend-wasm 4.22.0 under Deno.
 *
 * What tfjs-backend-wasm does (dist/tf-backend-wasm.node.js, the entry Deno loads):
 * - flag `WASM_HAS_MULTITHREAD_SUPPORT` returns false whenever tfjs's `IS_NODE` is true, and
 *   Deno looks like Node (`process.versions.node` is set). The flag can be overridden with
 *   `tf.env().set(...)` before `tf.setBackend("wasm")`; with SIMD also on, `init()` then picks
 *   the threaded-SIMD Emscripten factory.
 * - that factory, seeing Node, sets `globalThis.Worker = require("worker_threads").Worker` and
 *   spawns a pool of 8 pthread workers from `locateFile("...threaded-simd.worker.js")`, which
 *   tfjs answers with a `blob:` URL. Deno's `worker_threads.Worker` rejects `blob:` URLs
 *   (ERR_WORKER_PATH), and the worker script inside the blob needs CommonJS `require`.
 * - `setThreadsCount(n)` goes to the C++ `init_with_threads_count(n)`, which creates XNNPACK's
 *   pthreadpool with `min(max(n, 1), 8, cores)` threads, where `cores` is
 *   `emscripten_num_logical_cores() / 2` computed once at module start-up (the halving assumes
 *   two hyperthreads per core). In Node mode the logical core count is `os.cpus().length`, so on
 *   a 2-vCPU machine the pool is capped at 1 thread whatever `n` is. `getThreadsCount()` reports
 *   the pool size actually created.
 *
 * The fix here, only for the duration of `tf.setBackend("wasm")`:
 * - swap `Worker` on the (shared, mutable) `node:worker_threads` module object for a subclass
 *   that ignores the blob URL and starts `_pthread_worker.js`, a Deno-ready implementation of
 *   the same pthread protocol;
 * - make `os.cpus()` report `2 * threads` entries so the C++ cap lets the requested count
 *   through (the caller picks `threads`; nothing else reads the core count during start-up).
 * Both swaps are undone afterwards, and `globalThis.Worker` (which the factory overwrote with
 * the worker_threads class) is restored.
 * Each pthread bumps a shared counter when it starts, so callers can check threads are real.
 *
 * @module
 */

import os from "node:os";
import workerThreads from "node:worker_threads";

/** Emscripten's pthread pool size in this build; more threads than this would need new workers. */
export const PTHREAD_POOL_SIZE = 8;

const WORKER_SCRIPT = new URL("./_pthread_worker.js", import.meta.url);

/** Live pthread workers started by this module, so a failed start can be cleaned up. */
const spawned: Set<InstanceType<typeof workerThreads.Worker>> = new Set();
/** [0]: pthreads that entered their start routine. Shared with every worker. */
const startedCounter = new Int32Array(new SharedArrayBuffer(4));

/** Whether the worker script is a local file that `node:worker_threads` can start. */
export function threadsPossible(): string | null {
  if (WORKER_SCRIPT.protocol !== "file:") {
    return `pthread worker script is not a local file (${WORKER_SCRIPT.protocol})`;
  }
  if (typeof SharedArrayBuffer === "undefined") return "SharedArrayBuffer is unavailable";
  return null;
}

/** Number of pthreads that have started running since this process began. */
export function startedPthreads(): number {
  return Atomics.load(startedCounter, 0);
}

/** Number of pthread workers alive. */
export function liveWorkers(): number {
  return spawned.size;
}

/** Terminates every pthread worker this module started (used after a failed start). */
export async function terminateWorkers(): Promise<void> {
  const all = [...spawned];
  spawned.clear();
  await Promise.allSettled(all.map((w) => w.terminate()));
}

/**
 * Runs `start` (which must call `tf.setBackend("wasm")` and return its result) with
 * Deno-compatible pthread workers and a core count that admits `threads` patched in, then
 * undoes the patches.
 *
 * `start` receives a promise that rejects when a pthread worker reports an error while `start`
 * runs (Emscripten would rethrow it from an event handler and crash the process); race it.
 */
export async function withDenoPthreads(
  threads: number,
  start: (failure: Promise<never>) => Promise<boolean>,
): Promise<boolean> {
  const NodeWorker = workerThreads.Worker;
  const realCpus = os.cpus;
  const savedGlobalWorker = Object.getOwnPropertyDescriptor(globalThis, "Worker");
  // Worker errors are ours to handle until the start succeeded; after a failed start the
  // remaining workers are being terminated and their errors are expected.
  let phase: "starting" | "failed" | "running" = "starting";
  let reject: (e: unknown) => void = () => {};
  const failure = new Promise<never>((_, rej) => {
    reject = rej;
  });
  failure.catch(() => {}); // observed by `start`; avoid an unhandled rejection if it is not
  const fail = (e: unknown) => {
    if (phase !== "starting") return;
    phase = "failed";
    reject(e instanceof Error ? e : new Error(String(e)));
  };

  class PthreadWorker extends NodeWorker {
    constructor(url: string | URL) {
      try {
        super(WORKER_SCRIPT, { workerData: { started: startedCounter } });
      } catch (e) {
        // tfjs would swallow this into "init failed"; keep the reason.
        fail(e);
        throw e;
      }
      // tfjs makes one blob URL per worker for its own script; we do not use it.
      if (typeof url === "string" && url.startsWith("blob:")) URL.revokeObjectURL(url);
      spawned.add(this);
      this.once("exit", () => spawned.delete(this));
      this.unref();
    }
    /** Emscripten refs a worker while it runs a pthread; XNNPACK's pool threads run forever,
     * so honouring that would keep the process alive after the script ends. */
    override ref(): void {}
    override emit(event: string | symbol, ...args: unknown[]): boolean {
      if (event === "error" && phase !== "running") {
        fail(args[0]);
        return true;
      }
      return super.emit(event, ...args);
    }
  }
  // `worker_threads` is the same object the CommonJS bundle gets from `require`.
  (workerThreads as { Worker: unknown }).Worker = PthreadWorker;
  // C++ caps the pool at logical cores / 2; report enough cores for `threads` to pass.
  const cpus = realCpus.call(os);
  const fakeCount = Math.max(cpus.length, 2 * threads);
  os.cpus = () => Array.from({ length: fakeCount }, (_, i) => cpus[i % Math.max(cpus.length, 1)]);
  try {
    const ok = await start(failure);
    if (phase === "starting") phase = ok ? "running" : "failed";
    return ok;
  } catch (e) {
    phase = "failed";
    throw e;
  } finally {
    (workerThreads as { Worker: unknown }).Worker = NodeWorker;
    os.cpus = realCpus;
    if (savedGlobalWorker !== undefined) {
      Object.defineProperty(globalThis, "Worker", savedGlobalWorker);
    }
  }
}
