/**
 * Attention rollout (Abnar & Zuidema 2020, "Quantifying Attention Flow in
 * Transformers"): how much each input token reaches the CLS output through
 * every block, residual paths included. Per block `l` the heads are averaged,
 * the identity is added for the residual connection and the rows are
 * renormalised,
 *
 *     Â_l = (mean_h A_l + I) / rowsum(mean_h A_l + I),
 *
 * and the blocks are multiplied from the first up, `R = Â_n ... Â_2 Â_1`. The
 * map is the CLS row of `R` over the patch columns, min-max normalised per
 * image (`amt.saliency: rollout`).
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import type { VisionTransformer } from "../vit/vit.ts";
import { minMaxRows } from "./_minmax.ts";

/**
 * One block of the rollout: `Â @ R` with `Â` the head-averaged attention plus the identity,
 * rows renormalised. The caller disposes both inputs.
 *
 * @param rollout [B, T, T] the product of the blocks before, or null before the first
 * @param attention [B, H, T, T] this block's post-softmax attention
 * @returns [B, T, T]
 */
export function rolloutStep(rollout: tf.Tensor3D | null, attention: tf.Tensor4D): tf.Tensor3D {
  return tf.tidy(() => {
    const T = attention.shape[2];
    const a = tf.add(tf.mean(attention, 1), tf.eye(T)); // [B, T, T]: heads averaged, + residual
    const hat = tf.div(a, tf.sum(a, -1, true)) as tf.Tensor3D; // [B, T, T]: rows sum to 1
    return rollout ? tf.matMul(hat, rollout) : hat; // [B, T, T]
  });
}

/**
 * The CLS row of the rollout of `attentions` (first block first) over the patch columns, not
 * normalised: `R[:, 0, P:]` with `R = Â_n ... Â_1`.
 *
 * @param attentions one [B, H, T, T] per block
 * @param prefix P, the tokens before the patches (1 + registers)
 * @returns [B, T - P]
 */
export function attentionRollout(attentions: readonly tf.Tensor4D[], prefix = 1): tf.Tensor2D {
  if (attentions.length === 0) throw new RangeError("attentionRollout: no attention to roll out");
  return tf.tidy(() => {
    let r: tf.Tensor3D | null = null;
    for (const a of attentions) r = rolloutStep(r, a);
    return clsRow(r!, prefix);
  });
}

/** `R[:, 0, P:]`: [B, T, T] → [B, T - P]. */
function clsRow(r: tf.Tensor3D, prefix: number): tf.Tensor2D {
  const [B, T] = r.shape;
  return r.slice([0, 0, prefix], [B, 1, T - prefix]).reshape([B, T - prefix]); // [B, L]
}

/**
 * `rollout` saliency of a batch: the rollout of every encoder block on all patches, one block
 * in memory at a time, CLS row over the patches, min-max per image.
 *
 * @param patches [B, L, p*p*C]
 * @returns [B, L] in [0, 1]
 */
export function rolloutSaliency(encoder: VisionTransformer, patches: tf.Tensor3D): tf.Tensor2D {
  let r: tf.Tensor3D | null = null;
  try {
    encoder.forEachAttention(patches, (attention) => {
      const next = tf.keep(rolloutStep(r, attention)); // outlives the block's scope
      r?.dispose();
      r = next;
    });
    const done = r as tf.Tensor3D | null;
    if (!done) throw new RangeError("rolloutSaliency: the encoder has no blocks");
    return tf.tidy(() => minMaxRows(clsRow(done, encoder.prefixTokens)));
  } finally {
    (r as tf.Tensor3D | null)?.dispose();
  }
}
