/**
 * The count rule itself, method-free (see `counts.ts`, which re-exports it
 * next to the methods' choices). Its own file so that `random.ts` and
 * `methods.ts` can use it while `counts.ts` reads the method registry.
 *
 * @module
 */

/** How ratios become counts (see the module doc). */
export type Counting = "floor" | "ceil";

/** Every {@linkcode Counting}. */
export const COUNTINGS: readonly Counting[] = Object.freeze(["floor", "ceil"] as Counting[]);

/** Group sizes of a plan. */
export interface PlanCounts {
  numMasked: number;
  numThrown: number;
  numVisible: number;
}

// Guards `0.45 * 100 = 45.00000000000001` (and the like) before floor/ceil.
const EPS = 1e-9;

function checkRatio(key: "maskRatio" | "throwRatio", value: number): void {
  if (typeof value !== "number" || !Number.isFinite(value) || value < 0 || value >= 1) {
    throw new RangeError(`${key} must be a number in [0, 1), got ${value}`);
  }
}

/**
 * Group sizes for `L` patches (or mask units) under a counting rule.
 *
 * @param numPatches L, the patches (or SimMIM mask units) of one image.
 * @param maskRatio fraction masked, in (0, 1).
 * @param throwRatio fraction thrown, in [0, 1); 0 for plain masking.
 * @throws {RangeError} when a ratio is out of range, nothing would be masked
 *   or nothing would stay visible.
 *
 * @example
 * ```ts
 * import { planCounts } from "./counts.ts";
 * const amt = planCounts(196, 0.45, 0.4, "floor");
 * if (amt.numMasked !== 88 || amt.numThrown !== 78 || amt.numVisible !== 30) throw new Error();
 * const mae = planCounts(196, 0.75, 0, "floor");
 * if (mae.numMasked !== 147 || mae.numVisible !== 49) throw new Error();
 * ```
 */
export function planCounts(
  numPatches: number,
  maskRatio: number,
  throwRatio: number,
  counting: Counting = "floor",
): PlanCounts {
  if (!Number.isInteger(numPatches) || numPatches < 1) {
    throw new RangeError(`the number of patches L must be a positive integer, got ${numPatches}`);
  }
  checkRatio("maskRatio", maskRatio);
  checkRatio("throwRatio", throwRatio);
  const L = numPatches;
  let numMasked: number;
  let numThrown: number;
  if (counting === "floor") {
    numMasked = Math.floor(L * maskRatio + EPS);
    numThrown = Math.floor(L * (maskRatio + throwRatio) + EPS) - numMasked;
  } else if (counting === "ceil") {
    // max(0, .) because ceil(-EPS) is -0.
    numMasked = Math.max(0, Math.ceil(L * maskRatio - EPS));
    numThrown = Math.max(0, Math.ceil(L * throwRatio - EPS));
  } else {
    throw new RangeError(`counting must be "floor" or "ceil", got ${JSON.stringify(counting)}`);
  }
  const numVisible = L - numMasked - numThrown;
  const setting = `maskRatio=${maskRatio}, throwRatio=${throwRatio}, counting=${counting}, L=${L}`;
  if (numMasked < 1) {
    throw new RangeError(`${setting} masks no patch (nothing to reconstruct); raise maskRatio`);
  }
  if (numVisible < 1) {
    throw new RangeError(
      `${setting} gives ${numMasked} masked + ${numThrown} thrown of ${L}, leaving no visible ` +
        `patch; lower maskRatio + throwRatio`,
    );
  }
  return { numMasked, numThrown, numVisible };
}
