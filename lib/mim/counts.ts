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
 * ({@linkcode methodCounting}, from the method's entry in `methods.ts`); an
 * explicit value wins.
 *
 * @module
 */

import { type Counting, COUNTINGS, type PlanCounts, planCounts } from "./_count_rule.ts";
import { findMethod, methodList } from "./methods.ts";

export { type Counting, COUNTINGS, type PlanCounts, planCounts };

/**
 * The counting rule a method's authors use, from its registry entry
 * (`methods.ts`): `floor` for MAE, `ceil` for SimMIM (and any mask-token
 * method in SimMIM's line).
 *
 * @throws {RangeError} for an unknown method.
 */
export function methodCounting(method: string): Counting {
  const m = findMethod(method);
  if (!m) {
    throw new RangeError(`no counting rule for mim.method "${method}"; use ${methodList()}`);
  }
  return m.counting;
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
 * is `mim.maskUnit` (0 = the method's default, its registry entry's
 * `defaultMaskUnit`; the patch for a method not in the registry): MAE masks
 * patches; SimMIM masks units of 2 x 2 patches when they tile the image (its
 * 32 px unit over 16 px patches), else single patches.
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
  if (unit <= 0) unit = findMethod(method)?.defaultMaskUnit(patchSize, imageSize) ?? patchSize;
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
