/**
 * A second thread for the in-place AdamW step (`fused.ts`, `adamWInPlace`): the step is a
 * memory-bound pass over every parameter, its gradient and both moments (about 90 MB for
 * vit-tiny-32's 3.1 M parameters), and one thread does it in about 3 ms; two share it.
 *
 * The helper is one `node:worker_threads` worker (`_helper_worker.js`, unref'd: it never ends
 * and must not keep the process alive) with `simd/adamw.wat` instantiated on tfjs-backend-wasm's
 * shared heap. A job is a list of chunks (a parameter's elements, at most {@link CHUNK_ELEMS} and a
 * multiple of 4 each); the main thread runs the first half by elements and offers the second. If
 * the helper has not taken its half when the main thread is done with its own (still starting, or
 * not woken yet), the main thread withdraws the offer and runs it too, so no job ever waits on
 * the helper's start-up. Each chunk writes its own sum of squares, and the caller adds them in
 * chunk order: which thread ran a chunk changes no bit of the result.
 *
 * @module
 */
import workerThreads from "node:worker_threads";

const SEQ = 0, OFFER = 1, DONE = 2, READY = 3;
const HEADER = 16, CHUNK = 9;
/** Largest chunk in elements (256 KiB of each of the four arrays). */
export const CHUNK_ELEMS = 1 << 16;
/** Chunks a job can hold; a larger job runs on the main thread alone. */
const MAX_CHUNKS = 8192;
/** How long the main thread waits for a half the helper took before it calls the helper dead. */
const TIMEOUT_MS = 30_000;

/**
 * One chunk: byte offsets in the heap, its element count (a multiple of 4), lr and decay, and
 * where the bf16 copy of the updated p goes (`bf` > 0: rounded as `f32_to_bf16`; < 0: at `-bf`,
 * denormals flushed as `f32_to_bf16_ftz`; 0: no copy).
 */
export interface Chunk {
  p: number;
  g: number;
  m: number;
  v: number;
  n: number;
  lr: number;
  wd: number;
  bf: number;
}

/** The step's scalars (see `adamw.wat`). */
export interface StepScalars {
  k: number;
  b1: number;
  b2: number;
  eps: number;
  c1: number;
  c2: number;
}

/** The SIMD exports the main thread runs its half with (`adamw.wat` and `bf16.wat`). */
export interface StepExports {
  adamw: (...a: number[]) => number;
  sumsq: (x: number, n: number) => number;
  f32_to_bf16: (src: number, dst: number, n: number) => void;
  f32_to_bf16_ftz: (src: number, dst: number, n: number) => void;
}

/** The compiled modules a helper instantiates on the heap. */
export interface StepModules {
  adamw: WebAssembly.Module;
  bf16: WebAssembly.Module;
}

/** Chunk `c` of a job of `kind` on this thread: its sum of squares. */
function runOne(kind: 1 | 2, c: Chunk, s: StepScalars, ex: StepExports): number {
  if (kind === 2) return ex.sumsq(c.g, c.n);
  const sq = ex.adamw(
    c.p,
    c.g,
    c.m,
    c.v,
    c.p,
    c.m,
    c.v,
    c.n,
    s.k,
    c.lr,
    s.b1,
    s.b2,
    s.eps,
    c.wd,
    s.c1,
    s.c2,
  );
  if (c.bf > 0) ex.f32_to_bf16(c.p, c.bf, c.n);
  else if (c.bf < 0) ex.f32_to_bf16_ftz(c.p, -c.bf, c.n);
  return sq;
}

const WORKER_SCRIPT = new URL("./_helper_worker.js", import.meta.url);

let wanted = 1;
/** Helpers by heap (a restarted wasm backend has a new heap and gets a new helper). */
const helpers = new WeakMap<WebAssembly.Memory, Helper | null>();
const counts = { jobs: 0, helped: 0 };

/** Threads for the step (the wasm backend's count; 1: no helper). Set by `initBackend`. */
export function setStepThreads(n: number): void {
  wanted = n;
}

let waitForTake = false;

/**
 * Tests only: the main thread waits (up to 10 s) for the helper to take each offer before it
 * starts its own half, so the two-thread path runs whatever the machine's load.
 */
export function setWaitForHelper(on: boolean): void {
  waitForTake = on;
}

/** Jobs offered to the helper, and jobs whose second half it ran (tests check both paths). */
export function stepThreadStats(): Readonly<typeof counts> {
  return { ...counts };
}

class Helper {
  readonly ctl = new Int32Array(new SharedArrayBuffer(16));
  readonly job = new Float64Array(new SharedArrayBuffer(8 * (HEADER + CHUNK * MAX_CHUNKS)));
  #seq = 0;
  #dead = false;

  constructor(memory: WebAssembly.Memory, modules: StepModules) {
    const w = new workerThreads.Worker(WORKER_SCRIPT);
    w.on("error", () => this.#dead = true);
    w.on("exit", () => this.#dead = true);
    w.postMessage({ memory, modules, ctl: this.ctl.buffer, job: this.job.buffer });
    w.unref();
  }

  /** Whether the helper has started (until then the main thread runs every job alone). */
  get ready(): boolean {
    return !this.#dead && Atomics.load(this.ctl, READY) === 1;
  }

  /**
   * Runs `kind` (1: the AdamW update, 2: the sum of squares) over `chunks`, writing each chunk's
   * sum of squares into `out`.
   */
  run(kind: 1 | 2, chunks: readonly Chunk[], s: StepScalars, ex: StepExports, out: Float64Array) {
    const job = this.job, n = chunks.length;
    let total = 0;
    for (const c of chunks) total += c.n;
    let split = 0;
    for (let half = 0; split < n && half + chunks[split].n <= total / 2; split++) {
      half += chunks[split].n;
    }
    job.set([kind, split, n, s.k, s.b1, s.b2, s.eps, s.c1, s.c2]);
    chunks.forEach((c, i) =>
      job.set([c.p, c.g, c.m, c.v, c.n, c.lr, c.wd, 0, c.bf], HEADER + CHUNK * i)
    );
    const seq = ++this.#seq;
    Atomics.store(this.ctl, OFFER, seq);
    Atomics.store(this.ctl, SEQ, seq);
    Atomics.notify(this.ctl, SEQ, 1);
    const one = (c: Chunk) => runOne(kind, c, s, ex);
    if (waitForTake) {
      const until = performance.now() + 10_000;
      while (Atomics.load(this.ctl, OFFER) === seq && performance.now() < until) {
        Atomics.wait(this.ctl, OFFER, seq, 1);
      }
    }
    for (let i = 0; i < split; i++) out[i] = one(chunks[i]);
    counts.jobs++;
    if (Atomics.compareExchange(this.ctl, OFFER, seq, 0) === seq) {
      for (let i = split; i < n; i++) out[i] = one(chunks[i]); // withdrawn: not taken in time
      return;
    }
    for (let d = Atomics.load(this.ctl, DONE); d !== seq; d = Atomics.load(this.ctl, DONE)) {
      if (Atomics.wait(this.ctl, DONE, d, TIMEOUT_MS) === "timed-out") {
        this.#dead = true;
        throw new Error(
          `AdamW helper thread took its half of the step and did not finish in ${TIMEOUT_MS} ms; ` +
            "the parameters may be half-updated: resume from the last checkpoint",
        );
      }
    }
    counts.helped++;
    for (let i = split; i < n; i++) out[i] = job[HEADER + CHUNK * i + 7];
  }
}

/**
 * Runs a step's chunks on two threads where a helper can run (wasm threads >= 2, a shared heap,
 * not more than {@link MAX_CHUNKS} chunks), else on this one; `out[i]` gets chunk i's sum of
 * squares either way.
 */
export function runChunks(
  kind: 1 | 2,
  chunks: readonly Chunk[],
  s: StepScalars,
  ex: StepExports,
  memory: WebAssembly.Memory,
  modules: StepModules,
  out: Float64Array,
): void {
  let h = helpers.get(memory);
  if (h === undefined && wanted >= 2 && memory.buffer instanceof SharedArrayBuffer) {
    try {
      h = new Helper(memory, modules);
    } catch {
      h = null; // no worker: the main thread does it all
    }
    helpers.set(memory, h);
  }
  if (h && wanted >= 2 && h.ready && chunks.length <= MAX_CHUNKS) {
    return h.run(kind, chunks, s, ex, out);
  }
  chunks.forEach((c, i) => out[i] = runOne(kind, c, s, ex));
}
