/**
 * Sampling a mask plan from per-patch attention weights (AMT, spec section 3).
 *
 * Every strategy first draws an order of the `L` patches, then cuts it into
 * masked / thrown / visible groups:
 *
 * | strategy         | order                        | masked     | thrown              | visible |
 * |------------------|------------------------------|------------|---------------------|---------|
 * | `amt`            | Plackett-Luce on the weights | first `nM` | next `nT` (middle)  | rest    |
 * | `attn-mask`      | Plackett-Luce on the weights | first `nM` | none (`t` must be 0) | rest   |
 * | `random`         | uniform                      | first `nM` | next `nT`           | rest    |
 * | `random-throw`   | uniform, then PL on the rest | PL first   | uniform `nT`        | rest    |
 * | `attn-throw-low` | Plackett-Luce on the weights | first `nM` | last `nT` (least)   | middle  |
 *
 * Plackett-Luce (weighted sampling without replacement) is drawn as an
 * exponential race: patch `i` gets the key `w_i / E_i`, `E_i = -ln(1 - u_i)
 * ~ Exp(1)`, and the order is the keys sorted descending (the patch whose
 * clock `E_i / w_i` rings first is picked first with probability
 * `w_i / sum w`, and by memorylessness the race goes on over the rest).
 * Zero weights are ranked after every positive weight, in uniform random
 * order among themselves, so an all-zero row is a uniform order. Only the
 * three bands are needed, not the full order, so the split uses two
 * quickselects instead of a sort.
 *
 * Counts: `nM`, `nT` and `nV = L - nM - nT` come from the one rule of
 * `mim/counts.ts` (`planCounts`), shared with plain random masking, so every
 * strategy of a method at the same ratios has the same counts.
 *
 * `random-throw` follows the paper's reading of its Table 4 row: the throw
 * is drawn first, uniformly, and attention then picks the masked patches
 * among those left. (The text can also be read as "mask by attention, then
 * throw uniformly from the rest"; that masks exactly `amt`'s patches and
 * differs from `amt` only in what is thrown.) The two give very different
 * plans: on a 7 x 7 map with a 3 x 3 object (weight 1, background 0.1) at
 * 45 / 40, `random-throw` masks 5.5 object patches on average (9 x 30 / 49
 * survive the throw, and attention masks nearly all of them), `amt` and the
 * other reading 8.8 (`tests/amt_sampler_test.ts` pins both).
 *
 * Randomness: every draw comes from `options.rng` (default `Math.random`).
 * A row consumes exactly `L` draws (`2L` for `random-throw`: `L` for the
 * throw, then `L` for the order of the rest), one per patch in index order,
 * and the rows of a batch consume the stream one after the other; so
 * `sampleMaskPlans` on `B` rows equals `B` calls of `sampleMaskPlan` fed the
 * same generator.
 *
 * @module
 */

import { type Counting, type PlanCounts, planCounts } from "../mim/counts.ts";
import type { MaskPlan } from "../mim/plan.ts";

export { type Counting, type PlanCounts, planCounts };

/** How a plan is drawn from the weights (see the module table). */
export type Strategy = "amt" | "attn-mask" | "random" | "random-throw" | "attn-throw-low";

/** Every valid {@linkcode Strategy}. */
export const STRATEGIES: readonly Strategy[] = Object.freeze([
  "amt",
  "attn-mask",
  "random",
  "random-throw",
  "attn-throw-low",
] as Strategy[]);

/**
 * An `amt.strategy` value: `none` (no AMT: the method's own random masking
 * with `mim.maskRatio`) or a sampler {@linkcode Strategy}.
 */
export type AmtStrategy = "none" | Strategy;

/**
 * Every valid `amt.strategy`: `none`, then {@linkcode STRATEGIES}. The config
 * check and the planner factory (`lib/pretrain/factory.ts`) take this list, so
 * a new strategy is added here once.
 */
export const AMT_STRATEGIES: readonly AmtStrategy[] = Object.freeze<AmtStrategy[]>([
  "none",
  ...STRATEGIES,
]);

/** Options of {@linkcode sampleMaskPlan} and {@linkcode sampleMaskPlans}. */
export interface SampleOptions {
  /** Fraction of patches masked (reconstructed), in (0, 1). */
  maskRatio: number;
  /** Fraction of patches thrown (never computed), in [0, 1). */
  throwRatio: number;
  /** Default `"amt"`. */
  strategy?: Strategy;
  /** Default `"floor"` (MAE). */
  counting?: Counting;
  /** Uniform generator on [0, 1); default `Math.random`. */
  rng?: () => number;
}

/** One image's plan; each group sorted ascending. */
export interface SinglePlan {
  masked: Int32Array;
  thrown: Int32Array;
  visible: Int32Array;
}

// E = -ln(1 - u) is 0 only when u = 0; the clamp keeps keys finite.
const MIN_E = 1e-300;

function checkRatio(key: "maskRatio" | "throwRatio", value: number): void {
  if (typeof value !== "number" || !Number.isFinite(value) || value < 0 || value >= 1) {
    throw new RangeError(`${key} must be a number in [0, 1), got ${value}`);
  }
}

function checkLength(numPatches: number): void {
  if (!Number.isInteger(numPatches) || numPatches < 1) {
    throw new RangeError(`the number of patches L must be a positive integer, got ${numPatches}`);
  }
}

/** Options checked once, counts resolved for `L`. */
interface Resolved extends PlanCounts {
  L: number;
  strategy: Strategy;
  rng: () => number;
}

function resolve(numPatches: number, options: SampleOptions): Resolved {
  if (options === null || typeof options !== "object") {
    throw new TypeError("options { maskRatio, throwRatio } are required");
  }
  const { maskRatio, throwRatio } = options;
  const strategy = options.strategy ?? "amt";
  const counting = options.counting ?? "floor";
  const rng = options.rng ?? Math.random;
  checkRatio("maskRatio", maskRatio);
  checkRatio("throwRatio", throwRatio);
  if (maskRatio === 0) {
    throw new RangeError("maskRatio must be > 0 (nothing to reconstruct), got 0");
  }
  if (maskRatio + throwRatio >= 1) {
    throw new RangeError(
      `maskRatio + throwRatio must be < 1 so that some patches stay visible, got ` +
        `maskRatio=${maskRatio} + throwRatio=${throwRatio} = ${maskRatio + throwRatio}`,
    );
  }
  if (!STRATEGIES.includes(strategy)) {
    throw new RangeError(
      `unknown strategy ${JSON.stringify(strategy)}; valid: ${STRATEGIES.join(", ")}`,
    );
  }
  if (strategy === "attn-mask" && throwRatio !== 0) {
    throw new RangeError(
      `strategy "attn-mask" is attention-driven masking without throwing: throwRatio must be 0, ` +
        `got throwRatio=${throwRatio} (use "amt" to throw the middle band)`,
    );
  }
  if (typeof rng !== "function") throw new TypeError("options.rng must be a function () => number");
  checkLength(numPatches);
  const counts = planCounts(numPatches, maskRatio, throwRatio, counting);
  return { L: numPatches, strategy, rng, ...counts };
}

/** Per-batch scratch, reused by every row. */
interface Scratch {
  /** [L] order keys of the current row (larger = earlier in the order). */
  keys: Float64Array;
  /** [L] copy of `keys`, partially ordered by quickselect. */
  work: Float64Array;
  /** [L] band of each patch: 0, 1 or 2. */
  band: Uint8Array;
  /** [L] a saved band (random-throw's thrown set). */
  saved: Uint8Array;
}

function makeScratch(L: number): Scratch {
  return {
    keys: new Float64Array(L),
    work: new Float64Array(L),
    band: new Uint8Array(L),
    saved: new Uint8Array(L),
  };
}

function draw(rng: () => number): number {
  const u = rng();
  if (!(u >= 0 && u < 1)) throw new RangeError(`rng must return numbers in [0, 1), got ${u}`);
  return u;
}

/**
 * Fills `keys` with uniform-order keys (L draws): any i.i.d. continuous keys
 * will do; `-u` so that, as for PL keys, a smaller draw ranks earlier.
 */
function uniformKeys(s: Scratch, L: number, rng: () => number): void {
  for (let i = 0; i < L; i++) s.keys[i] = -draw(rng);
}

/**
 * Fills `keys` with Plackett-Luce keys of the row at `offset` (L draws):
 * `(w_i / max w) / E_i` (>= 0) for a positive weight, `-1 - u_i` in
 * (-2, -1] for a zero weight, so zeros come after every positive weight and
 * in uniform order among themselves. Both decrease with `u_i`: among equal
 * weights, the smaller draw ranks earlier.
 */
function plKeys(
  s: Scratch,
  weights: ArrayLike<number>,
  offset: number,
  L: number,
  rng: () => number,
): void {
  // Dividing by the row maximum keeps keys <= 1 / MIN_E, whatever the scale.
  let max = 0;
  for (let i = 0; i < L; i++) if (weights[offset + i] > max) max = weights[offset + i];
  const inv = max > 0 ? 1 / max : 0;
  for (let i = 0; i < L; i++) {
    const w = weights[offset + i];
    const u = draw(rng);
    if (w > 0) {
      const e = -Math.log1p(-u); // Exp(1); 0 only when u = 0
      s.keys[i] = (w * inv) / (e > MIN_E ? e : MIN_E);
    } else {
      s.keys[i] = -1 - u;
    }
  }
}

/**
 * Quickselect: reorders `a[lo..hi]` so that `a[k]` holds the value of
 * ascending rank `k`, everything before it is `<=` and everything after
 * `>=`; returns `a[k]`.
 */
function select(a: Float64Array, lo: number, hi: number, k: number): number {
  while (hi > lo) {
    const x = a[lo], y = a[(lo + hi) >>> 1], z = a[hi];
    const pivot = x < y ? (y < z ? y : x < z ? z : x) : (x < z ? x : y < z ? z : y);
    let i = lo, j = hi;
    while (i <= j) {
      while (a[i] < pivot) i++;
      while (a[j] > pivot) j--;
      if (i <= j) {
        const t = a[i];
        a[i++] = a[j];
        a[j--] = t;
      }
    }
    // a[lo..j] <= pivot, a[j+1..i-1] == pivot, a[i..hi] >= pivot.
    if (k <= j) hi = j;
    else if (k >= i) lo = i;
    else return a[k];
  }
  return a[k];
}

/**
 * Splits the descending order of `keys` into three bands of `n0`, `n1` and
 * `L - n0 - n1` patches, written to `band`. Same result as a stable sort of
 * the indices by key, descending, cut in three, but in O(L): the two cut
 * keys come from quickselect, and keys equal to a cut key are taken inside
 * the cut in index order until it is full.
 */
function splitBands(s: Scratch, L: number, n0: number, n1: number): void {
  const { keys, work, band } = s;
  const cA = n0, cB = n0 + n1; // cut after the first cA / cB patches of the order
  work.set(keys);
  let keyA = Infinity, keyB = Infinity; // c <= 0: nothing inside the cut
  let hi = L - 1;
  if (cA >= L) keyA = -Infinity;
  else if (cA > 0) {
    keyA = select(work, 0, hi, L - cA);
    hi = L - cA; // everything before it is <= keyA, where cut B's key lies
  }
  if (cB >= L) keyB = -Infinity;
  else if (cB > 0) keyB = select(work, 0, hi, L - cB);
  let aboveA = 0, aboveB = 0;
  for (let i = 0; i < L; i++) {
    const k = keys[i];
    if (k > keyA) aboveA++;
    if (k > keyB) aboveB++;
  }
  let tiesA = cA - aboveA, tiesB = cB - aboveB; // seats left for keys equal to the cut key
  for (let i = 0; i < L; i++) {
    const k = keys[i];
    // Cut A is inside cut B; a key tied at both is seated at B first.
    const inB = k > keyB || (k === keyB && tiesB-- > 0);
    const inA = inB && (k > keyA || (k === keyA && tiesA-- > 0));
    band[i] = inA ? 0 : inB ? 1 : 2;
  }
}

/**
 * Writes the patches of each band to its group's row, in index order, so
 * every row comes out sorted ascending.
 */
function scatterBands(
  band: Uint8Array,
  L: number,
  out0: Int32Array,
  at0: number,
  out1: Int32Array,
  at1: number,
  out2: Int32Array,
  at2: number,
): void {
  let k0 = at0, k1 = at1, k2 = at2;
  for (let i = 0; i < L; i++) {
    const g = band[i];
    if (g === 0) out0[k0++] = i;
    else if (g === 1) out1[k1++] = i;
    else out2[k2++] = i;
  }
}

function checkWeights(weights: ArrayLike<number>, L: number, batch: number): void {
  for (let b = 0; b < batch; b++) {
    const off = b * L;
    for (let i = 0; i < L; i++) {
      const w = weights[off + i];
      if (!(w >= 0 && w < Infinity)) {
        const where = batch > 1 ? `weights[${b}, ${i}] (flat index ${off + i})` : `weights[${i}]`;
        throw new RangeError(`${where} = ${w}; weights must be finite and >= 0`);
      }
    }
  }
}

/** Draws row `b` of the plan into `masked`, `thrown`, `visible`. */
function sampleRow(
  r: Resolved,
  s: Scratch,
  weights: ArrayLike<number>,
  b: number,
  masked: Int32Array,
  thrown: Int32Array,
  visible: Int32Array,
): void {
  const { L, numMasked: nM, numThrown: nT, numVisible: nV, rng } = r;
  const offset = b * L;
  const mAt = b * nM, tAt = b * nT, vAt = b * nV;
  switch (r.strategy) {
    case "amt":
    case "attn-mask":
    case "random":
      if (r.strategy === "random") uniformKeys(s, L, rng);
      else plKeys(s, weights, offset, L, rng);
      // Descending keys: the most attended first are masked, the next band is
      // thrown, the tail (mostly low-attention context) stays visible.
      splitBands(s, L, nM, nT);
      scatterBands(s.band, L, masked, mAt, thrown, tAt, visible, vAt);
      return;
    case "attn-throw-low":
      plKeys(s, weights, offset, L, rng);
      splitBands(s, L, nM, nV);
      scatterBands(s.band, L, masked, mAt, visible, vAt, thrown, tAt);
      return;
    case "random-throw": {
      // Step 1: a uniform subset of nT patches is thrown (band 0).
      uniformKeys(s, L, rng);
      splitBands(s, L, nT, L - nT);
      s.saved.set(s.band);
      // Step 2: PL keys for all L patches (fixed rng use); a thrown patch's
      // key becomes -Infinity so the thrown form the last band. Dropping
      // patches from an exponential-race order is exactly PL on the patches left.
      plKeys(s, weights, offset, L, rng);
      for (let i = 0; i < L; i++) if (s.saved[i] === 0) s.keys[i] = -Infinity;
      splitBands(s, L, nM, nV);
      scatterBands(s.band, L, masked, mAt, visible, vAt, thrown, tAt);
      return;
    }
  }
}

/**
 * Draws the mask plan of ONE image from its per-patch weights.
 *
 * @param weights [L] non-negative per-patch weights (ignored by `random`).
 * @returns masked / thrown / visible patch indices, each sorted ascending;
 *   together they are a partition of `0..L-1`.
 *
 * @example
 * ```ts
 * import { sampleMaskPlan } from "./sampler.ts";
 * import { makeRng } from "../util/rng.ts";
 * const w = new Float32Array(16).fill(1);
 * const p = sampleMaskPlan(w, { maskRatio: 0.5, throwRatio: 0.25, rng: makeRng(0) });
 * if (p.masked.length !== 8 || p.thrown.length !== 4 || p.visible.length !== 4) throw new Error();
 * ```
 */
export function sampleMaskPlan(weights: ArrayLike<number>, options: SampleOptions): SinglePlan {
  if (weights == null || typeof weights.length !== "number" || weights.length === 0) {
    throw new RangeError(`weights must be a non-empty array, got length ${weights?.length}`);
  }
  const r = resolve(weights.length, options);
  checkWeights(weights, r.L, 1);
  const masked = new Int32Array(r.numMasked);
  const thrown = new Int32Array(r.numThrown);
  const visible = new Int32Array(r.numVisible);
  sampleRow(r, makeScratch(r.L), weights, 0, masked, thrown, visible);
  return { masked, thrown, visible };
}

/**
 * Draws the mask plans of a batch in one call (typed arrays, no tensors).
 *
 * Rows consume the generator in order, so the result equals `batch` calls of
 * {@linkcode sampleMaskPlan} on the rows with the same `rng`.
 *
 * @param weights [B, L] row-major per-patch weights; `L = weights.length / B`.
 * @param batch B, the number of images.
 * @returns a {@linkcode MaskPlan} whose rows are each sorted ascending.
 */
export function sampleMaskPlans(
  weights: ArrayLike<number>,
  batch: number,
  options: SampleOptions,
): MaskPlan {
  if (!Number.isInteger(batch) || batch < 1) {
    throw new RangeError(`batch must be a positive integer, got ${batch}`);
  }
  if (weights == null || typeof weights.length !== "number" || weights.length === 0) {
    throw new RangeError(`weights must be a non-empty [B, L] array, got length ${weights?.length}`);
  }
  if (weights.length % batch !== 0) {
    throw new RangeError(
      `weights.length=${weights.length} is not divisible by batch=${batch}; expected [B, L] weights`,
    );
  }
  const L = weights.length / batch;
  const r = resolve(L, options);
  checkWeights(weights, L, batch);
  const masked = new Int32Array(batch * r.numMasked); // [B, nM]
  const thrown = new Int32Array(batch * r.numThrown); // [B, nT]
  const visible = new Int32Array(batch * r.numVisible); // [B, nV]
  const scratch = makeScratch(L);
  for (let b = 0; b < batch; b++) sampleRow(r, scratch, weights, b, masked, thrown, visible);
  return {
    batch,
    numPatches: L,
    numMasked: r.numMasked,
    numThrown: r.numThrown,
    numVisible: r.numVisible,
    masked,
    thrown,
    visible,
  };
}
