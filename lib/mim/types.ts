/**
 * The interface every MIM method implements, so the trainer, AMT and the
 * evaluation code never depend on a particular method.
 *
 * @module
 */
import type * as tf from "@tensorflow/tfjs";
import type { ParamStore } from "../vit/params.ts";
import type { VisionTransformer } from "../vit/vit.ts";
import type { MaskPlan } from "./plan.ts";

/** Per-step training options of the encoder (stochastic depth). */
export interface TrainCall {
  dropPath: number;
  seed: number;
}

/**
 * The layout of a feature-target row (MaskFeat's HOG), for figures: per
 * patch `cellsPerSide^2` cells of `cellSize` px, each `channels x bins`
 * values, ordered `(cell row, cell col, channel, bin)`.
 */
export interface FeatureLayout {
  /** "hog": oriented-gradient histograms, bin b covering [b, b + 1) * 180 / bins degrees. */
  readonly kind: "hog";
  /** Values per patch (F). */
  readonly dim: number;
  readonly cellsPerSide: number;
  readonly cellSize: number;
  readonly channels: number;
  readonly bins: number;
}

/** The targets of a method that regresses features of the patches instead of their pixels. */
export interface FeatureTargets extends FeatureLayout {
  /**
   * Targets of every patch, without gradient.
   *
   * @param patches [B*L, p*p*C] normalised patch pixels
   * @returns [B*L, F]
   */
  compute(patches: tf.Tensor2D): tf.Tensor2D;
}

/** A masked-image-modeling model (MAE, SimMIM, MaskFeat, ...). */
export interface MimModel {
  /** "mae" | "simmim" | "maskfeat" */
  readonly method: string;
  readonly store: ParamStore;
  readonly encoder: VisionTransformer;
  /**
   * Training loss for a batch under a plan. Call inside `tf.variableGrads` or
   * `tf.tidy`: it creates (and leaves to the caller's scope) index tensors.
   *
   * @param patches [B*L, p*p*C] normalised patch pixels
   * @param train encoder stochastic depth for this step (rate of the last block, draw seed);
   *   omit for none
   */
  lossFn(patches: tf.Tensor2D, plan: MaskPlan, train?: TrainCall): tf.Scalar;
  /**
   * Reconstructed pixels of the masked patches, [B*Km, p*p*C] in the target
   * space (normalised per patch when the loss is), for figures. No gradient.
   * A feature-target model ({@linkcode MimModel.features}) returns its
   * predicted features instead, [B*Km, F].
   */
  predict(patches: tf.Tensor2D, plan: MaskPlan): tf.Tensor2D;
  /** Whether targets are per-patch normalised (figures undo it with the patch stats). */
  readonly normPixLoss: boolean;
  /**
   * Present when the model regresses features of the patches (MaskFeat's HOG)
   * rather than pixels; undefined for pixel methods (MAE, SimMIM).
   */
  readonly features?: FeatureTargets;
  dispose(): void;
}
