/**
 * The second thread of the in-place AdamW step (`_helper.ts`): a `node:worker_threads` worker
 * that instantiates `simd/adamw.wat` on tfjs-backend-wasm's shared heap and runs the half of a
 * step's chunks that the main thread offers it.
 *
 * Protocol (all through `ctl`, an Int32Array on a SharedArrayBuffer, see `_helper.ts`):
 * - the main thread writes a job into `job` (a Float64Array on a SharedArrayBuffer), then stores
 *   the job's number in `ctl[SEQ]` and `ctl[OFFER]` and wakes this worker;
 * - this worker takes the job by swapping `ctl[OFFER]` from the number to its negative. If the
 *   main thread withdrew it first (it finished its own half and found the offer untaken), the
 *   swap fails and the worker waits for the next job; the main thread does the whole job then;
 * - after its half it stores the number in `ctl[DONE]` and wakes the main thread.
 * The main thread writes no new job before the current one is withdrawn or done, so the job this
 * worker reads is the one it took. Plain JavaScript for the reason `_pthread_worker.js` gives.
 *
 * @module
 */

import { parentPort } from "node:worker_threads";

const SEQ = 0, OFFER = 1, DONE = 2, READY = 3;
// job layout (f64): [kind, first chunk, end chunk, k, b1, b2, eps, c1, c2, ...], chunk i at
// HEADER + 9 i: [p, g, m, v, n, lr, wd, result, bf16 copy (> 0 round, < 0 flush denormals)]
const HEADER = 16, CHUNK = 9;

if (parentPort === null) {
  throw new Error("_helper_worker.js must run in a node:worker_threads Worker");
}
const port = parentPort;

port.once(
  "message",
  (
    /** @type {{ memory: WebAssembly.Memory, modules: { adamw: WebAssembly.Module, bf16: WebAssembly.Module }, ctl: SharedArrayBuffer, job: SharedArrayBuffer }} */ msg,
  ) => {
    const env = { env: { memory: msg.memory } };
    const ex = new WebAssembly.Instance(msg.modules.adamw, env).exports;
    const bx = new WebAssembly.Instance(msg.modules.bf16, env).exports;
    const adamw = /** @type {(...a: number[]) => number} */ (ex.adamw);
    const sumsq = /** @type {(x: number, n: number) => number} */ (ex.sumsq);
    const toBf16 = /** @type {(src: number, dst: number, n: number) => void} */ (bx.f32_to_bf16);
    const toBf16Ftz = /** @type {(src: number, dst: number, n: number) => void} */ (
      bx.f32_to_bf16_ftz
    );
    const ctl = new Int32Array(msg.ctl), job = new Float64Array(msg.job);
    Atomics.store(ctl, READY, 1);
    Atomics.notify(ctl, READY);
    let seen = Atomics.load(ctl, SEQ);
    for (;;) {
      Atomics.wait(ctl, SEQ, seen);
      seen = Atomics.load(ctl, SEQ);
      if (Atomics.compareExchange(ctl, OFFER, seen, -seen) !== seen) continue;
      const kind = job[0], from = job[1], to = job[2];
      for (let i = from; i < to; i++) {
        const o = HEADER + CHUNK * i;
        job[o + 7] = kind === 1
          ? adamw(
            job[o],
            job[o + 1],
            job[o + 2],
            job[o + 3],
            job[o],
            job[o + 2],
            job[o + 3],
            job[o + 4],
            job[3],
            job[o + 5],
            job[4],
            job[5],
            job[6],
            job[o + 6],
            job[7],
            job[8],
          )
          : sumsq(job[o + 1], job[o + 4]);
        const bf = job[o + 8];
        if (kind === 1 && bf > 0) toBf16(job[o], bf, job[o + 4]);
        else if (kind === 1 && bf < 0) toBf16Ftz(job[o], -bf, job[o + 4]);
      }
      Atomics.store(ctl, DONE, seen);
      Atomics.notify(ctl, DONE);
    }
  },
);
