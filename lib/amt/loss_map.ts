/**
 * The `loss` saliency source: a hardness map. Each un-augmented image is
 * masked at random and the current model reconstructs it; a patch's map value
 * is its reconstruction error, so AMT masks what the model finds hard.
 *
 * One random plan masks only part of an image, so the pass covers it: a random
 * order of the mask units is cut into rounds of `K` masked units (K from the
 * method's count rule at `mim.maskRatio`, the ratio of its random masking),
 * every other unit visible, nothing thrown; the last round wraps around the
 * order, so every patch is masked at least once ({@linkcode coveringPlans}).
 * A patch's error is the mean squared difference between the model's
 * prediction and the method's target over the patch
 * ({@linkcode patchErrors}; MAE: per-patch normalised pixels with
 * `normPixLoss`; a feature method such as MaskFeat: its feature targets),
 * averaged over the rounds that masked it; the map is the per-image min-max of
 * the errors.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import type { Dataset } from "../data/types.ts";
import { normalizePatches } from "../mim/mae.ts";
import { expandUnitPlan, type MaskPlan } from "../mim/plan.ts";
import type { MimModel } from "../mim/types.ts";
import type { Rng } from "../util/rng.ts";
import { flatIndices } from "../vit/vit.ts";
import { saliencyOverDataset, type SaliencyPass, type SaliencyPassOptions } from "./saliency.ts";

/**
 * Plans that mask every one of `numUnits` units at least once per image: a random order per
 * image, cut into `ceil(U / K)` rounds of `K` masked units (the last wraps around to the
 * order's start), the rest of each round visible, none thrown.
 *
 * @param maskCount K, masked units per round, in 1..U-1
 * @returns one plan per round over the units; rows sorted ascending
 */
export function coveringPlans(
  batch: number,
  numUnits: number,
  maskCount: number,
  rng: Rng,
): MaskPlan[] {
  const U = numUnits, K = maskCount;
  if (!(Number.isInteger(K) && K >= 1 && K < U)) {
    throw new RangeError(`coveringPlans: ${K} masked of ${U} units; need 1 <= masked < units`);
  }
  const rounds = Math.ceil(U / K);
  const orders: Int32Array[] = [];
  for (let b = 0; b < batch; b++) {
    const keys = Float64Array.from({ length: U }, () => rng());
    orders.push(Int32Array.from({ length: U }, (_, i) => i).sort((a, c) => keys[a] - keys[c]));
  }
  const plans: MaskPlan[] = [];
  for (let j = 0; j < rounds; j++) {
    const masked = new Int32Array(batch * K); // [B, K]
    const visible = new Int32Array(batch * (U - K)); // [B, U-K]
    const isMasked = new Uint8Array(U);
    for (let b = 0; b < batch; b++) {
      isMasked.fill(0);
      for (let k = 0; k < K; k++) isMasked[orders[b][(j * K + k) % U]] = 1;
      let m = b * K, v = b * (U - K);
      for (let u = 0; u < U; u++) {
        if (isMasked[u]) masked[m++] = u;
        else visible[v++] = u;
      }
    }
    plans.push({
      batch,
      numPatches: U,
      numMasked: K,
      numThrown: 0,
      numVisible: U - K,
      masked,
      thrown: new Int32Array(0),
      visible,
    });
  }
  return plans;
}

/**
 * Every patch's target in the method's own space: its features (MaskFeat's HOG) or its pixels
 * (per-patch normalised when the loss is). Plan-independent, so computed once per batch.
 *
 * @param patches [B*L, p*p*C]
 * @returns [B*L, Dt]
 */
function allTargets(model: MimModel, patches: tf.Tensor2D): tf.Tensor2D {
  return tf.tidy(() => {
    if (model.features) return model.features.compute(patches);
    return model.normPixLoss ? normalizePatches(patches) : patches.clone();
  });
}

/**
 * Per-patch reconstruction error of `model` under `plan`: the mean over the target's values
 * of `(prediction - target)^2` for each masked patch. The target is the method's: its feature
 * targets when it regresses features (`model.features`, MaskFeat's HOG), else the masked
 * patches' pixels, per-patch normalised when `model.normPixLoss` (the space MAE's and SimMIM's
 * `predict` is in).
 *
 * @param patches [B*L, p*p*C] normalised patch pixels
 * @param targets [B*L, Dt] every patch's target when already computed (else computed here)
 * @returns [B, Km] row-major as `plan.masked`
 * @throws {RangeError} when prediction and target widths differ
 */
export function patchErrors(
  model: MimModel,
  patches: tf.Tensor2D,
  plan: MaskPlan,
  targets?: tf.Tensor2D,
): tf.Tensor2D {
  const own = targets ? null : allTargets(model, patches);
  const all = targets ?? own!;
  const pred = model.predict(patches, plan); // [B*Km, Dt]
  try {
    return tf.tidy(() => {
      const rows = tf.tensor1d(
        flatIndices(plan.masked, plan.batch, plan.numMasked, plan.numPatches),
        "int32",
      ); // [B*Km] rows b*L+i
      const target = tf.gather(all, rows) as tf.Tensor2D; // [B*Km, Dt]
      if (target.shape.join() !== pred.shape.join()) {
        throw new RangeError(
          `amt.saliency = loss: ${model.method} predicts [${pred.shape}] but its target is ` +
            `[${target.shape}]`,
        );
      }
      const err = tf.mean(tf.squaredDifference(pred, target), -1); // [B*Km]
      return err.reshape([plan.batch, plan.numMasked]) as tf.Tensor2D; // [B, Km]
    });
  } finally {
    pred.dispose();
    own?.dispose();
  }
}

/**
 * Raw per-patch errors of a batch over several plans: each patch's error averaged over the
 * plans that mask it; a patch no plan masks gets its image's mean error (neutral).
 *
 * @param patches [B*L, p*p*C]
 * @param plans plans over the L patches
 * @returns [B, L] host errors (not normalised)
 */
export async function lossErrorMap(
  model: MimModel,
  patches: tf.Tensor2D,
  plans: readonly MaskPlan[],
): Promise<Float32Array> {
  if (plans.length === 0) throw new RangeError("lossErrorMap: no plan");
  const { batch: B, numPatches: L } = plans[0];
  const sum = new Float64Array(B * L);
  const count = new Uint32Array(B * L);
  const targets = allTargets(model, patches); // [B*L, Dt], the same for every plan
  try {
    for (const plan of plans) {
      if (plan.batch !== B || plan.numPatches !== L) {
        throw new RangeError(`lossErrorMap: plans disagree on batch/patches`);
      }
      const e = patchErrors(model, patches, plan, targets);
      const err = (await e.data()) as Float32Array; // [B, Km]
      e.dispose();
      for (let b = 0; b < B; b++) {
        for (let k = 0; k < plan.numMasked; k++) {
          const i = b * L + plan.masked[b * plan.numMasked + k];
          sum[i] += err[b * plan.numMasked + k];
          count[i]++;
        }
      }
    }
  } finally {
    targets.dispose();
  }
  const out = new Float32Array(B * L);
  for (let b = 0; b < B; b++) {
    let s = 0, n = 0;
    for (let i = b * L; i < (b + 1) * L; i++) {
      if (count[i] > 0) {
        out[i] = sum[i] / count[i];
        s += out[i];
        n++;
      }
    }
    for (let i = b * L; i < (b + 1) * L; i++) if (count[i] === 0) out[i] = n > 0 ? s / n : 0;
  }
  return out;
}

/** What {@linkcode computeLossSaliency} takes besides the common pass options. */
export interface LossSaliencyOptions extends SaliencyPassOptions {
  /**
   * The plans of the batch of `n` images starting at dataset index `start`, over the L
   * patches (the planner uses {@linkcode coveringPatchPlans}).
   */
  plans: (n: number, start: number) => MaskPlan[];
}

/**
 * The `loss` saliency of every (un-augmented, resized) image: per-patch reconstruction error
 * under `opts.plans`, min-max normalised per image ({@linkcode lossErrorMap}).
 */
export function computeLossSaliency(
  model: MimModel,
  dataset: Dataset,
  opts: LossSaliencyOptions,
): Promise<SaliencyPass> {
  const enc = model.encoder;
  const L = enc.numPatches;
  return saliencyOverDataset(
    dataset,
    { numPatches: L, patchSize: enc.shape.patchSize },
    opts,
    async (patches, n, start) => {
      const x = tf.tensor2d(patches, [n * L, enc.patchDim]); // [n*L, ppc]
      try {
        return minMaxHost(await lossErrorMap(model, x, opts.plans(n, start)), L);
      } finally {
        x.dispose();
      }
    },
  );
}

/** Per-row min-max of `[B, L]` host values, as `minMaxRows` (a constant row becomes 0). */
export function minMaxHost(x: Float32Array, L: number): Float32Array {
  const out = new Float32Array(x.length);
  for (let r = 0; r < x.length; r += L) {
    let lo = Infinity, hi = -Infinity;
    for (let i = r; i < r + L; i++) {
      lo = Math.min(lo, x[i]);
      hi = Math.max(hi, x[i]);
    }
    const range = Math.max(hi - lo, 1e-12);
    for (let i = r; i < r + L; i++) out[i] = (x[i] - lo) / range;
  }
  return out;
}

/**
 * {@linkcode coveringPlans} for a batch, over mask units of `k x k` patches, expanded to the
 * patch grid.
 *
 * @param unitPatches k, patches per mask-unit side (1 for MAE)
 */
export function coveringPatchPlans(
  batch: number,
  numPatches: number,
  unitPatches: number,
  maskCount: number,
  rng: Rng,
): MaskPlan[] {
  const k = unitPatches;
  const U = numPatches / (k * k);
  const plans = coveringPlans(batch, U, maskCount, rng);
  return k > 1 ? plans.map((p) => expandUnitPlan(p, k)) : plans;
}
