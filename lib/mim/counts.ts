/**
 * The one patch-count rule: how many patches a plan masks, throws and keeps
 * visible. Every masking strategy (plain random masking, AMT and its
 * ablations) takes its counts from {@linkcode planCounts}, so two strategies
 * of the same method at the same `(L, maskRatio, throwRatio)` pose
 * reconstruction tasks of the same size, and a comparison between them is
 * like for like.
 *
 * Two rules, one per method, each the one its authors' code uses:
 *
 * - `floor` (MAE): the first `floor(L * r)` patches of the order are masked
 *   and masked + thrown is `floor(L * (r + t))`; the rest stay visible. At
 *   `L = 196` this gives MAE's own split (147 masked / 49 visible at 0.75,
 *   where MAE's `len_keep = int(L * (1 - r))` is 49 too) and the AMT
 *   release's split (88 / 78 / 30 at 0.45 / 0.40, which the keep rule,
 *   `int(196 * 0.15) = 29` visible, does not). Where `L * r` is not a whole
 *   number the two rules differ by one patch (at `L = 49`, 0.75: 36 masked /
 *   13 visible here, 37 / 12 with `len_keep`); we keep the rule that
 *   reproduces both releases at their own `L`.
 * - `ceil` (SimMIM): `ceil(U * r)` mask units masked and `ceil(U * t)`
 *   thrown, as SimMIM's `MaskGenerator` (`ceil(token_count * mask_ratio)`)
 *   and the AMT release's SimMIM branch count. `U` is the number of mask
 *   units (patches when the unit is the patch).
 *
 * `amt.counting` defaults to `auto`, the method's rule
 * ({@linkcode methodCounting}); an explicit value wins.
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

/**
 * The counting rule a method's authors use: `floor` for MAE, `ceil` for
 * SimMIM (and any mask-token method in SimMIM's line).
 *
 * @throws {RangeError} for an unknown method.
 */
export function methodCounting(method: string): Counting {
  switch (method) {
    case "mae":
      return "floor";
    case "simmim":
      return "ceil";
    default:
      throw new RangeError(`no counting rule for mim.method "${method}"; use "mae" or "simmim"`);
  }
}

/**
 * `amt.counting` as used: the explicit rule, or the method's for `auto`.
 *
 * @example
 * ```ts
 * import { resolveCounting } from "./counts.ts";
 * if (resolveCounting("auto", "simmim") !== "ceil") throw new Error();
 * if (resolveCounting("floor", "simmim") !== "floor") throw new Error();
 * ```
 */
export function resolveCounting(counting: string, method: string): Counting {
  if (counting === "auto") return methodCounting(method);
  if (counting === "floor" || counting === "ceil") return counting;
  throw new RangeError(
    `amt.counting must be "auto", "floor" or "ceil", got ${JSON.stringify(counting)}`,
  );
}

/**
 * Side of a method's mask unit in pixels, asserted against the patch and the
 * image (SimMIM's `MaskGenerator` owns its unit the same way). `requested`
 * is `mim.maskUnit` (0 = the method's default): MAE masks patches; SimMIM
 * masks units of 2 x 2 patches when they tile the image (its 32 px unit over
 * 16 px patches), else single patches.
 *
 * @throws {RangeError} when the unit is not a multiple of the patch or does
 *   not divide the image.
 */
export function methodMaskUnit(
  method: string,
  requested: number,
  patchSize: number,
  imageSize: number,
): number {
  let unit = requested;
  if (unit <= 0) {
    unit = method === "simmim" && imageSize % (2 * patchSize) === 0 ? 2 * patchSize : patchSize;
  }
  if (unit % patchSize !== 0) {
    throw new RangeError(
      `mask unit ${unit} px is not a multiple of the patch size ${patchSize} px; set mim.maskUnit ` +
        `to a multiple of model.patchSize`,
    );
  }
  if (imageSize % unit !== 0) {
    throw new RangeError(
      `mask unit ${unit} px does not tile the ${imageSize} px image; set mim.maskUnit to a ` +
        `divisor of the image side`,
    );
  }
  return unit;
}
