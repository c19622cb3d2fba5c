/**
 * MaskFeat (Wei et al., CVPR 2022) driven by a mask plan: masked patches are
 * replaced by a learnable mask token in the encoder (as SimMIM), and a linear
 * head predicts each masked patch's histogram of oriented gradients
 * (`hog.ts`); the loss is the mean squared error over masked patches only.
 * Thrown patches (AMT) are removed before the encoder and are in no loss.
 *
 * Stages: `encode` (encoder on `[CLS | visible | mask tokens]`, the token
 * layout of our SimMIM: the encoder is permutation-equivariant, so this equals
 * the spatial layout) → `decode` (the head on the masked tokens) → `targets`
 * (HOG of every patch, from the un-masked patches) → `loss`.
 *
 * MaskFeat masks with BEiT's block-wise masking; here masking is SimMIM's
 * random masking of mask units (2 x 2 patches where they tile the image, else
 * patches) with its `ceil` count, at MaskFeat's ratio 0.4 (see its entry in
 * `methods.ts`), so AMT plans plug in with the same counts as SimMIM's.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { Linear } from "../vit/layers.ts";
import { ParamStore } from "../vit/params.ts";
import type { VitShape } from "../vit/presets.ts";
import { VisionTransformer } from "../vit/vit.ts";
import { type HogOptions, HogTargets } from "./hog.ts";
import { type PlanTensors, uploadPlan } from "./mae.ts";
import type { MaskPlan } from "./plan.ts";
import type { MimModel, TrainCall } from "./types.ts";
import { encodeWithMaskTokens, headOnMasked, withPlan } from "./simmim.ts";

/** MaskFeat options. */
export interface MaskFeatOptions {
  shape: VitShape;
  seed: number;
  /** HOG target settings (default `HOG_DEFAULTS` of `hog.ts`: 2 px cells, 9 bins, no window, per patch). */
  hog?: Partial<HogOptions>;
}

/** MaskFeat encoder + linear HOG head, owning its parameters and HOG index tables. */
export class MaskFeat implements MimModel {
  readonly method = "maskfeat";
  /** HOG targets are L2-normalised by construction; there is no pixel normalisation to undo. */
  readonly normPixLoss = false;
  readonly store: ParamStore;
  readonly encoder: VisionTransformer;
  readonly maskToken: tf.Variable;
  readonly head: Linear;
  /** The HOG target of every patch (also {@linkcode MimModel.features}). */
  readonly features: HogTargets;

  constructor(readonly options: MaskFeatOptions) {
    const s = options.shape;
    this.features = new HogTargets(
      { imageSize: s.imageSize, patchSize: s.patchSize, channels: s.channels },
      options.hog,
    );
    this.store = new ParamStore(options.seed);
    this.encoder = new VisionTransformer(this.store, s, "encoder");
    this.maskToken = this.store.create("encoder.mask_token", [1, 1, s.dim], {
      kind: "normal",
      std: 0.02,
    }, false);
    this.head = new Linear(this.store, "head", s.dim, this.features.dim);
  }

  /**
   * Encoder on `[CLS | visible | mask tokens]`; thrown patches get no token.
   *
   * @param patches [B*L, p*p*C]
   * @param train stochastic depth of this step (none when omitted)
   * @returns tokens [B, 1+Kv+Km, D]
   */
  encode(patches: tf.Tensor2D, plan: MaskPlan, idx: PlanTensors, train?: TrainCall): tf.Tensor3D {
    return encodeWithMaskTokens(this.encoder, this.maskToken, patches, plan, idx, train);
  }

  /**
   * Head on the masked tokens.
   *
   * @param tokens [B, 1+Kv+Km, D]
   * @returns predicted HOG [B*Km, F], row-major as `plan.masked`
   */
  decode(tokens: tf.Tensor3D, plan: MaskPlan): tf.Tensor2D {
    return headOnMasked(this.head, tokens, plan);
  }

  /**
   * HOG of every patch of the un-masked images (see `hog.ts`).
   *
   * @param patches [B*L, p*p*C]
   * @returns [B*L, F]
   */
  targets(patches: tf.Tensor2D): tf.Tensor2D {
    return this.features.compute(patches);
  }

  /**
   * Mean squared error over the masked patches' HOG only: the rows of visible
   * and thrown patches in `targets` are never read.
   *
   * @param pred [B*Km, F]
   * @param targets [B*L, F]
   */
  loss(pred: tf.Tensor2D, targets: tf.Tensor2D, idx: PlanTensors): tf.Scalar {
    const target = tf.gather(targets, idx.maskedFlat); // [B*Km, F]
    return tf.mean(tf.squaredDifference(pred, target)) as tf.Scalar;
  }

  /** {@link MimModel.lossFn}: upload the plan, then encode → decode → targets → loss. */
  lossFn(patches: tf.Tensor2D, plan: MaskPlan, train?: TrainCall): tf.Scalar {
    const idx = uploadPlan(plan);
    const pred = this.decode(this.encode(patches, plan, idx, train), plan);
    return this.loss(pred, this.targets(patches), idx);
  }

  /** {@link MimModel.predict}: the predicted HOG of the masked patches, [B*Km, F]. */
  predict(patches: tf.Tensor2D, plan: MaskPlan): tf.Tensor2D {
    return withPlan(plan, (idx) => this.decode(this.encode(patches, plan, idx), plan));
  }

  /** Trainable variables. */
  variables(): tf.Variable[] {
    return this.store.variables();
  }

  dispose(): void {
    this.encoder.dispose();
    this.features.dispose();
    this.store.dispose();
  }
}
