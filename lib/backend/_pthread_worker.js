/**
 * Pthread worker for the threaded-SIMD build of tfjs-backend-wasm 4.22.0, run under Deno.
 *
 * tfjs-backend-wasm ships an Emscripten pthread worker written for browsers and for Node's
 * `worker_threads` with CommonJS `require`. Neither variant runs in a Deno `node:worker_threads`
 * worker (the worker is an ES module, the main script arrives as a Blob, `importScripts` does
 * not exist). This file speaks the same message protocol (`load` / `run` / `cancel` /
 * `processProxyingQueue`) that the Emscripten runtime in the main thread expects, and evaluates
 * the module factory in browser-worker mode: `process` is shadowed so the factory does not take
 * its Node branch, which would need the bundle's private `require` handles.
 *
 * Spawned only by `_wasm_threads.ts`; the protocol is pinned to tfjs-backend-wasm 4.22.0
 * (Emscripten 3.1.x). Plain JavaScript on purpose: `deno test` type-checks every worker module
 * it starts, which for eight pool workers costs seconds and prints eight "Check" lines. `workerData.started` is a shared counter this worker increments when its
 * pthread entry point starts, so the main thread can check that threads really run.
 *
 * @module
 */

import { parentPort, workerData } from "node:worker_threads";

/**
 * The Emscripten module object (all members dynamic).
 * @typedef {Record<string, any>} EmModule
 */

/**
 * A message the Emscripten main-thread runtime sends to a pthread worker.
 * @typedef {{
 *   cmd?: string, target?: string, handlers?: string[], urlOrBlob?: string | Blob,
 *   wasmMemory?: WebAssembly.Memory, wasmModule?: WebAssembly.Module, pthread_ptr?: number,
 *   start_routine?: number, arg?: number, queue?: number
 * }} PthreadMessage
 */

if (parentPort === null) {
  throw new Error("_pthread_worker.js must run inside a node:worker_threads Worker");
}
const port = parentPort;
/** @type {Int32Array | undefined} */
const started = workerData?.started;

/** @type {(msg: unknown, transfer?: Transferable[]) => void} */
const send = (msg, transfer) => port.postMessage(msg, transfer);

/** @type {EmModule} */
let mod = {};
/** True once this worker ran its first pthread; proxied work before that must wait. */
let jsReady = false;
/** @type {number[]} */
let queuedProxying = [];
/** Messages that arrive while the module source is still being read. @type {PthreadMessage[] | null} */
let backlog = null;

/**
 * Reads the module factory source that the main thread passes as a Blob or a URL.
 * @param {string | Blob} urlOrBlob
 * @returns {Promise<string>}
 */
async function readFactorySource(urlOrBlob) {
  if (typeof urlOrBlob !== "string") return await urlOrBlob.text();
  const res = await fetch(urlOrBlob);
  return await res.text();
}

/**
 * Instantiates the shared wasm module in this worker (Emscripten's `load` command).
 * @param {PthreadMessage} msg
 */
async function load(msg) {
  /** @type {EmModule} */
  const m = {};
  m.wasmModule = msg.wasmModule;
  for (const name of msg.handlers ?? []) {
    m[name] = (...args) => send({ cmd: "callHandler", handler: name, args });
  }
  m.wasmMemory = msg.wasmMemory;
  m.buffer = msg.wasmMemory?.buffer;
  m.ENVIRONMENT_IS_PTHREAD = true;
  // Instantiate synchronously from the compiled module the main thread shared with us.
  /** @type {(info: WebAssembly.Imports, receive: (i: WebAssembly.Instance) => void) => unknown} */
  m.instantiateWasm = (info, receive) => {
    const instance = new WebAssembly.Instance(m.wasmModule, info);
    receive(instance);
    m.wasmModule = null;
    return instance.exports;
  };
  mod = m;

  const source = await readFactorySource(msg.urlOrBlob ?? "");
  const fakeSelf = {
    location: { href: import.meta.url },
    alert: (/** @type {string} */ text) => console.error(text),
  };
  const startWorker = (/** @type {EmModule} */ instance) => {
    mod = instance;
    send({ cmd: "loaded" });
  };
  const importScripts = () => {
    throw new Error("importScripts is not available in the Deno pthread worker");
  };
  // The source is `var WasmBackendModuleThreadedSimd = function (Module) {...}`. Parameters
  // shadow the globals the factory probes: `process` undefined means "not Node", a function
  // named importScripts means "a worker".
  const factory = new Function(
    "process",
    "self",
    "importScripts",
    "postMessage",
    "startWorker",
    `${source}\nreturn WasmBackendModuleThreadedSimd;`,
  )(undefined, fakeSelf, importScripts, send, startWorker);
  factory(m);
}

/**
 * Runs one pthread start routine; returns only when the thread exits.
 * @param {PthreadMessage} msg
 */
function run(msg) {
  mod.__emscripten_thread_init(msg.pthread_ptr, 0, 0, 1);
  mod.establishStackSpace();
  mod.PThread.receiveObjectTransfer(msg);
  mod.PThread.threadInitTLS();
  if (!jsReady) {
    for (const q of queuedProxying) mod.executeNotifiedProxyingQueue(q);
    queuedProxying = [];
    jsReady = true;
  }
  if (started !== undefined) Atomics.add(started, 0, 1);
  try {
    mod.invokeEntryPoint(msg.start_routine, msg.arg);
  } catch (ex) {
    if (ex === "unwind") return;
    if (ex instanceof mod.ExitStatus) {
      if (!mod.keepRuntimeAlive()) mod.__emscripten_thread_exit(ex.status);
      return;
    }
    throw ex;
  }
}

/** @param {PthreadMessage} msg */
function dispatch(msg) {
  try {
    switch (msg.cmd) {
      case "run":
        run(msg);
        return;
      case "cancel":
        if (mod._pthread_self()) mod.__emscripten_thread_exit(-1);
        return;
      case "processProxyingQueue":
        if (jsReady) mod.executeNotifiedProxyingQueue(msg.queue);
        else queuedProxying.push(msg.queue ?? 0);
        return;
      default:
        if (msg.target === "setimmediate") return;
        console.error(`pthread worker: unknown command ${String(msg.cmd)}`);
    }
  } catch (ex) {
    mod.__emscripten_thread_crashed?.();
    throw ex;
  }
}

port.on("message", (/** @type {PthreadMessage} */ msg) => {
  if (backlog !== null) {
    backlog.push(msg);
    return;
  }
  if (msg.cmd !== "load") {
    dispatch(msg);
    return;
  }
  backlog = [];
  load(msg).then(() => {
    const pending = backlog ?? [];
    backlog = null;
    for (const m of pending) dispatch(m);
  }).catch((ex) => {
    mod.__emscripten_thread_crashed?.();
    throw ex;
  });
});
