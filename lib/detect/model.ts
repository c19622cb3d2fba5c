/**
 * A ViTDet-style detector with instance masks, small enough for a CPU:
 *
 * 1. `backbone`: the ViT encoder on the whole image (window attention, a few
 *    global blocks, no CLS), giving one map at the patch stride `[B, G, G, D]`.
 * 2. `pyramid`: ViTDet's simple feature pyramid from that single map —
 *    2x2 deconvolutions for finer levels, identity, max-pooling for coarser —
 *    each followed by 1x1 and 3x3 convolutions with channel LayerNorm.
 * 3. `head` (one 3x3 tower shared by all levels and outputs), anchor-free as
 *    CenterNet: a class heatmap
 *    (focal loss on Gaussian targets), box offset and log-size at the centre
 *    cell, and mask coefficients; masks are the coefficients times a few
 *    prototype maps computed on the finest level (YOLACT), cropped to the box.
 *
 * Detection = 3x3 max-pool peak picking on the heatmaps, class-wise NMS
 * across levels, top-k. Masks: `sigmoid(coef · protos) > 0.5` inside the box.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { denseOp } from "../vit/layers.ts";
import { gelu } from "../vit/layers.ts";
import { type Param, ParamStore } from "../vit/params.ts";
import type { VitShape } from "../vit/presets.ts";
import { VisionTransformer } from "../vit/vit.ts";
import { ChannelNorm, Conv1x1, Conv3x3, Deconv2x2, fillBias } from "./_layers.ts";
import { VitBackbone } from "./backbone.ts";
import type { DetTargets } from "./targets.ts";

/** The detector's own shape (the backbone's comes from the ViT). */
export interface DetectorConfig {
  numClasses: number;
  /** Pyramid levels as scales of the patch grid: 4 | 2 (deconvolution), 1 (identity), 0.5 (max-pool). */
  scales: number[];
  /** Channels of pyramid and head. */
  width: number;
  /** Number of mask prototypes. */
  protos: number;
  /** Attention window in patches (0 = half the grid when even, else global). */
  windowSize: number;
  /** Blocks with global attention (empty = the last block). */
  globalBlocks: number[];
  /** Level assignment: an object's longer side is closest to this many cells of its level. */
  objectCells: number;
}

/** Defaults: two levels (stride patch/2 and patch) for small images. */
export const DETECTOR_DEFAULTS: Readonly<Omit<DetectorConfig, "numClasses">> = Object.freeze({
  scales: [2, 1],
  width: 64,
  protos: 8,
  windowSize: 0,
  globalBlocks: [],
  objectCells: 6,
});

/** Raw head outputs. */
export interface DetectorOutput {
  /** Per level: class logits [B, h, w, K]. */
  heat: tf.Tensor4D[];
  /** Per level: (dx, dy, log w, log h) [B, h, w, 4]. */
  reg: tf.Tensor4D[];
  /** Per level: mask coefficients [B, h, w, M]. */
  coef: tf.Tensor4D[];
  /** Mask prototypes on the finest level [B, hp, wp, M]. */
  protos: tf.Tensor4D;
}

/** Dispose every tensor of an output. */
export function disposeOutput(out: DetectorOutput): void {
  tf.dispose([...out.heat, ...out.reg, ...out.coef, out.protos]);
}

/** Loss terms (scalars, kept by the caller's scope). */
export interface DetectorLoss {
  total: tf.Scalar;
  heat: tf.Scalar;
  box: tf.Scalar;
  mask: tf.Scalar;
}

interface Level {
  scale: number;
  stride: number;
  size: number;
  up: Deconv2x2[];
  upNorm: ChannelNorm[];
  lateral: Conv1x1;
  lateralNorm: ChannelNorm;
  smooth: Conv3x3;
  smoothNorm: ChannelNorm;
}

/** A detector: a ViT backbone (its params named `encoder.*`), pyramid `sfp.*`, head `head.*`. */
export class Detector {
  readonly store: ParamStore;
  readonly vit: VisionTransformer;
  readonly backbone: VitBackbone;
  readonly levels: Level[];
  readonly tower: Conv3x3;
  readonly clsOut: Conv1x1;
  readonly regOut: Conv1x1;
  readonly protoTower: Conv3x3;
  readonly protoOut: Conv1x1;
  /** Index of the finest level (prototypes). */
  readonly protoLevel: number;
  readonly config: DetectorConfig;

  constructor(readonly shape: VitShape, config: DetectorConfig, readonly seed: number) {
    this.config = config;
    const { patchSize, imageSize, dim } = shape;
    const G = imageSize / patchSize;
    if (!Number.isInteger(G)) {
      throw new RangeError(
        `patch size ${patchSize} does not divide the detector input ${imageSize}`,
      );
    }
    if (config.scales.length === 0) {
      throw new RangeError("detector: scales must list at least one level");
    }
    this.store = new ParamStore(seed);
    this.vit = new VisionTransformer(this.store, shape, "encoder");
    const windowSize = config.windowSize > 0 ? config.windowSize : (G % 2 === 0 ? G / 2 : G);
    this.backbone = new VitBackbone(this.vit, {
      windowSize,
      globalBlocks: config.globalBlocks.length ? config.globalBlocks : undefined,
    });
    const W = config.width, s = this.store;
    this.levels = config.scales.map((scale, i) => {
      if (![4, 2, 1, 0.5].includes(scale)) {
        throw new RangeError(`detector: scale ${scale} is not one of 4, 2, 1, 0.5`);
      }
      const size = G * scale;
      const stride = patchSize / scale;
      if (!Number.isInteger(size) || !Number.isInteger(stride)) {
        throw new RangeError(
          `detector: scale ${scale} gives a ${size}x${size} map of stride ${stride} for patch ${patchSize} ` +
            `and grid ${G}; pick scales that keep both integers`,
        );
      }
      const up: Deconv2x2[] = [], upNorm: ChannelNorm[] = [];
      let c = dim;
      for (let k = 0; k < Math.log2(Math.max(scale, 1)); k++) {
        up.push(new Deconv2x2(s, `sfp.${i}.up${k}`, c, c / 2));
        c = c / 2;
        if (k + 1 < Math.log2(scale)) upNorm.push(new ChannelNorm(s, `sfp.${i}.up${k}.norm`, c));
      }
      return {
        scale,
        stride,
        size,
        up,
        upNorm,
        lateral: new Conv1x1(s, `sfp.${i}.lateral`, c, W),
        lateralNorm: new ChannelNorm(s, `sfp.${i}.lateral.norm`, W),
        smooth: new Conv3x3(s, `sfp.${i}.smooth`, W, W),
        smoothNorm: new ChannelNorm(s, `sfp.${i}.smooth.norm`, W),
      };
    });
    this.tower = new Conv3x3(s, "head.tower", W, W);
    this.clsOut = new Conv1x1(s, "head.cls.out", W, config.numClasses);
    fillBias(this.clsOut.linear.b, -Math.log((1 - 0.1) / 0.1)); // prior 0.1 (CenterNet's -2.19)
    this.regOut = new Conv1x1(s, "head.reg.out", W, 4 + config.protos);
    this.protoLevel = config.scales.indexOf(Math.max(...config.scales));
    this.protoTower = new Conv3x3(s, "head.proto.tower", W, W);
    this.protoOut = new Conv1x1(s, "head.proto.out", W, config.protos);
  }

  /** Parameters the loss depends on (all but the CLS token, which detection does not use). */
  trainableParams(): Param[] {
    return [...this.store.params.values()].filter((p) => p.name !== "encoder.cls_token");
  }

  /** Strides of the levels in input pixels. */
  get strides(): number[] {
    return this.levels.map((l) => l.stride);
  }

  /** Stride of the prototype map. */
  get protoStride(): number {
    return this.levels[this.protoLevel].stride;
  }

  /**
   * Copy `encoder.*` weights from another store (a pre-training run's model).
   * Returns how many tensors were copied; throws on a shape mismatch.
   */
  loadEncoder(from: ParamStore): number {
    let n = 0;
    for (const [name, p] of this.store.params) {
      if (!name.startsWith("encoder.")) continue;
      const src = from.params.get(name);
      if (!src) {
        throw new Error(`loadEncoder: the pre-trained model has no parameter "${name}"`);
      }
      if (src.variable.shape.join(",") !== p.variable.shape.join(",")) {
        throw new Error(
          `loadEncoder: "${name}" is [${src.variable.shape}] in the pre-trained model but [${p.variable.shape}] here`,
        );
      }
      p.variable.assign(src.variable);
      n++;
    }
    return n;
  }

  /**
   * Run the network.
   *
   * @param patches [B*L, p*p*C] window-major patch rows (`backbone.patches`)
   */
  forward(patches: tf.Tensor2D, batch: number): DetectorOutput {
    const feat = this.backbone.forward(patches, batch); // [B, G, G, D]
    const heat: tf.Tensor4D[] = [], reg: tf.Tensor4D[] = [], coef: tf.Tensor4D[] = [];
    let protos: tf.Tensor4D | null = null;
    const M = this.config.protos;
    this.levels.forEach((lv, i) => {
      let x: tf.Tensor4D = feat;
      if (lv.scale === 0.5) x = tf.maxPool(x, 2, 2, "valid");
      lv.up.forEach((d, k) => {
        x = d.apply(x);
        if (k < lv.upNorm.length) x = gelu(lv.upNorm[k].apply(x)) as tf.Tensor4D;
      });
      x = lv.lateralNorm.apply(lv.lateral.apply(x));
      x = lv.smoothNorm.apply(lv.smooth.apply(x)); // [B, h, w, W]
      const f = tf.relu(this.tower.apply(x)) as tf.Tensor4D; // [B, h, w, W]
      heat.push(this.clsOut.apply(f));
      const r = this.regOut.apply(f); // [B, h, w, 4+M]
      const [box, c] = tf.split(r, [4, M], 3) as tf.Tensor4D[];
      reg.push(box);
      coef.push(c);
      if (i === this.protoLevel) protos = this.protoOut.apply(tf.relu(this.protoTower.apply(x)));
    });
    return { heat, reg, coef, protos: protos! };
  }

  /** {@link forward} inside `tf.tidy`: only the outputs survive (free them with {@link disposeOutput}). */
  predictRaw(patches: tf.Tensor2D, batch: number): DetectorOutput {
    return tf.tidy(() =>
      this.forward(patches, batch) as unknown as tf.TensorContainer
    ) as unknown as DetectorOutput;
  }

  /**
   * Training loss: focal heatmap loss + L1 box terms at centres + BCE of the
   * prototype masks inside each object's box.
   */
  loss(out: DetectorOutput, t: DetTargets, weights = { box: 1, mask: 1 }): DetectorLoss {
    const B = t.batch;
    const numPos = Math.max(1, t.numPos);
    const heatTerms: tf.Tensor[] = [], boxTerms: tf.Tensor[] = [];
    out.heat.forEach((logits, l) => {
      const target = tf.tensor(t.heat[l], logits.shape);
      const pos = tf.cast(tf.equal(target, 1), "float32");
      const p = tf.sigmoid(logits);
      const logP = tf.neg(tf.softplus(tf.neg(logits)));
      const log1mP = tf.neg(tf.softplus(logits));
      const posTerm = tf.mul(tf.mul(pos, tf.square(tf.sub(1, p))), logP);
      const negW = tf.mul(tf.sub(1, pos), tf.pow(tf.sub(1, target), 4));
      const negTerm = tf.mul(tf.mul(negW, tf.square(p)), log1mP);
      heatTerms.push(tf.neg(tf.sum(tf.add(posTerm, negTerm))));
      const regT = tf.tensor(t.reg[l], out.reg[l].shape);
      const m = tf.tensor(t.regMask[l], [...out.reg[l].shape.slice(0, 3), 1]);
      boxTerms.push(tf.sum(tf.mul(tf.abs(tf.sub(out.reg[l], regT)), m)));
    });
    const heat = tf.div(tf.addN(heatTerms), numPos) as tf.Scalar;
    const box = tf.div(tf.addN(boxTerms), numPos) as tf.Scalar;
    let mask: tf.Scalar = tf.scalar(0);
    if (t.numObjects > 0 && t.numMasks > 0) {
      const M = this.config.protos;
      const coefAll = tf.concat(out.coef.map((c) => c.reshape([-1, M])), 0); // [totalCells, M]
      const sel = tf.tensor2d(t.select, [t.numObjects, t.totalCells]);
      const coefSel = denseOp(sel, coefAll as tf.Tensor2D, tf.zeros([M]) as tf.Tensor1D); // [N, M]
      const [, hp, wp] = out.protos.shape;
      const P = hp * wp;
      const protosT = out.protos.reshape([B * P, M]).transpose() as tf.Tensor2D; // [M, B*P]
      const logits = denseOp(coefSel, protosT, tf.zeros([B * P]) as tf.Tensor1D); // [N, B*P]
      const target = tf.tensor2d(t.maskTarget, [t.numObjects, B * P]);
      const w = tf.tensor2d(t.maskWeight, [t.numObjects, B * P]);
      const bce = tf.sub(tf.softplus(logits), tf.mul(logits, target)); // BCE with logits
      mask = tf.div(tf.sum(tf.mul(bce, w)), t.numMasks) as tf.Scalar;
    }
    const total = tf.addN([
      heat,
      tf.mul(box, weights.box),
      tf.mul(mask, weights.mask),
    ]) as tf.Scalar;
    return { total, heat, box, mask };
  }

  dispose(): void {
    this.backbone.dispose();
    this.vit.dispose();
    this.store.dispose();
  }
}
