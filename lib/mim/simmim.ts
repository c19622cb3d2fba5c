/**
 * SimMIM (Xie et al., 2022) driven by a mask plan.
 *
 * Masked patches enter the encoder as a learnable mask token (plus their
 * position embedding), visible patches as their embeddings; thrown patches
 * (AMT) are removed before the encoder. A per-token linear head predicts the
 * pixels of each masked patch; the loss is L1 over masked pixels.
 *
 * As in our MAE, tokens are laid out as `[CLS | visible | masked]`: the
 * encoder is permutation-equivariant, so this equals SimMIM's spatial layout
 * and needs no scatter with a gradient.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { Linear, repeatToken } from "../vit/layers.ts";
import { ParamStore } from "../vit/params.ts";
import type { VitShape } from "../vit/presets.ts";
import { VisionTransformer } from "../vit/vit.ts";
import { disposePlanTensors, type PlanTensors, uploadPlan } from "./mae.ts";
import type { MaskPlan } from "./plan.ts";
import type { MimModel, TrainCall } from "./types.ts";

/** SimMIM options. */
export interface SimMimOptions {
  shape: VitShape;
  seed: number;
}

/**
 * The mask-token encoder of SimMIM (and MaskFeat): the encoder on `[CLS | visible | mask
 * tokens]`, each mask token plus its patch's position; thrown patches get no token.
 *
 * @param patches [B*L, p*p*C]
 * @param train stochastic depth of this step (none when omitted)
 * @returns tokens [B, 1+Kv+Km, D]
 */
export function encodeWithMaskTokens(
  encoder: VisionTransformer,
  maskToken: tf.Variable,
  patches: tf.Tensor2D,
  plan: MaskPlan,
  idx: PlanTensors,
  train?: TrainCall,
): tf.Tensor3D {
  const B = plan.batch, Km = plan.numMasked, D = encoder.shape.dim;
  const visible = encoder.embed(patches, idx.visibleFlat, idx.visiblePos, B); // [B, 1+Kv, D]
  const masked = tf.add(
    repeatToken(maskToken, B, Km),
    tf.gather(encoder.patchPos(), idx.maskedPos).reshape([B, Km, D]),
  ); // [B, Km, D]
  const x = tf.concat([visible, masked], 1) as tf.Tensor3D; // [B, 1+Kv+Km, D]
  return encoder.forwardTokens(x, false, train).tokens;
}

/**
 * The mask-token methods' head on the masked tokens (after CLS and the visible ones), one row
 * per masked patch in `plan.masked` order.
 *
 * @param tokens [B, 1+Kv+Km, D]
 * @returns [B*Km, out]
 */
export function headOnMasked(head: Linear, tokens: tf.Tensor3D, plan: MaskPlan): tf.Tensor2D {
  const B = plan.batch, Km = plan.numMasked, D = tokens.shape[2];
  const out = tokens.slice([0, 1 + plan.numVisible, 0], [B, Km, D]); // [B, Km, D]
  const y = head.apply(out); // [B, Km, out]
  return y.reshape([B * Km, y.shape[y.shape.length - 1]]) as tf.Tensor2D;
}

/** `f(idx)` in a tidy scope with the plan uploaded, and the plan's tensors freed after. */
export function withPlan(plan: MaskPlan, f: (idx: PlanTensors) => tf.Tensor2D): tf.Tensor2D {
  const idx = uploadPlan(plan);
  try {
    return tf.tidy(() => f(idx));
  } finally {
    disposePlanTensors(idx);
  }
}

/** SimMIM encoder + linear head, owning its parameters. */
export class SimMim implements MimModel {
  readonly method = "simmim";
  readonly normPixLoss = false;
  readonly store: ParamStore;
  readonly encoder: VisionTransformer;
  readonly maskToken: tf.Variable;
  readonly head: Linear;

  constructor(readonly options: SimMimOptions) {
    this.store = new ParamStore(options.seed);
    this.encoder = new VisionTransformer(this.store, options.shape, "encoder");
    this.maskToken = this.store.create("encoder.mask_token", [1, 1, options.shape.dim], {
      kind: "normal",
      std: 0.02,
    }, false);
    this.head = new Linear(this.store, "head", options.shape.dim, this.encoder.patchDim);
  }

  /**
   * Encoder on `[CLS | visible | mask tokens]`.
   *
   * @param patches [B*L, p*p*C]
   * @param train stochastic depth of this step (SimMIM pre-trains with 0.1; none when omitted)
   * @returns tokens [B, 1+Kv+Km, D]
   */
  encode(patches: tf.Tensor2D, plan: MaskPlan, idx: PlanTensors, train?: TrainCall): tf.Tensor3D {
    return encodeWithMaskTokens(this.encoder, this.maskToken, patches, plan, idx, train);
  }

  /** Head on the masked tokens: [B*Km, p*p*C]. */
  decode(tokens: tf.Tensor3D, plan: MaskPlan): tf.Tensor2D {
    return headOnMasked(this.head, tokens, plan);
  }

  /** L1 over masked pixels / (masked pixels * C), i.e. the mean absolute error. */
  loss(patches: tf.Tensor2D, pred: tf.Tensor2D, idx: PlanTensors): tf.Scalar {
    const target = tf.gather(patches, idx.maskedFlat); // [B*Km, ppc]
    return tf.mean(tf.abs(tf.sub(pred, target))) as tf.Scalar;
  }

  lossFn(patches: tf.Tensor2D, plan: MaskPlan, train?: TrainCall): tf.Scalar {
    const idx = uploadPlan(plan);
    return this.loss(patches, this.decode(this.encode(patches, plan, idx, train), plan), idx);
  }

  predict(patches: tf.Tensor2D, plan: MaskPlan): tf.Tensor2D {
    return withPlan(plan, (idx) => this.decode(this.encode(patches, plan, idx), plan));
  }

  variables(): tf.Variable[] {
    return this.store.variables();
  }

  dispose(): void {
    this.encoder.dispose();
    this.store.dispose();
  }
}
