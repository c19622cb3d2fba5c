/**
 * MAE's random masking, as a mask plan: per image, sort uniform noise; the
 * `int(L * (1 - r))` patches with the smallest noise stay visible, the rest
 * are masked. Nothing is thrown.
 *
 * @module
 */
import { permutation, type Rng } from "../util/rng.ts";
import { expandUnitPlan, type MaskPlan, type MaskPlanner, type PlanContext } from "./plan.ts";

/** Counts of MAE random masking: keep `floor(L * (1 - r))`, mask the rest. */
export function randomMaskCounts(
  L: number,
  maskRatio: number,
): { masked: number; visible: number } {
  if (!(maskRatio > 0 && maskRatio < 1)) {
    throw new RangeError(`mim.maskRatio must be in (0, 1), got ${maskRatio}`);
  }
  const visible = Math.floor(L * (1 - maskRatio) + 1e-9);
  if (visible < 1) {
    throw new RangeError(`mim.maskRatio ${maskRatio} leaves no visible patch out of ${L}`);
  }
  return { masked: L - visible, visible };
}

/**
 * Random mask plan for a batch (MAE's `random_masking`, on the host).
 *
 * @param rng uniform [0, 1) source; all randomness comes from it
 */
export function randomMaskPlan(batch: number, L: number, maskRatio: number, rng: Rng): MaskPlan {
  const { masked: nM, visible: nV } = randomMaskCounts(L, maskRatio);
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
  constructor(readonly maskRatio: number) {}
  plan(batch: number, numPatches: number, ctx: PlanContext): MaskPlan {
    return randomMaskPlan(batch, numPatches, this.maskRatio, ctx.rng);
  }
  phase(): string {
    return "random";
  }
}

/**
 * SimMIM's random masking over mask units of `k x k` patches:
 * `ceil(U * r)` of the `U` units are masked, the rest visible.
 */
export function unitRandomMaskPlan(
  batch: number,
  L: number,
  k: number,
  maskRatio: number,
  rng: Rng,
): MaskPlan {
  const U = L / (k * k);
  if (!Number.isInteger(U)) {
    throw new RangeError(`mask unit of ${k}x${k} patches does not tile ${L} patches`);
  }
  const nM = Math.ceil(U * maskRatio - 1e-9);
  if (nM < 1 || nM >= U) {
    throw new RangeError(
      `mim.maskRatio ${maskRatio} masks ${nM} of ${U} mask units; need 1..${U - 1}`,
    );
  }
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
  constructor(readonly maskRatio: number, readonly k: number) {}
  plan(batch: number, numPatches: number, ctx: PlanContext): MaskPlan {
    return unitRandomMaskPlan(batch, numPatches, this.k, this.maskRatio, ctx.rng);
  }
  phase(): string {
    return "random";
  }
}
