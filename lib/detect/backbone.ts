/**
 * The ViT as a detection backbone (ViTDet): the pre-trained encoder's
 * weights, run without the CLS token on a larger image, with window attention
 * in most blocks and global attention in a few ("propagation" blocks).
 *
 * Token order trick: patches are laid out **window-major** on the host (all
 * patches of window 0, then window 1, ...), so a window block is a plain
 * reshape `[B, L, D] -> [B * nW, w*w, D]` and needs no transpose. LayerNorm,
 * MLP and global attention do not care about the order. Only the final map
 * is put back in raster order (one 5-D transpose).
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import type { VisionTransformer } from "../vit/vit.ts";
import { patchify } from "../vit/patch.ts";

/** Where attention is windowed. */
export interface WindowOptions {
  /** Window side in patches; must divide the patch grid. 0 or the grid side = global everywhere. */
  windowSize: number;
  /** Blocks with global attention (default: the last one). */
  globalBlocks?: number[];
}

/**
 * Window-major order of a `g x g` patch grid with windows of `w x w`:
 * `order[k]` is the raster index of the k-th token.
 */
export function windowOrder(g: number, w: number): Int32Array {
  if (w <= 0 || w >= g) return Int32Array.from({ length: g * g }, (_, i) => i);
  if (g % w !== 0) {
    throw new RangeError(
      `window size ${w} does not divide the ${g}x${g} patch grid; use a divisor of ${g}`,
    );
  }
  const n = g / w;
  const out = new Int32Array(g * g);
  let k = 0;
  for (let wy = 0; wy < n; wy++) {
    for (let wx = 0; wx < n; wx++) {
      for (let iy = 0; iy < w; iy++) {
        for (let ix = 0; ix < w; ix++) out[k++] = (wy * w + iy) * g + wx * w + ix;
      }
    }
  }
  return out;
}

/** A ViT encoder run as a windowed detection backbone. */
export class VitBackbone {
  readonly grid: number;
  readonly window: number;
  readonly globalBlocks: Set<number>;
  /** Raster index of each window-major token. */
  readonly order: Int32Array;
  /** Position table in window-major order, [L, D]. */
  readonly pos: tf.Tensor2D;

  constructor(readonly vit: VisionTransformer, opts: WindowOptions) {
    this.grid = vit.gridSize;
    const w = opts.windowSize > 0 && opts.windowSize < this.grid ? opts.windowSize : this.grid;
    this.window = w;
    this.order = windowOrder(this.grid, w);
    const depth = vit.blocks.length;
    const globals = opts.globalBlocks ?? [depth - 1];
    for (const b of globals) {
      if (!Number.isInteger(b) || b < 0 || b >= depth) {
        throw new RangeError(`globalBlocks: block ${b} does not exist (depth ${depth})`);
      }
    }
    this.globalBlocks = new Set(globals);
    this.pos = tf.keep(
      tf.tidy(() => tf.gather(vit.patchPos(), tf.tensor1d(this.order, "int32"))),
    ) as tf.Tensor2D;
  }

  /**
   * Host side: normalised images to window-major patch rows.
   *
   * @param images [B, S, S, C] row-major
   * @returns [B*L, p*p*C]
   */
  patches(images: Float32Array, batch: number): Float32Array {
    const { imageSize, channels, patchSize } = this.vit.shape;
    const raster = patchify(images, batch, imageSize, channels, patchSize); // [B, L, ppc]
    const L = this.vit.numPatches, ppc = this.vit.patchDim;
    const out = new Float32Array(raster.length);
    for (let b = 0; b < batch; b++) {
      for (let k = 0; k < L; k++) {
        const src = (b * L + this.order[k]) * ppc;
        out.set(raster.subarray(src, src + ppc), (b * L + k) * ppc);
      }
    }
    return out;
  }

  /**
   * The last feature map.
   *
   * @param patches [B*L, p*p*C] window-major (from {@link patches})
   * @returns [B, G, G, D] in raster order
   */
  forward(patches: tf.Tensor2D, batch: number): tf.Tensor4D {
    const vit = this.vit;
    const B = batch, L = vit.numPatches, D = vit.shape.dim;
    const g = this.grid, w = this.window, n = g / w;
    let h = tf.add(vit.patchEmbed.apply(patches).reshape([B, L, D]), this.pos) as tf.Tensor3D; // [B, L, D]
    vit.blocks.forEach((block, i) => {
      const normed = block.norm1.apply(h) as tf.Tensor3D;
      let a: tf.Tensor3D;
      if (this.globalBlocks.has(i) || w === g) {
        a = block.attn.apply(normed).out; // [B, L, D]
      } else {
        const win = normed.reshape([B * n * n, w * w, D]) as tf.Tensor3D; // [B*nW, w*w, D]
        a = block.attn.apply(win).out.reshape([B, L, D]);
      }
      h = tf.add(h, a) as tf.Tensor3D;
      h = tf.add(h, block.mlp.apply(block.norm2.apply(h))) as tf.Tensor3D;
    });
    h = vit.norm.apply(h) as tf.Tensor3D;
    if (w === g) return h.reshape([B, g, g, D]);
    return h.reshape([B * n, n, w, w, D]) // [(B wy), wx, iy, ix, D]
      .transpose([0, 2, 1, 3, 4]) // [(B wy), iy, wx, ix, D]
      .reshape([B, g, g, D]) as tf.Tensor4D;
  }

  dispose(): void {
    this.pos.dispose();
  }
}
