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
 * - swap `Worker` on the (shared, mutable) `node:worker_threads` module object for
 *   `PthreadWorker`, which ignores the blob URL and runs `_pthread_worker.js`, a Deno-ready
 *   implementation of the same pthread protocol, in a real `worker_threads` worker;
 * - only the pool slots XNNPACK will use get a real worker up front (Emscripten pops the pool
 *   from the end, so the last `threads - 1` built); the other slots answer `load` themselves
 *   and start a worker only if ever handed a pthread. Eight idle V8 isolates would cost about
 *   90 MB and a second or two of start-up for nothing;
 * - make `os.cpus()` report `2 * threads` entries so the C++ cap lets the requested count
 *   through (the caller picks `threads`; nothing else reads the core count during start-up).
 * Both swaps are undone afterwards, and `globalThis.Worker` (which the factory overwrote with
 * the patched class) is restored. Each pthread bumps a shared counter when it starts, so
 * callers can check that the threads are real. Workers are `unref`'d: the pool threads never
 * end, and must not keep the process alive.
 *
 * @module
 */

import { EventEmitter } from "node:events";
import os from "node:os";
import workerThreads from "node:worker_threads";

/** Emscripten's pthread pool size in this build; more threads than this would need new workers. */
export const PTHREAD_POOL_SIZE = 8;

const WORKER_SCRIPT = new URL("./_pthread_worker.js", import.meta.url);

/** A started `node:worker_threads` worker. */
type NodeWorker = InstanceType<typeof workerThreads.Worker>;

/** Live pthread workers started by this module, so a failed start can be cleaned up. */
const spawned: Set<NodeWorker> = new Set();
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
 *
 * `eager`: how many of the pool's workers start a real thread at once; the rest answer `load`
 * themselves and only start a thread if Emscripten ever hands them a pthread.
 */
export async function withDenoPthreads(
  threads: number,
  start: (failure: Promise<never>) => Promise<boolean>,
  eager = PTHREAD_POOL_SIZE,
): Promise<boolean> {
  const RealWorker = workerThreads.Worker;
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
  let constructed = 0;

  /**
   * What Emscripten's Node-mode runtime sees as a `worker_threads.Worker`: `on`, `postMessage`,
   * `ref`/`unref`, `terminate`. Backed by a real worker running `_pthread_worker.js`, started
   * at construction (eager) or at the first message after `load` (lazy).
   */
  class PthreadWorker extends EventEmitter {
    #real: NodeWorker | null = null;
    #load: { msg: unknown; transfer?: Transferable[] } | null = null;
    /** The real worker's own "loaded" reply, when we already answered for it. */
    #dropLoaded = false;

    constructor(url?: string | URL) {
      super();
      // tfjs makes one blob URL per worker for its own script; we do not use it.
      if (typeof url === "string" && url.startsWith("blob:")) URL.revokeObjectURL(url);
      // Emscripten pops pool workers from the end, so the last ones built are used first.
      if (constructed++ >= PTHREAD_POOL_SIZE - eager) this.#spawn();
    }

    #spawn(): NodeWorker {
      if (this.#real !== null) return this.#real;
      let w: NodeWorker;
      try {
        w = new RealWorker(WORKER_SCRIPT, { workerData: { started: startedCounter } });
      } catch (e) {
        fail(e); // tfjs would swallow this into "init failed"; keep the reason
        throw e;
      }
      this.#real = w;
      spawned.add(w);
      w.once("exit", () => spawned.delete(w));
      // XNNPACK's pool threads never finish; they must not keep the process alive.
      w.unref();
      w.on("message", (data: { cmd?: string }) => {
        if (this.#dropLoaded && data?.cmd === "loaded") {
          this.#dropLoaded = false;
          return;
        }
        this.emit("message", data);
      });
      w.on("error", (e: unknown) => this.emit("error", e));
      if (this.#load !== null) {
        this.#dropLoaded = true;
        w.postMessage(this.#load.msg, this.#load.transfer as never);
      }
      return w;
    }

    postMessage(msg: { cmd?: string }, transfer?: Transferable[]): void {
      if (this.#real === null && msg?.cmd === "load") {
        // Keep the module for later and report "loaded" the way a worker would (async).
        this.#load = { msg, transfer };
        setTimeout(() => this.emit("message", { cmd: "loaded" }), 0);
        return;
      }
      this.#spawn().postMessage(msg, transfer as never);
    }

    /** Emscripten refs a worker while it runs a pthread; pool threads run forever, so no. */
    ref(): void {}
    unref(): void {}

    async terminate(): Promise<number> {
      const w = this.#real;
      this.#real = null;
      return w === null ? 0 : await w.terminate();
    }

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
    (workerThreads as { Worker: unknown }).Worker = RealWorker;
    os.cpus = realCpus;
    if (savedGlobalWorker !== undefined) {
      Object.defineProperty(globalThis, "Worker", savedGlobalWorker);
    }
  }
}
