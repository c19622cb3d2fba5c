/**
 * Plain random masking, as a mask plan: per image, sort uniform noise (MAE's
 * `random_masking`); the patches with the largest noise are masked, the rest
 * stay visible. Nothing is thrown. The counts come from the one rule of
 * `counts.ts`, so random masking and every AMT strategy of a method mask the
 * same number of patches at the same ratio.
 *
 * @module
 */
import { permutation, type Rng } from "../util/rng.ts";
import { type Counting, planCounts } from "./_count_rule.ts";
import { expandUnitPlan, type MaskPlan, type MaskPlanner, type PlanContext } from "./plan.ts";

/**
 * Counts of random masking at `maskRatio` under a counting rule (default
 * MAE's `floor`).
 *
 * @example
 * ```ts
 * import { randomMaskCounts } from "./random.ts";
 * const c = randomMaskCounts(49, 0.75);
 * if (c.masked !== 36 || c.visible !== 13) throw new Error();
 * ```
 */
export function randomMaskCounts(
  L: number,
  maskRatio: number,
  counting: Counting = "floor",
): { masked: number; visible: number } {
  if (!(maskRatio > 0 && maskRatio < 1)) {
    throw new RangeError(`mim.maskRatio must be in (0, 1), got ${maskRatio}`);
  }
  const c = planCounts(L, maskRatio, 0, counting);
  return { masked: c.numMasked, visible: c.numVisible };
}

/**
 * Random mask plan for a batch (MAE's `random_masking`, on the host).
 *
 * @param rng uniform [0, 1) source; all randomness comes from it
 * @param counting the counting rule (`floor`, MAE's, by default)
 */
export function randomMaskPlan(
  batch: number,
  L: number,
  maskRatio: number,
  rng: Rng,
  counting: Counting = "floor",
): MaskPlan {
  const { masked: nM, visible: nV } = randomMaskCounts(L, maskRatio, counting);
  const masked = new Int32Array(batch * nM);
  const visible = new Int32Array(batch * nV);
  const noise = new Float64Array(L);
  const order = new Int32Array(L);
  for (let b = 0; b < batch; b++) {
    for (let i = 0; i < L; i++) {
      noise[i] = rng();
      order[i] = i;
    }
    // ascend: small noise is keep, large is remove
    order.sort((a, c) => noise[a] - noise[c]);
    const keep = order.slice(0, nV).sort();
    const drop = order.slice(nV).sort();
    visible.set(keep, b * nV);
    masked.set(drop, b * nM);
  }
  return {
    batch,
    numPatches: L,
    numMasked: nM,
    numThrown: 0,
    numVisible: nV,
    masked,
    thrown: new Int32Array(0),
    visible,
  };
}

/** The plain random-masking planner (MAE's default). */
export class RandomMaskPlanner implements MaskPlanner {
  readonly name = "random";
  constructor(readonly maskRatio: number, readonly counting: Counting = "floor") {}
  plan(batch: number, numPatches: number, ctx: PlanContext): MaskPlan {
    return randomMaskPlan(batch, numPatches, this.maskRatio, ctx.rng, this.counting);
  }
  phase(): string {
    return "random";
  }
}

/**
 * SimMIM's random masking over mask units of `k x k` patches: of the `U`
 * units, `ceil(U * r)` (SimMIM's rule, the default) are masked, the rest
 * visible.
 */
export function unitRandomMaskPlan(
  batch: number,
  L: number,
  k: number,
  maskRatio: number,
  rng: Rng,
  counting: Counting = "ceil",
): MaskPlan {
  const U = L / (k * k);
  if (!Number.isInteger(U)) {
    throw new RangeError(`mask unit of ${k}x${k} patches does not tile ${L} patches`);
  }
  if (!(maskRatio > 0 && maskRatio < 1)) {
    throw new RangeError(`mim.maskRatio must be in (0, 1), got ${maskRatio}`);
  }
  const nM = planCounts(U, maskRatio, 0, counting).numMasked;
  const masked = new Int32Array(batch * nM);
  const visible = new Int32Array(batch * (U - nM));
  for (let b = 0; b < batch; b++) {
    const order = permutation(U, rng);
    masked.set(order.slice(0, nM).sort(), b * nM);
    visible.set(order.slice(nM).sort(), b * (U - nM));
  }
  const unitPlan: MaskPlan = {
    batch,
    numPatches: U,
    numMasked: nM,
    numThrown: 0,
    numVisible: U - nM,
    masked,
    thrown: new Int32Array(0),
    visible,
  };
  return k > 1 ? expandUnitPlan(unitPlan, k) : unitPlan;
}

/** SimMIM's random-masking planner (mask units of `k x k` patches, ceil counting). */
export class UnitRandomMaskPlanner implements MaskPlanner {
  readonly name = "random-units";
  constructor(
    readonly maskRatio: number,
    readonly k: number,
    readonly counting: Counting = "ceil",
  ) {}
  plan(batch: number, numPatches: number, ctx: PlanContext): MaskPlan {
    return unitRandomMaskPlan(batch, numPatches, this.k, this.maskRatio, ctx.rng, this.counting);
  }
  phase(): string {
    return "random";
  }
}
