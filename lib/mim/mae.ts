/**
 * Masked Autoencoder (He et al., 2022) driven by a mask plan.
 *
 * Stages: `encode` (CLS + visible tokens through the encoder) → `decode`
 * (decoder on CLS + visible + mask tokens) → `loss` (MSE on masked patches).
 * Thrown patches (AMT) are in no input, no decoder slot and no loss.
 *
 * The decoder is permutation-equivariant (per-token norms/MLPs, attention
 * without a causal mask; positions enter only through the added position
 * embeddings), so instead of scattering tokens back into spatial order we lay
 * them out as `[CLS | visible | masked]` with each token's own decoder position
 * embedding. The outputs are MAE's unshuffled outputs, permuted; no gather
 * with a gradient is needed (wasm has none).
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { Block, LayerNorm, Linear, repeatToken } from "../vit/layers.ts";
import { ParamStore } from "../vit/params.ts";
import { sincosPosEmbed2d } from "../vit/pos_embed.ts";
import type { VitShape } from "../vit/presets.ts";
import { flatIndices, VisionTransformer } from "../vit/vit.ts";
import type { MaskPlan } from "./plan.ts";
import type { MimModel, TrainCall } from "./types.ts";

/** MAE options. */
export interface MaeOptions {
  shape: VitShape;
  /** Per-patch normalised targets `(x - mean) / sqrt(var + 1e-6)`. */
  normPixLoss: boolean;
  seed: number;
}

/** Index tensors for one plan, uploaded once per batch. */
export interface PlanTensors {
  visibleFlat: tf.Tensor1D; // [B*Kv] rows b*L+i
  visiblePos: tf.Tensor1D; // [B*Kv] positions i
  maskedFlat: tf.Tensor1D; // [B*Km]
  maskedPos: tf.Tensor1D; // [B*Km]
}

/** Upload a plan's index tables. Caller disposes (see {@link disposePlanTensors}). */
export function uploadPlan(plan: MaskPlan): PlanTensors {
  const L = plan.numPatches;
  return {
    visibleFlat: tf.tensor1d(flatIndices(plan.visible, plan.batch, plan.numVisible, L), "int32"),
    visiblePos: tf.tensor1d(plan.visible, "int32"),
    maskedFlat: tf.tensor1d(flatIndices(plan.masked, plan.batch, plan.numMasked, L), "int32"),
    maskedPos: tf.tensor1d(plan.masked, "int32"),
  };
}

/** Dispose what {@link uploadPlan} created. */
export function disposePlanTensors(t: PlanTensors): void {
  t.visibleFlat.dispose();
  t.visiblePos.dispose();
  t.maskedFlat.dispose();
  t.maskedPos.dispose();
}

/** Per-patch normalisation of targets (unbiased variance, as torch.var). */
export function normalizePatches(target: tf.Tensor2D): tf.Tensor2D {
  return tf.tidy(() => {
    const n = target.shape[1];
    const mean = tf.mean(target, -1, true);
    const centered = tf.sub(target, mean);
    const variance = tf.div(tf.sum(tf.square(centered), -1, true), n - 1);
    return tf.div(centered, tf.sqrt(tf.add(variance, 1e-6))) as tf.Tensor2D;
  });
}

/** MAE encoder + decoder, owning its parameters. */
export class MaskedAutoencoder implements MimModel {
  readonly method = "mae";
  readonly store: ParamStore;
  readonly encoder: VisionTransformer;
  readonly decoderEmbed: Linear;
  readonly maskToken: tf.Variable;
  /** Fixed sin-cos table [L, Dd]; the CLS position is zero. */
  readonly decoderPos: tf.Tensor2D;
  readonly decoderBlocks: Block[];
  readonly decoderNorm: LayerNorm;
  readonly decoderPred: Linear;

  constructor(readonly options: MaeOptions) {
    const s = options.shape;
    this.store = new ParamStore(options.seed);
    this.encoder = new VisionTransformer(this.store, s, "encoder");
    const Dd = s.decoderDim;
    this.decoderEmbed = new Linear(this.store, "decoder.embed", s.dim, Dd);
    // MAE's parameter groups decay the CLS and mask tokens (only 1-D parameters and biases are
    // excluded, and its pos_embed is fixed)
    this.maskToken = this.store.create("decoder.mask_token", [1, 1, Dd], {
      kind: "normal",
      std: 0.02,
    }, true);
    this.store.setDecay("encoder.cls_token", true);
    if (this.encoder.registers) this.store.setDecay("encoder.registers", true); // a token table too
    const g = this.encoder.gridSize;
    this.decoderPos = tf.keep(tf.tensor2d(sincosPosEmbed2d(Dd, g), [g * g, Dd]));
    this.decoderBlocks = [];
    for (let i = 0; i < s.decoderDepth; i++) {
      this.decoderBlocks.push(
        new Block(this.store, `decoder.blocks.${i}`, Dd, s.decoderHeads, s.mlpRatio),
      );
    }
    this.decoderNorm = new LayerNorm(this.store, "decoder.norm", Dd);
    this.decoderPred = new Linear(this.store, "decoder.pred", Dd, this.encoder.patchDim);
  }

  /**
   * Encoder on CLS + visible tokens.
   *
   * @param patches [B*L, p*p*C]
   * @param train stochastic depth of this step (none when omitted)
   * @returns latent [B, 1+Kv, D]
   */
  encode(patches: tf.Tensor2D, plan: MaskPlan, idx: PlanTensors, train?: TrainCall): tf.Tensor3D {
    const x = this.encoder.embed(patches, idx.visibleFlat, idx.visiblePos, plan.batch);
    return this.encoder.forwardTokens(x, false, train).tokens;
  }

  /**
   * Decoder on `[CLS | visible | masked]`; thrown patches get no slot.
   *
   * @param latent [B, 1+Kv, D]
   * @returns predicted pixels of the masked patches, [B*Km, p*p*C], row-major as `plan.masked`
   */
  decode(latent: tf.Tensor3D, plan: MaskPlan, idx: PlanTensors): tf.Tensor2D {
    const B = plan.batch, Kv = plan.numVisible, Km = plan.numMasked;
    const Dd = this.options.shape.decoderDim;
    const x = this.decoderEmbed.apply(latent) as tf.Tensor3D; // [B, 1+Kv, Dd]
    const cls = x.slice([0, 0, 0], [B, 1, Dd]); // [B, 1, Dd] (CLS position is 0)
    const vis = tf.add(
      x.slice([0, 1, 0], [B, Kv, Dd]),
      tf.gather(this.decoderPos, idx.visiblePos).reshape([B, Kv, Dd]),
    ); // [B, Kv, Dd]
    const masked = tf.add(
      repeatToken(this.maskToken, B, Km),
      tf.gather(this.decoderPos, idx.maskedPos).reshape([B, Km, Dd]),
    ); // [B, Km, Dd]
    let h = tf.concat([cls, vis, masked], 1) as tf.Tensor3D; // [B, 1+Kv+Km, Dd]
    for (const block of this.decoderBlocks) h = block.apply(h).out;
    h = this.decoderNorm.apply(h) as tf.Tensor3D;
    const out = h.slice([0, 1 + Kv, 0], [B, Km, Dd]); // [B, Km, Dd]
    return this.decoderPred.apply(out).reshape([B * Km, this.encoder.patchDim]) as tf.Tensor2D;
  }

  /**
   * Mean squared error over masked patches only.
   *
   * @param patches [B*L, p*p*C] the un-masked images' patches (targets come from here)
   * @param pred [B*Km, p*p*C]
   */
  loss(patches: tf.Tensor2D, pred: tf.Tensor2D, idx: PlanTensors): tf.Scalar {
    let target = tf.gather(patches, idx.maskedFlat) as tf.Tensor2D; // [B*Km, ppc]
    if (this.options.normPixLoss) target = normalizePatches(target);
    return tf.mean(tf.squaredDifference(pred, target)) as tf.Scalar;
  }

  /** encode → decode → loss. */
  forward(patches: tf.Tensor2D, plan: MaskPlan, idx: PlanTensors, train?: TrainCall): {
    loss: tf.Scalar;
    pred: tf.Tensor2D;
  } {
    const latent = this.encode(patches, plan, idx, train);
    const pred = this.decode(latent, plan, idx);
    return { loss: this.loss(patches, pred, idx), pred };
  }

  /** {@link MimModel.lossFn}: upload the plan, then encode → decode → loss. */
  lossFn(patches: tf.Tensor2D, plan: MaskPlan, train?: TrainCall): tf.Scalar {
    const idx = uploadPlan(plan);
    return this.forward(patches, plan, idx, train).loss;
  }

  /** {@link MimModel.predict} */
  predict(patches: tf.Tensor2D, plan: MaskPlan): tf.Tensor2D {
    const idx = uploadPlan(plan);
    try {
      return tf.tidy(() => this.decode(this.encode(patches, plan, idx), plan, idx));
    } finally {
      disposePlanTensors(idx);
    }
  }

  get normPixLoss(): boolean {
    return this.options.normPixLoss;
  }

  /** Trainable variables. */
  variables(): tf.Variable[] {
    return this.store.variables();
  }

  dispose(): void {
    this.encoder.dispose();
    this.decoderPos.dispose();
    this.store.dispose();
  }
}
