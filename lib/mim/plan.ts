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
  /** Called after each finished epoch (AMT recomputes saliency here). */
  afterEpoch?(epoch: number): Promise<Record<string, number | string> | void>;
  /** Arrays to store in checkpoints. */
  saveState?(): Map<string, { shape: number[]; data: Float32Array | Int32Array | Uint8Array }>;
  loadState?(arrays: Map<string, { shape: number[]; data: Float32Array | Int32Array | Uint8Array }>): void;
}
