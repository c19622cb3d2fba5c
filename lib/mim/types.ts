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

/** A masked-image-modeling model (MAE, SimMIM, ...). */
export interface MimModel {
  /** "mae" | "simmim" */
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
   */
  predict(patches: tf.Tensor2D, plan: MaskPlan): tf.Tensor2D;
  /** Whether targets are per-patch normalised (figures undo it with the patch stats). */
  readonly normPixLoss: boolean;
  dispose(): void;
}
