/**
 * MAE's random masking, as a mask plan: per image, sort uniform noise; the
 * `int(L * (1 - r))` patches with the smallest noise stay visible, the rest
 * are masked. Nothing is thrown.
 *
 * @module
 */
import type { Rng } from "../util/rng.ts";
import type { MaskPlan, MaskPlanner, PlanContext } from "./plan.ts";

/** Counts of MAE random masking: keep `floor(L * (1 - r))`, mask the rest. */
export function randomMaskCounts(L: number, maskRatio: number): { masked: number; visible: number } {
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
