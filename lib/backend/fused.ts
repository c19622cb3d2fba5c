/**
 * Fused kernels for the cpu and wasm backends: LayerNorm, exact GELU, an AdamW update and a
 * sum of squares over many tensors, each one kernel (forward and backward) where tfjs's
 * composite ops launch 5 to 30. On wasm a kernel launch costs tens of microseconds of
 * bookkeeping and a heap allocation, so a ViT-Tiny training step spent more time launching
 * element-wise kernels than multiplying matrices.
 *
 * The kernels are plain loops over `Float32Array`s: the tensor's own memory (the wasm heap or
 * the cpu backend's arrays), read and written in place, no copies. On other backends (webgpu,
 * tensorflow) {@link fusedAvailable} is false and callers keep the composite ops, which the
 * tests compare against.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { heapMemory, isWasmBackend } from "./_wasm_types.ts";
import { simdExports, simdModule } from "./_simd.ts";
import { type Chunk, CHUNK_ELEMS, runChunks, type StepExports } from "./_helper.ts";
import {
  bf16Bits,
  bf16BitsFtz,
  cachedBf16Copy,
  countBf16Refresh,
  forgetBf16Copies,
} from "./_bf16.ts";
import { WASM_BASE64 as BF16_WASM } from "./simd/bf16_wasm.ts";
import { countNative, heapAt, nativeEltwise, SOFTMAX_NATIVE_MIN } from "./_native_eltwise.ts";
import { WASM_BASE64 as GELU_WASM } from "./simd/gelu_wasm.ts";
import { WASM_BASE64 as LAYERNORM_WASM } from "./simd/layernorm_wasm.ts";
import { WASM_BASE64 as ADAMW_WASM } from "./simd/adamw_wasm.ts";

export { setSimdEnabled } from "./_simd.ts";

export const LN_FWD = "AmtLayerNormFwd";
export const LN_BWD = "AmtLayerNormBwd";
export const GELU_FWD = "AmtGeluFwd";
export const GELU_BWD = "AmtGeluBwd";
export const GELU_FWD_NATIVE = "AmtGeluFwdNative";
export const GELU_BWD_NATIVE = "AmtGeluBwdNative";
const ADAMW = "AmtAdamW";
const SUM_SQ = "AmtSumSquares";
const COL_SUM = "AmtColumnSum";
export const SPLIT_HEADS = "AmtSplitHeads";
export const SOFTMAX_FWD = "AmtSoftmax";
export const SOFTMAX_BWD = "AmtSoftmaxBwd";
export const MERGE_HEADS = "AmtMergeHeads";

const BACKENDS = ["cpu", "wasm"] as const;

type KArgs = Parameters<tf.KernelFunc>[0];

interface CpuLike {
  readSync(dataId: unknown): unknown;
  makeTensorInfo(shape: number[], dtype: string, values: Float32Array): tf.TensorInfo;
}

/**
 * Kernel I/O on either backend. Outputs are allocated first and only then are the views
 * taken: an allocation can grow (and on non-shared memory detach) the wasm heap.
 */
function io(backend: unknown, inputs: tf.TensorInfo[], outShapes: number[][]) {
  for (const t of inputs) {
    if (t.dtype !== "float32") throw new TypeError(`fused kernel: float32 only, got ${t.dtype}`);
  }
  if (isWasmBackend(backend)) {
    const outs = outShapes.map((s) => backend.makeOutput(s, "float32"));
    const view = (t: tf.TensorInfo) => backend.typedArrayFromHeap(t) as Float32Array;
    return { ins: inputs.map(view), outs: outs.map(view), infos: outs };
  }
  const be = backend as CpuLike;
  const outs = outShapes.map((s) => new Float32Array(s.reduce((a, b) => a * b, 1)));
  return {
    ins: inputs.map((t) => be.readSync(t.dataId) as Float32Array),
    outs,
    infos: outs.map((o, i) => be.makeTensorInfo(outShapes[i], "float32", o)),
  };
}

// Abramowitz & Stegun 7.1.26 (|error| < 1.5e-7), the approximation tfjs's own Erf uses.
const P = 0.3275911, A1 = 0.254829592, A2 = -0.284496736, A3 = 1.421413741, A4 = -1.453152027;
const A5 = 1.061405429;
/** 2^-k for k = 0..63. */
const POW2_NEG = Float64Array.from({ length: 64 }, (_, k) => Math.pow(2, -k));
/**
 * e^-y for y >= 0 to ~1e-9 relative (Math.exp is several times slower in these loops):
 * y = k ln2 + r with r in [0, ln2), 2^-k from a table, e^-r by its Taylor series to degree 10.
 */
function expNeg(y: number): number {
  if (!(y < 43)) return y >= 43 ? 0 : NaN; // e^-43 < 3e-19: below anything fp32 adds up
  const k = Math.floor(y * Math.LOG2E);
  const r = y - k * Math.LN2;
  const e = 1 - r * (1 - r * (1 / 2 - r * (1 / 6 - r * (1 / 24 - r * (1 / 120 - r * (1 / 720 -
                            r * (1 / 5040 - r * (1 / 40320 - r * (1 / 362880 - r / 3628800)))))))));
  return e * POW2_NEG[k];
}
const INV_SQRT_2PI = 1 / Math.sqrt(2 * Math.PI);

/** `simd/layernorm.wat` on one memory. */
interface SimdLayerNorm {
  ln_fwd: (...a: number[]) => void;
  ln_bwd: (...a: number[]) => void;
}
const loadSimdLayerNorm = (memory: WebAssembly.Memory) =>
  simdExports("layernorm", LAYERNORM_WASM, memory) as SimdLayerNorm | null;

/** The wasm heap when every array lies in it (then SIMD kernels can work in place), else null. */
function heapOf(backend: unknown, arrays: Float32Array[]): WebAssembly.Memory | null {
  const heap = isWasmBackend(backend) ? heapMemory(backend) : undefined;
  if (heap === undefined) return null;
  return arrays.every((a) => a.buffer === heap.buffer) ? heap : null;
}

function layerNormFwd(args: KArgs): tf.TensorInfo[] {
  const { x, gamma, beta } = args.inputs as Record<string, tf.TensorInfo>;
  const eps = (args.attrs as { eps: number }).eps;
  const D = x.shape[x.shape.length - 1], R = tf.util.sizeFromShape(x.shape) / D;
  const { ins: [xs, g, b], outs: [y, mean, rstd], infos } = io(args.backend, [x, gamma, beta], [
    x.shape,
    [R],
    [R],
  ]);
  const heap = D % 4 === 0 ? heapOf(args.backend, [xs, g, b, y, mean, rstd]) : null;
  const simd = heap && loadSimdLayerNorm(heap);
  if (simd) {
    simd.ln_fwd(
      xs.byteOffset,
      y.byteOffset,
      g.byteOffset,
      b.byteOffset,
      mean.byteOffset,
      rstd.byteOffset,
      R,
      D,
      eps,
    );
    return infos;
  }
  for (let r = 0, o = 0; r < R; r++, o += D) {
    let s = 0;
    for (let j = 0; j < D; j++) s += xs[o + j];
    const mu = s / D;
    let v = 0;
    for (let j = 0; j < D; j++) {
      const c = xs[o + j] - mu;
      v += c * c;
    }
    const rs = 1 / Math.sqrt(v / D + eps);
    for (let j = 0; j < D; j++) y[o + j] = (xs[o + j] - mu) * rs * g[j] + b[j];
    mean[r] = mu;
    rstd[r] = rs;
  }
  return infos;
}

function layerNormBwd(args: KArgs): tf.TensorInfo[] {
  const { dy, x, gamma, mean, rstd } = args.inputs as Record<string, tf.TensorInfo>;
  const D = x.shape[x.shape.length - 1], R = tf.util.sizeFromShape(x.shape) / D;
  const { ins: [dys, xs, g, mu, rs], outs: [dx, dg, db], infos } = io(
    args.backend,
    [dy, x, gamma, mean, rstd],
    [x.shape, [D], [D]],
  );
  const heap = D % 4 === 0 ? heapOf(args.backend, [dys, xs, g, mu, rs, dx, dg, db]) : null;
  const simd = heap && loadSimdLayerNorm(heap);
  if (simd) {
    simd.ln_bwd(
      dys.byteOffset,
      xs.byteOffset,
      g.byteOffset,
      mu.byteOffset,
      rs.byteOffset,
      dx.byteOffset,
      dg.byteOffset,
      db.byteOffset,
      R,
      D,
    );
    return infos;
  }
  dg.fill(0);
  db.fill(0);
  for (let r = 0, o = 0; r < R; r++, o += D) {
    const m = mu[r], s = rs[r];
    // dx = s * (g dy - mean(g dy) - xhat * mean(g dy xhat))
    let a = 0, c = 0;
    for (let j = 0; j < D; j++) {
      const xh = (xs[o + j] - m) * s, gd = g[j] * dys[o + j];
      a += gd;
      c += gd * xh;
      dg[j] += dys[o + j] * xh;
      db[j] += dys[o + j];
    }
    a /= D;
    c /= D;
    for (let j = 0; j < D; j++) {
      const xh = (xs[o + j] - m) * s;
      dx[o + j] = s * (g[j] * dys[o + j] - a - xh * c);
    }
  }
  return infos;
}

/** The SIMD GELU (`simd/gelu.wat`), bound to one memory. */
interface SimdGelu {
  memory: WebAssembly.Memory;
  gelu: (x: number, y: number, d: number, n: number) => void;
}
/** Elements per call on the copy path (cpu backend): 3 buffers of 16K floats = 192 KiB. */
const SIMD_CHUNK = 16384;
let scratchMemory: WebAssembly.Memory | null = null;

/**
 * The SIMD GELU working in `memory` (in place in the wasm backend's heap), or in a small memory
 * of its own when none is given (the copy path); null when SIMD is unavailable or off.
 */
export function loadSimdGelu(memory?: WebAssembly.Memory): SimdGelu | null {
  if (memory === undefined) {
    const pages = Math.ceil(3 * SIMD_CHUNK * 4 / 65536);
    scratchMemory ??= new WebAssembly.Memory({ initial: pages, maximum: pages, shared: true });
    memory = scratchMemory;
  }
  const ex = simdExports("gelu", GELU_WASM, memory);
  return ex ? { memory, gelu: ex.gelu as SimdGelu["gelu"] } : null;
}

/** The scalar GELU and derivative of elements [from, to). */
function geluScalar(xs: Float32Array, y: Float32Array, d: Float32Array, from: number, to: number) {
  for (let i = from; i < to; i++) {
    const v = xs[i];
    const a = Math.abs(v) * Math.SQRT1_2;
    const t = 1 / (1 + P * a);
    const g = expNeg(a * a); // e^(-x^2/2): erf's tail and the normal pdf at once
    const e = 1 - ((((A5 * t + A4) * t + A3) * t + A2) * t + A1) * t * g; // erf(|x|/sqrt2)
    const cdf = 0.5 * (1 + (v < 0 ? -e : e));
    y[i] = v * cdf;
    d[i] = cdf + v * INV_SQRT_2PI * g;
  }
}

/** GELU and its derivative in one pass: `[y, dy/dx]` (the derivative is kept for backward). */
function geluFwd(args: KArgs): tf.TensorInfo[] {
  const { x } = args.inputs as Record<string, tf.TensorInfo>;
  const { ins: [xs], outs: [y, d], infos } = io(args.backend, [x], [x.shape, x.shape]);
  const n = xs.length, n4 = n & ~3;
  const heap = heapOf(args.backend, [xs, y, d]);
  const simd = heap === null ? null : loadSimdGelu(heap);
  if (simd === null) {
    geluInto(xs, y, d); // the copy path (or scalar)
    return infos;
  }
  simd.gelu(xs.byteOffset, y.byteOffset, d.byteOffset, n4); // tensors in place
  geluScalar(xs, y, d, n4, n);
  return infos;
}

/**
 * GELU by oneDNN (`_native_eltwise.ts`): `y` only (the backward recomputes from `x`). Where the
 * primitive cannot be made, the wasm kernel computes `y` (and a derivative it drops).
 */
function geluFwdNative(args: KArgs): tf.TensorInfo {
  const { x } = args.inputs as Record<string, tf.TensorInfo>;
  const { ins: [xs], outs: [y], infos } = io(args.backend, [x], [x.shape]);
  const native = nativeEltwise(xs.length);
  const be = args.backend;
  if (
    native !== null && isWasmBackend(be) &&
    native.gelu(heapAt(be, xs.byteOffset), heapAt(be, y.byteOffset), xs.length)
  ) {
    countNative("gelu");
    return infos[0];
  }
  geluInto(xs, y, new Float32Array(xs.length));
  return infos[0];
}

/** `dx = dy * GELU'(x)` by oneDNN, or by the wasm kernel's derivative where it cannot. */
function geluBwdNative(args: KArgs): tf.TensorInfo {
  const { dy, x } = args.inputs as Record<string, tf.TensorInfo>;
  const { ins: [dys, xs], outs: [dx], infos } = io(args.backend, [dy, x], [x.shape]);
  const native = nativeEltwise(xs.length);
  const be = args.backend;
  if (
    native !== null && isWasmBackend(be) &&
    native.geluBackward(
      heapAt(be, xs.byteOffset),
      heapAt(be, dys.byteOffset),
      heapAt(be, dx.byteOffset),
      xs.length,
    )
  ) {
    countNative("geluBackward");
    return infos[0];
  }
  const d = new Float32Array(xs.length);
  geluInto(xs, new Float32Array(xs.length), d);
  for (let i = 0; i < d.length; i++) dx[i] = dys[i] * d[i];
  return infos[0];
}

/**
 * Softmax over the last axis: oneDNN's primitive (threaded) for large arrays, else a plain
 * loop in float64 (max subtracted first, so no overflow). tfjs-wasm's own softmax and the
 * broadcast products of its gradient cost about a millisecond per launch at attention's
 * `[B, H, T, T]` shapes.
 */
function softmaxFwd(args: KArgs): tf.TensorInfo {
  const { x } = args.inputs as Record<string, tf.TensorInfo>;
  const cols = x.shape[x.shape.length - 1] ?? 1;
  const { ins: [xs], outs: [y], infos } = io(args.backend, [x], [x.shape]);
  const rows = cols === 0 ? 0 : xs.length / cols;
  const native = nativeEltwise(xs.length, SOFTMAX_NATIVE_MIN);
  const be = args.backend;
  if (
    native !== null && isWasmBackend(be) &&
    native.softmax(heapAt(be, xs.byteOffset), heapAt(be, y.byteOffset), rows, cols)
  ) {
    countNative("softmax");
    return infos[0];
  }
  for (let r = 0; r < rows; r++) {
    const o = r * cols;
    let m = -Infinity;
    for (let j = 0; j < cols; j++) if (xs[o + j] > m) m = xs[o + j];
    if (m === Infinity || Number.isNaN(m)) m = 0; // an Inf or NaN input: NaN rows, as tfjs
    let sum = 0;
    for (let j = 0; j < cols; j++) {
      const e = xs[o + j] === m ? 1 : expNeg(m - xs[o + j]);
      y[o + j] = e;
      sum += e;
    }
    const inv = 1 / sum;
    for (let j = 0; j < cols; j++) y[o + j] *= inv;
  }
  return infos[0];
}

/** Softmax's backward from its output: `dx = y (dy - sum_row(dy y))`. */
function softmaxBwd(args: KArgs): tf.TensorInfo {
  const { dy, y } = args.inputs as Record<string, tf.TensorInfo>;
  const cols = y.shape[y.shape.length - 1] ?? 1;
  const { ins: [dys, ys], outs: [dx], infos } = io(args.backend, [dy, y], [y.shape]);
  const rows = cols === 0 ? 0 : ys.length / cols;
  const native = nativeEltwise(ys.length, SOFTMAX_NATIVE_MIN);
  const be = args.backend;
  if (
    native !== null && isWasmBackend(be) &&
    native.softmaxBackward(
      heapAt(be, ys.byteOffset),
      heapAt(be, dys.byteOffset),
      heapAt(be, dx.byteOffset),
      rows,
      cols,
    )
  ) {
    countNative("softmaxBackward");
    return infos[0];
  }
  for (let r = 0; r < rows; r++) {
    const o = r * cols;
    let dot = 0;
    for (let j = 0; j < cols; j++) dot += dys[o + j] * ys[o + j];
    for (let j = 0; j < cols; j++) dx[o + j] = ys[o + j] * (dys[o + j] - dot);
  }
  return infos[0];
}

/** GELU and derivative of `xs` into host arrays `y`, `d` (the SIMD copy path, then scalar). */
function geluInto(xs: Float32Array, y: Float32Array, d: Float32Array): void {
  const n = xs.length, n4 = n & ~3;
  const simd = loadSimdGelu();
  if (simd !== null) {
    const buf = new Float32Array(simd.memory.buffer);
    for (let o = 0; o < n4; o += SIMD_CHUNK) {
      const m = Math.min(SIMD_CHUNK, n4 - o);
      buf.set(xs.subarray(o, o + m), 0);
      simd.gelu(0, SIMD_CHUNK * 4, 2 * SIMD_CHUNK * 4, m);
      y.set(buf.subarray(SIMD_CHUNK, SIMD_CHUNK + m), o);
      d.set(buf.subarray(2 * SIMD_CHUNK, 2 * SIMD_CHUNK + m), o);
    }
  }
  geluScalar(xs, y, d, simd === null ? 0 : n4, n);
}

function mulKernel(args: KArgs): tf.TensorInfo {
  const { a, b } = args.inputs as Record<string, tf.TensorInfo>;
  const { ins: [as, bs], outs: [out], infos } = io(args.backend, [a, b], [a.shape]);
  for (let i = 0; i < as.length; i++) out[i] = as[i] * bs[i];
  return infos[0];
}

/** Attributes of one AdamW update. */
export interface AdamWAttrs {
  /** Learning rate for this parameter (layer scale included). */
  lr: number;
  beta1: number;
  beta2: number;
  eps: number;
  /** Decoupled weight decay (0 for parameters without decay). */
  weightDecay: number;
  /** Bias corrections 1 / (1 - beta^t). */
  c1: number;
  c2: number;
}

function adamW(args: KArgs): tf.TensorInfo[] {
  const { p, g, m, v, scale } = args.inputs as Record<string, tf.TensorInfo>;
  const a = args.attrs as unknown as AdamWAttrs;
  const { ins: [ps, gs, ms, vs, sc], outs: [np, nm, nv], infos } = io(
    args.backend,
    [p, g, m, v, scale],
    [p.shape, p.shape, p.shape],
  );
  const k = sc[0], b1 = a.beta1, b2 = a.beta2;
  const heap = heapOf(args.backend, [ps, gs, ms, vs, np, nm, nv]);
  const simd = heap && simdExports("adamw", ADAMW_WASM, heap);
  let from = 0;
  if (simd) {
    from = ps.length & ~3;
    (simd.adamw as (...a: number[]) => void)(
      ps.byteOffset,
      gs.byteOffset,
      ms.byteOffset,
      vs.byteOffset,
      np.byteOffset,
      nm.byteOffset,
      nv.byteOffset,
      ps.length,
      k,
      a.lr,
      b1,
      b2,
      a.eps,
      a.weightDecay,
      a.c1,
      a.c2,
    );
  }
  adamWScalar([ps, gs, ms, vs], [np, nm, nv], from, { ...a, k });
  return infos;
}

/**
 * The AdamW update of elements [from, end) in scalar code (what `adamw.wat` does 4 lanes at a
 * time); the outputs may be the inputs. Returns the sum of the squares of the unscaled g.
 */
function adamWScalar(
  [ps, gs, ms, vs]: Float32Array[],
  [np, nm, nv]: Float32Array[],
  from: number,
  a: AdamWAttrs & { k: number },
): number {
  const { k, beta1: b1, beta2: b2 } = a;
  let sq = 0;
  for (let i = from; i < ps.length; i++) {
    sq += gs[i] * gs[i];
    const gi = gs[i] * k;
    const mi = b1 * ms[i] + (1 - b1) * gi;
    const vi = b2 * vs[i] + (1 - b2) * gi * gi;
    nm[i] = mi;
    nv[i] = vi;
    const step = a.lr * (mi * a.c1) / (Math.sqrt(vi * a.c2) + a.eps);
    np[i] = ps[i] - step - a.lr * a.weightDecay * ps[i];
  }
  return sq;
}

function sumSquares(args: KArgs): tf.TensorInfo {
  const inputs = Object.values(args.inputs as Record<string, tf.TensorInfo>);
  const { ins, outs: [out], infos } = io(args.backend, inputs, [[]]);
  let s = 0;
  for (const x of ins) for (let i = 0; i < x.length; i++) s += x[i] * x[i];
  out[0] = s;
  return infos[0];
}

/** Sum over all leading axes: `[..., N] -> [N]` (a dense layer's bias gradient). */
function columnSum(args: KArgs): tf.TensorInfo {
  const { x } = args.inputs as Record<string, tf.TensorInfo>;
  const N = x.shape[x.shape.length - 1];
  const { ins: [xs], outs: [out], infos } = io(args.backend, [x], [[N]]);
  out.fill(0);
  for (let o = 0; o < xs.length; o += N) for (let j = 0; j < N; j++) out[j] += xs[o + j];
  return infos[0];
}

interface HeadsAttrs {
  batch: number;
  heads: number;
  /** Multiplies q (forward) and dq (backward). */
  scale: number;
}

/** `[B*T, 3D]` fused projections -> q (scaled), k, v as `[B, H, T, hd]`. */
/**
 * The head split (`rows` -> q, k, v) or merge (q, k, v -> `rows`) as three oneDNN strided copies,
 * q scaled by `scale`; false (nothing written) where oneDNN is not loaded or cannot copy.
 *
 * @param rows `[B*T, 3D]` the fused projection's rows
 * @param parts q, k, v, each `[B, H, T, hd]`
 */
function nativeHeadsCopy(
  backend: unknown,
  way: "split" | "merge",
  [B, T, H, hd]: readonly number[],
  scale: number,
  rows: Float32Array,
  parts: readonly Float32Array[],
): boolean {
  const native = nativeEltwise(rows.length);
  if (native === null || !isWasmBackend(backend)) return false;
  const D = H * hd;
  const rowStrides = [T * 3 * D, 3 * D, hd, 1], headStrides = [H * T * hd, hd, T * hd, 1];
  const done = parts.every((part, p) => {
    const row = heapAt(backend, rows.byteOffset + 4 * p * D),
      head = heapAt(backend, part.byteOffset);
    const s = p === 0 ? scale : 1;
    return way === "split"
      ? native.copyStrided([B, T, H, hd], rowStrides, headStrides, s, row, head)
      : native.copyStrided([B, T, H, hd], headStrides, rowStrides, s, head, row);
  });
  if (done) countNative(way === "split" ? "splitHeads" : "mergeHeads");
  return done;
}

function splitHeads(args: KArgs): tf.TensorInfo[] {
  const { x } = args.inputs as Record<string, tf.TensorInfo>;
  const { batch: B, heads: H, scale } = args.attrs as unknown as HeadsAttrs;
  const D = x.shape[1] / 3, T = x.shape[0] / B, hd = D / H;
  const shape = [B, H, T, hd];
  const { ins: [xs], outs, infos } = io(args.backend, [x], [shape, shape, shape]);
  // oneDNN's threaded strided copy where it is loaded: rows [B, T, (3,) H, hd] -> [B, H, T, hd]
  if (
    nativeHeadsCopy(args.backend, "split", [B, T, H, hd], scale, xs, outs)
  ) return infos;
  for (let b = 0; b < B; b++) {
    for (let t = 0; t < T; t++) {
      const row = (b * T + t) * 3 * D;
      for (let h = 0; h < H; h++) {
        const dst = ((b * H + h) * T + t) * hd, src = row + h * hd;
        const q = outs[0], k = outs[1], v = outs[2];
        for (let j = 0; j < hd; j++) {
          q[dst + j] = xs[src + j] * scale;
          k[dst + j] = xs[src + D + j];
          v[dst + j] = xs[src + 2 * D + j];
        }
      }
    }
  }
  return infos;
}

/** The gradient of {@link splitHeads}: dq, dk, dv `[B, H, T, hd]` -> `[B*T, 3D]`. */
function mergeHeads(args: KArgs): tf.TensorInfo {
  const { q, k, v } = args.inputs as Record<string, tf.TensorInfo>;
  const { scale } = args.attrs as unknown as HeadsAttrs;
  const [B, H, T, hd] = q.shape, D = H * hd;
  const { ins: [qs, ks, vs], outs: [out], infos } = io(args.backend, [q, k, v], [[B * T, 3 * D]]);
  if (nativeHeadsCopy(args.backend, "merge", [B, T, H, hd], scale, out, [qs, ks, vs])) {
    return infos[0];
  }
  for (let b = 0; b < B; b++) {
    for (let t = 0; t < T; t++) {
      const row = (b * T + t) * 3 * D;
      for (let h = 0; h < H; h++) {
        const src = ((b * H + h) * T + t) * hd, dst = row + h * hd;
        for (let j = 0; j < hd; j++) {
          out[dst + j] = qs[src + j] * scale;
          out[dst + D + j] = ks[src + j];
          out[dst + 2 * D + j] = vs[src + j];
        }
      }
    }
  }
  return infos[0];
}

let registered = false;
function register(): void {
  if (registered) return;
  registered = true;
  const kernels: [string, tf.KernelFunc][] = [
    [LN_FWD, layerNormFwd as tf.KernelFunc],
    [LN_BWD, layerNormBwd as tf.KernelFunc],
    [GELU_FWD, geluFwd as tf.KernelFunc],
    [GELU_BWD, mulKernel as tf.KernelFunc],
    [GELU_FWD_NATIVE, geluFwdNative as tf.KernelFunc],
    [GELU_BWD_NATIVE, geluBwdNative as tf.KernelFunc],
    [ADAMW, adamW as tf.KernelFunc],
    [SUM_SQ, sumSquares as tf.KernelFunc],
    [COL_SUM, columnSum as tf.KernelFunc],
    [SPLIT_HEADS, splitHeads as tf.KernelFunc],
    [SOFTMAX_FWD, softmaxFwd as tf.KernelFunc],
    [SOFTMAX_BWD, softmaxBwd as tf.KernelFunc],
    [MERGE_HEADS, mergeHeads as tf.KernelFunc],
  ];
  for (const backendName of BACKENDS) {
    for (const [kernelName, kernelFunc] of kernels) {
      if (tf.getKernel(kernelName, backendName) === undefined) {
        tf.registerKernel({ kernelName, backendName, kernelFunc });
      }
    }
  }
  tf.registerGradient({
    kernelName: SPLIT_HEADS,
    gradFunc: (dy, _saved, attrs) => {
      const [dq, dk, dv] = dy as tf.Tensor[];
      return { x: () => run(MERGE_HEADS, { q: dq, k: dk, v: dv }, attrs) as tf.Tensor };
    },
  });
}

let disabled = false;

/** Turn the fused kernels off (tests compare them with the composite ops). */
export function setFusedEnabled(on: boolean): void {
  disabled = !on;
}

/** Whether the active backend runs the fused kernels. */
export function fusedAvailable(): boolean {
  if (disabled) return false;
  const b = tf.getBackend();
  if (b !== "cpu" && b !== "wasm") return false;
  register();
  return true;
}

const run = (name: string, inputs: tf.NamedTensorMap, attrs: object = {}) =>
  tf.engine().runKernel(name, inputs, attrs as unknown as tf.NamedAttrMap);

const layerNormOps = new Map<number, (x: tf.Tensor, g: tf.Tensor, b: tf.Tensor) => tf.Tensor>();

/** LayerNorm over the last axis: one kernel forward, one backward. Needs {@link fusedAvailable}. */
export function fusedLayerNorm(x: tf.Tensor, gamma: tf.Tensor, beta: tf.Tensor, eps: number) {
  let op = layerNormOps.get(eps);
  if (op === undefined) {
    op = tf.customGrad(
      // deno-lint-ignore no-explicit-any
      ((x: tf.Tensor, gamma: tf.Tensor, beta: tf.Tensor, save: any) => {
        const [y, mean, rstd] = run(LN_FWD, { x, gamma, beta }, { eps }) as tf.Tensor[];
        save([x, gamma, mean, rstd]);
        return {
          value: y,
          gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
            const [xs, g, mu, rs] = saved;
            return run(LN_BWD, { dy, x: xs, gamma: g, mean: mu, rstd: rs }) as tf.Tensor[];
          },
        };
        // deno-lint-ignore no-explicit-any
      }) as any,
    ) as unknown as (x: tf.Tensor, g: tf.Tensor, b: tf.Tensor) => tf.Tensor;
    layerNormOps.set(eps, op);
  }
  return op(x, gamma, beta);
}

/**
 * Exact GELU, one kernel forward and one backward. Needs {@link fusedAvailable}. On the wasm
 * backend with oneDNN's elementwise kernels (`_native_eltwise.ts`), forward and backward run
 * there (threaded) and the backward recomputes from `x`; else the wasm kernel computes `y` and
 * the derivative in one pass and the backward multiplies.
 */
export const fusedGelu: (x: tf.Tensor) => tf.Tensor = tf.customGrad(
  // deno-lint-ignore no-explicit-any
  ((x: tf.Tensor, save: any) => {
    if (tf.getBackend() === "wasm" && nativeEltwise(x.size) !== null) {
      const y = run(GELU_FWD_NATIVE, { x }) as tf.Tensor;
      save([x]);
      return {
        value: y,
        gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => run(GELU_BWD_NATIVE, { dy, x: saved[0] }),
      };
    }
    const [y, d] = run(GELU_FWD, { x }) as tf.Tensor[];
    save([d]);
    return {
      value: y,
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => run(GELU_BWD, { a: dy, b: saved[0] }),
    };
    // deno-lint-ignore no-explicit-any
  }) as any,
) as unknown as (x: tf.Tensor) => tf.Tensor;

/**
 * Softmax over the last axis, one kernel forward and one backward (from the saved output).
 * Needs {@link fusedAvailable}. On the wasm backend with oneDNN's elementwise kernels, arrays
 * of 32,768 values or more run as oneDNN's softmax primitives.
 */
export const fusedSoftmax: (x: tf.Tensor) => tf.Tensor = tf.customGrad(
  // deno-lint-ignore no-explicit-any
  ((x: tf.Tensor, save: any) => {
    const y = run(SOFTMAX_FWD, { x }) as tf.Tensor;
    save([y]);
    return {
      value: y,
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => run(SOFTMAX_BWD, { dy, y: saved[0] }),
    };
    // deno-lint-ignore no-explicit-any
  }) as any,
) as unknown as (x: tf.Tensor) => tf.Tensor;

/**
 * One AdamW update of a parameter: returns `[p, m, v]` after the step. `scale` (a scalar)
 * multiplies the gradient first (global-norm clipping). Needs {@link fusedAvailable}.
 */
export function fusedAdamW(
  p: tf.Tensor,
  g: tf.Tensor,
  m: tf.Tensor,
  v: tf.Tensor,
  scale: tf.Scalar,
  attrs: AdamWAttrs,
): [tf.Tensor, tf.Tensor, tf.Tensor] {
  return run(ADAMW, { p, g, m, v, scale }, attrs) as [tf.Tensor, tf.Tensor, tf.Tensor];
}

/** One parameter's part of {@link adamWInPlace}. */
export interface AdamWSlot {
  p: tf.Tensor;
  g: tf.Tensor;
  m: tf.Tensor;
  v: tf.Tensor;
  /** This parameter's learning rate (layer scale included). */
  lr: number;
  /** Its decoupled weight decay (0: none). */
  weightDecay: number;
}

/** What {@link adamWInPlace} shares across parameters. */
export interface AdamWStep {
  beta1: number;
  beta2: number;
  eps: number;
  /** Bias corrections 1 / (1 - beta^t). */
  c1: number;
  c2: number;
  /** Clip the global gradient norm to this (0: off). */
  clipGrad: number;
}

let inPlaceSteps = 0, inPlaceSimdSteps = 0;

/** How many {@link adamWInPlace} calls wrote in place (tests check the path was taken). */
export function adamWInPlaceSteps(): number {
  return inPlaceSteps;
}

/** How many of those ran the SIMD pass (the rest ran the scalar loop). */
export function adamWInPlaceSimdSteps(): number {
  return inPlaceSimdSteps;
}

/**
 * One AdamW step over all parameters, written into the memory of each p, m and v: one pass per
 * parameter and no kernel launch or new tensor, where {@link fusedAdamW} launches once per
 * parameter and allocates three outputs each time. Returns the global gradient norm before
 * clipping. With `clipGrad > 0` the norm is summed first and the gradients scaled by
 * min(1, clipGrad / (norm + 1e-6)), as `AdamW` does; without, the norm is summed in the update's
 * own pass (f64 accumulation either way).
 *
 * Returns null with nothing written where writing in place is not possible or not safe: off the
 * wasm backend (or with the fused kernels off), a tensor that is not float32, or a p, m or v
 * whose data another tensor shares (tfjs treats tensor memory as immutable; another owner of the
 * buffer would see it change).
 *
 * The SIMD part is split into chunks that a helper thread shares (`_helper.ts`; which thread ran a
 * chunk changes no bit). A parameter whose bf16 copy the matmul cache holds (`_bf16.ts`) gets the
 * copy rewritten in the same pass, rounded as its conversion would round it; other copies of the
 * parameters are dropped.
 */
export function adamWInPlace(slots: readonly AdamWSlot[], step: AdamWStep): number | null {
  const be = tf.backend() as unknown;
  if (disabled || !isWasmBackend(be)) return null;
  const refCount = (be as unknown as { refCount(id: unknown): number }).refCount.bind(be);
  const written = new Set<unknown>();
  for (const s of slots) {
    for (const t of [s.g, s.m, s.v]) {
      if (t.size !== s.p.size) {
        throw new RangeError(`adamWInPlace: sizes differ (${s.p.shape} vs ${t.shape})`);
      }
    }
    for (const t of [s.p, s.g, s.m, s.v]) if (t.dtype !== "float32") return null;
    for (const t of [s.p, s.m, s.v]) {
      if (refCount(t.dataId) !== 1 || written.has(t.dataId)) return null;
      written.add(t.dataId);
    }
  }
  if (slots.some((s) => written.has(s.g.dataId))) return null;
  // no allocation below, so the heap views stay valid
  const view = (t: tf.Tensor) => be.typedArrayFromHeap(t) as Float32Array;
  const heap = heapMemory(be);
  const ax = heap !== undefined ? simdExports("adamw", ADAMW_WASM, heap) : null;
  const bx = heap !== undefined ? simdExports("bf16", BF16_WASM, heap) : null;
  const simd = ax && bx ? { ...ax, ...bx } as unknown as StepExports : null;
  const modules = simd
    ? { adamw: simdModule("adamw", ADAMW_WASM)!, bf16: simdModule("bf16", BF16_WASM)! }
    : null;
  const { beta1: b1, beta2: b2, eps, c1, c2 } = step;
  const arrays = slots.map((s) => [s.p, s.g, s.m, s.v].map(view));
  // the bf16 copies of weights the last step's products used are rewritten in the same pass,
  // rounded as their conversion would round them (no conversion pass before the next product)
  const copies = slots.map((s) => simd ? cachedBf16Copy(be, s.p) : null);
  // the SIMD part of every parameter as chunks (two threads share them); the last n % 4
  // elements of each parameter run below, here
  const chunks: Chunk[] = [];
  if (simd) {
    slots.forEach((s, j) => {
      const [ps, gs, ms, vs] = arrays[j];
      const copy = copies[j];
      const n4 = ps.length & ~3;
      for (let at = 0; at < n4; at += CHUNK_ELEMS) {
        const b = 4 * at;
        chunks.push({
          p: ps.byteOffset + b,
          g: gs.byteOffset + b,
          m: ms.byteOffset + b,
          v: vs.byteOffset + b,
          n: Math.min(CHUNK_ELEMS, n4 - at),
          lr: s.lr,
          wd: s.weightDecay,
          bf: copy === null ? 0 : (copy.ptr + 2 * at) * (copy.ftz ? -1 : 1),
        });
      }
    });
  }
  const sums = new Float64Array(chunks.length);
  const scalars = { k: 1, b1, b2, eps, c1, c2 };
  const from = (j: number) => simd ? arrays[j][0].length & ~3 : 0;
  let norm2 = 0;
  if (step.clipGrad > 0) {
    if (simd) {
      runChunks(2, chunks, scalars, simd, heap!, modules!, sums);
      for (const x of sums) norm2 += x;
    }
    arrays.forEach(([, gs], j) => {
      for (let i = from(j); i < gs.length; i++) norm2 += gs[i] * gs[i];
    });
    scalars.k = Math.min(1, step.clipGrad / (Math.sqrt(norm2) + 1e-6));
  }
  const k = scalars.k;
  let sq = 0;
  if (simd) {
    runChunks(1, chunks, scalars, simd, heap!, modules!, sums);
    for (const x of sums) sq += x;
  }
  slots.forEach((s, j) => {
    const [ps, , ms, vs] = arrays[j];
    sq += adamWScalar(arrays[j], [ps, ms, vs], from(j), {
      k,
      lr: s.lr,
      beta1: b1,
      beta2: b2,
      eps,
      weightDecay: s.weightDecay,
      c1,
      c2,
    });
    const copy = copies[j];
    if (copy !== null && from(j) < ps.length) {
      const bits = new Uint32Array(ps.buffer, ps.byteOffset, ps.length);
      const out = new Uint16Array(ps.buffer, copy.ptr, ps.length);
      const round = copy.ftz ? bf16BitsFtz : bf16Bits;
      for (let i = from(j); i < ps.length; i++) out[i] = round(bits[i]);
    }
  });
  countBf16Refresh(copies.filter((c) => c !== null).length);
  forgetBf16Copies(slots.filter((_, j) => copies[j] === null).map((s) => s.p.dataId));
  inPlaceSteps++;
  if (simd) inPlaceSimdSteps++;
  return Math.sqrt(step.clipGrad > 0 ? norm2 : sq);
}

/** Sum of squares over all elements of all `xs` (a scalar). Needs {@link fusedAvailable}. */
export function fusedSumSquares(xs: tf.Tensor[]): tf.Scalar {
  const inputs: tf.NamedTensorMap = {};
  xs.forEach((x, i) => inputs[`x${i}`] = x);
  return run(SUM_SQ, inputs) as tf.Scalar;
}

/** Sum over all leading axes, `[..., N] -> [N]`. Needs {@link fusedAvailable}. */
export function fusedColumnSum(x: tf.Tensor): tf.Tensor1D {
  return run(COL_SUM, { x }) as tf.Tensor1D;
}

/**
 * Fused q/k/v projections `[B*T, 3D]` to heads: `[q * scale, k, v]`, each `[B, H, T, hd]`, in
 * one copy (and one back in the gradient) instead of a split, three transposes and a scale.
 * Needs {@link fusedAvailable}.
 */
export function fusedSplitHeads(qkv: tf.Tensor2D, batch: number, heads: number, scale: number) {
  return run(SPLIT_HEADS, { x: qkv }, { batch, heads, scale }) as [
    tf.Tensor4D,
    tf.Tensor4D,
    tf.Tensor4D,
  ];
}
