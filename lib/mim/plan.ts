/**
 * The mask plan: the one seam between masking strategies (random, AMT, ...)
 * and MIM methods (MAE, SimMIM).
 *
 * Convention: every patch of every image is in exactly one of three groups.
 * - masked: hidden from the encoder and reconstructed (in the loss);
 * - thrown: never computed (no input, no decoder slot, no loss);
 * - visible: seen by the encoder.
 * Each group has the same size for all images of a batch, so the plan is
 * three rectangular index tables, flattened row-major, each row sorted
 * ascending (spatial order).
 *
 * @module
 */

/** Masked / thrown / visible patch indices for a batch. */
export interface MaskPlan {
  /** Images in the batch (B). */
  batch: number;
  /** Patches per image (L). */
  numPatches: number;
  numMasked: number;
  numThrown: number;
  numVisible: number;
  /** [B, numMasked] patch indices in 0..L-1. */
  masked: Int32Array;
  /** [B, numThrown] */
  thrown: Int32Array;
  /** [B, numVisible] */
  visible: Int32Array;
}

/** What a planner sees for one batch. */
export interface PlanContext {
  /** 0-based epoch. */
  epoch: number;
  /** Global optimiser step. */
  step: number;
  /** Uniform [0, 1) source for this batch's masks. */
  rng: () => number;
  /** Dataset indices of the batch's images. */
  indices: Int32Array;
  /** Each image's crop box (normalised; see `applyCrop`). */
  boxes: readonly import("../data/types.ts").CropBox[];
  /** Model input side in pixels and patch size. */
  imageSize: number;
  patchSize: number;
}

/**
 * A masking strategy: random masking, AMT, or an ablation. The trainer asks it
 * for a plan per batch and tells it when epochs end; its state is saved with
 * checkpoints.
 */
export interface MaskPlanner {
  readonly name: string;
  /** Plan for one batch. */
  plan(batch: number, numPatches: number, ctx: PlanContext): MaskPlan;
  /** Phase label for logs, e.g. "random", "warmup", "amt". */
  phase(epoch: number): string;
  /**
   * Called after every optimiser step, once the weights have changed (AMT's EMA teacher
   * follows the encoder here). Queues device work only: no host read.
   */
  afterStep?(): void;
  /** Called after each finished epoch (AMT recomputes saliency here). */
  afterEpoch?(epoch: number): Promise<Record<string, number | string> | void>;
  /** Arrays to store in checkpoints. */
  saveState?(): Map<string, { shape: number[]; data: Float32Array | Int32Array | Uint8Array }>;
  loadState?(
    arrays: Map<string, { shape: number[]; data: Float32Array | Int32Array | Uint8Array }>,
  ): void;
  /** Frees tensors the planner owns (AMT's EMA teacher); the model is not the planner's. */
  dispose?(): void;
}

/** The patch groups of one image. */
export interface ImagePlan {
  masked: ArrayLike<number>;
  thrown: ArrayLike<number>;
  visible: ArrayLike<number>;
}

/** Image `b`'s rows of a batch {@linkcode MaskPlan} (views, no copy). */
export function planForImage(plan: MaskPlan, b: number): ImagePlan {
  if (!Number.isInteger(b) || b < 0 || b >= plan.batch) {
    throw new Error(`planForImage: image ${b} is not in 0..${plan.batch - 1}`);
  }
  return {
    masked: plan.masked.subarray(b * plan.numMasked, (b + 1) * plan.numMasked),
    thrown: plan.thrown.subarray(b * plan.numThrown, (b + 1) * plan.numThrown),
    visible: plan.visible.subarray(b * plan.numVisible, (b + 1) * plan.numVisible),
  };
}

/**
 * Maps a plan over mask units to a plan over patches, for SimMIM's mask unit
 * of `k x k` patches (`unit = k * patchSize`): unit `(r, c)` of a grid
 * `gridWidth` units wide becomes patches `(r*k + dy, c*k + dx)`,
 * `0 <= dy, dx < k`, of the patch grid `gridWidth * k` patches wide.
 *
 * @param plan a plan over `U = gridHeight * gridWidth` units.
 * @param k patches per unit side (1 returns an equal copy).
 * @param gridWidth units per row of the unit grid; default `sqrt(U)`, which
 *   must then be an integer.
 * @returns a plan over `U * k * k` patches; counts scaled by `k * k`, each
 *   row sorted ascending.
 *
 * @example
 * ```ts
 * import { expandUnitPlan } from "./plan.ts";
 * // A 2x2 unit grid over a 4x4 patch grid; unit 3 is masked.
 * const plan = {
 *   batch: 1, numPatches: 4, numMasked: 1, numThrown: 1, numVisible: 2,
 *   masked: Int32Array.of(3), thrown: Int32Array.of(0), visible: Int32Array.of(1, 2),
 * };
 * const p = expandUnitPlan(plan, 2);
 * if (p.masked.join() !== "10,11,14,15") throw new Error();
 * ```
 */
export function expandUnitPlan(plan: MaskPlan, k: number, gridWidth?: number): MaskPlan {
  if (!Number.isInteger(k) || k < 1) {
    throw new RangeError(`k (patches per unit side) must be a positive integer, got ${k}`);
  }
  const U = plan.numPatches;
  const gw = gridWidth ?? Math.round(Math.sqrt(U));
  const bad = gridWidth === undefined
    ? gw * gw !== U
    : !Number.isInteger(gw) || gw < 1 || U % gw !== 0;
  if (bad) {
    throw new RangeError(
      gridWidth === undefined
        ? `plan.numPatches=${U} is not a square unit grid; pass gridWidth`
        : `gridWidth=${gridWidth} does not divide plan.numPatches=${U}`,
    );
  }
  const { batch, numMasked, numThrown, numVisible } = plan;
  if (numMasked + numThrown + numVisible !== U) {
    throw new RangeError(
      `plan counts ${numMasked}+${numThrown}+${numVisible} do not add up to numPatches=${U}`,
    );
  }
  const kk = k * k;
  const patchWidth = gw * k; // patches per row of the patch grid
  const expand = (src: Int32Array, n: number, name: string): Int32Array => {
    if (src.length !== batch * n) {
      throw new RangeError(`plan.${name} has length ${src.length}, expected ${batch}*${n}`);
    }
    const dst = new Int32Array(batch * n * kk); // [B, n * k * k]
    for (let b = 0; b < batch; b++) {
      let o = b * n * kk;
      for (let j = 0; j < n; j++) {
        const u = src[b * n + j];
        if (!(u >= 0 && u < U)) {
          throw new RangeError(`plan.${name}[${b}, ${j}] = ${u} is outside 0..${U - 1}`);
        }
        const top = Math.floor(u / gw) * k, left = (u % gw) * k;
        for (let dy = 0; dy < k; dy++) {
          for (let dx = 0; dx < k; dx++) dst[o++] = (top + dy) * patchWidth + left + dx;
        }
      }
      dst.subarray(b * n * kk, (b + 1) * n * kk).sort();
    }
    return dst;
  };
  return {
    batch,
    numPatches: U * kk,
    numMasked: numMasked * kk,
    numThrown: numThrown * kk,
    numVisible: numVisible * kk,
    masked: expand(plan.masked, numMasked, "masked"),
    thrown: expand(plan.thrown, numThrown, "thrown"),
    visible: expand(plan.visible, numVisible, "visible"),
  };
}
