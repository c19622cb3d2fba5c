/**
 * RandomResizedCrop boxes and the one resampler that applies them.
 *
 * A `CropBox` is in normalised source coordinates, so the same box crops an
 * image and its saliency map whatever their resolutions; `applyCrop` samples
 * both with the same pixel-centre convention, so they stay aligned.
 *
 * @module
 */

import type { CropBox, Raster } from "./types.ts";
import type { Rng } from "../util/rng.ts";

/** Options of `randomResizedCrop` (torchvision's defaults). */
export interface CropOptions {
  /** Range of the crop's area as a fraction of the image (default [0.08, 1]). */
  scale?: [number, number];
  /** Range of the crop's aspect ratio width/height (default [3/4, 4/3]). */
  ratio?: [number, number];
  /** Flip horizontally with probability 0.5 (default false). */
  flip?: boolean;
}

/**
 * Draws a RandomResizedCrop box the way torchvision does: up to 10 tries of
 * area fraction ~ U(scale) and log aspect ~ U(log ratio), rounded to whole
 * source pixels; if none fits, a centre crop of the whole image clamped to the
 * ratio range. The pixel box is then normalised by `height` / `width`. When
 * `flip` is set, one more draw decides the horizontal flip (p = 0.5).
 *
 * @param height source height in pixels
 * @param width source width in pixels
 * @example
 * ```ts
 * import { randomResizedCrop } from "./augment.ts";
 * import { makeRng } from "../util/rng.ts";
 * const box = randomResizedCrop(makeRng(0, "crop"), 28, 28, { scale: [0.2, 1], flip: true });
 * if (!(box.y0 >= 0 && box.y1 <= 1 && box.x0 < box.x1)) throw new Error("bad box");
 * ```
 */
export function randomResizedCrop(
  rng: Rng,
  height: number,
  width: number,
  options: CropOptions = {},
): CropBox {
  const [s0, s1] = options.scale ?? [0.08, 1];
  const [r0, r1] = options.ratio ?? [3 / 4, 4 / 3];
  if (!(s0 > 0 && s0 <= s1 && s1 <= 1)) {
    throw new RangeError(`crop scale [${s0}, ${s1}]: expected 0 < min <= max <= 1`);
  }
  if (!(r0 > 0 && r0 <= r1)) {
    throw new RangeError(`crop ratio [${r0}, ${r1}]: expected 0 < min <= max`);
  }
  if (!(height >= 1 && width >= 1)) {
    throw new RangeError(`crop source ${height}x${width}: expected positive sizes`);
  }
  const area = height * width;
  const logR0 = Math.log(r0);
  const logR1 = Math.log(r1);
  let top = -1;
  let left = 0;
  let h = height;
  let w = width;
  for (let attempt = 0; attempt < 10; attempt++) {
    const target = area * (s0 + (s1 - s0) * rng());
    const aspect = Math.exp(logR0 + (logR1 - logR0) * rng());
    const cw = Math.round(Math.sqrt(target * aspect));
    const ch = Math.round(Math.sqrt(target / aspect));
    if (cw > 0 && cw <= width && ch > 0 && ch <= height) {
      h = ch;
      w = cw;
      top = Math.floor(rng() * (height - h + 1));
      left = Math.floor(rng() * (width - w + 1));
      break;
    }
  }
  if (top < 0) {
    // Fallback: the largest centred crop whose aspect lies in [r0, r1].
    const inRatio = width / height;
    if (inRatio < r0) {
      w = width;
      h = Math.min(height, Math.round(w / r0));
    } else if (inRatio > r1) {
      h = height;
      w = Math.min(width, Math.round(h * r1));
    } else {
      w = width;
      h = height;
    }
    top = Math.floor((height - h) / 2);
    left = Math.floor((width - w) / 2);
  }
  const flip = options.flip === true ? rng() < 0.5 : false;
  return {
    y0: top / height,
    x0: left / width,
    y1: (top + h) / height,
    x1: (left + w) / width,
    flip,
  };
}

/** Per-output-index source taps along one axis: lower index, upper index, upper weight. */
interface Taps {
  lo: Int32Array;
  hi: Int32Array;
  frac: Float32Array;
}

/**
 * Bilinear taps for `outN` samples of the source span [a, b] (normalised) of
 * an axis with `n` pixels: sample k sits at a*n + (k + 0.5) * (b - a) * n / outN - 0.5,
 * clamped to [0, n - 1].
 */
function taps(n: number, a: number, b: number, outN: number, mirror: boolean): Taps {
  const lo = new Int32Array(outN);
  const hi = new Int32Array(outN);
  const frac = new Float32Array(outN);
  const start = a * n;
  const step = ((b - a) * n) / outN;
  for (let k = 0; k < outN; k++) {
    let s = start + (k + 0.5) * step - 0.5;
    if (s < 0) s = 0;
    else if (s > n - 1) s = n - 1;
    const i0 = Math.floor(s);
    const dst = mirror ? outN - 1 - k : k;
    lo[dst] = i0;
    hi[dst] = i0 + 1 < n ? i0 + 1 : i0;
    frac[dst] = s - i0;
  }
  return { lo, hi, frac };
}

/**
 * Crops `raster` to `box` and resamples it to `outHeight x outWidth`
 * (bilinear, pixel centres at +0.5, edges clamped), mirrored horizontally
 * when `box.flip`. Values keep the source's units (0..255 stays 0..255).
 * Used for images and for saliency maps of any resolution alike.
 *
 * @param raster [H, W, C] Uint8Array or Float32Array
 * @returns [outHeight, outWidth, C] Float32Array
 * @example
 * ```ts
 * import { applyCrop } from "./augment.ts";
 * import { FULL_BOX } from "./types.ts";
 * const src = { data: new Uint8Array([0, 10, 20, 30]), height: 2, width: 2, channels: 1 };
 * const out = applyCrop(src, FULL_BOX, 2, 2); // identity: [0, 10, 20, 30]
 * if (out.data[3] !== 30) throw new Error("identity crop must reproduce the raster");
 * ```
 */
export function applyCrop(
  raster: Raster,
  box: CropBox,
  outHeight: number,
  outWidth: number,
): Raster & { data: Float32Array } {
  const { data: src, height: H, width: W, channels: C } = raster;
  if (src.length !== H * W * C) {
    throw new RangeError(
      `applyCrop: raster data has ${src.length} values, expected H*W*C = ${H}*${W}*${C} = ${
        H * W * C
      }`,
    );
  }
  if (
    !(Number.isInteger(outHeight) && outHeight > 0 && Number.isInteger(outWidth) && outWidth > 0)
  ) {
    throw new RangeError(`applyCrop: output ${outHeight}x${outWidth}: expected positive integers`);
  }
  if (!(box.y0 < box.y1 && box.x0 < box.x1)) {
    throw new RangeError(
      `applyCrop: empty box y ${box.y0}..${box.y1}, x ${box.x0}..${box.x1}; expected y0 < y1, x0 < x1`,
    );
  }
  const out = new Float32Array(outHeight * outWidth * C);
  const ty = taps(H, box.y0, box.y1, outHeight, false);
  const tx = taps(W, box.x0, box.x1, outWidth, box.flip);
  // Column taps as flat element offsets into a row.
  const xl = new Int32Array(outWidth);
  const xh = new Int32Array(outWidth);
  for (let j = 0; j < outWidth; j++) {
    xl[j] = tx.lo[j] * C;
    xh[j] = tx.hi[j] * C;
  }
  const fx = tx.frac;
  const rowStride = W * C;
  let o = 0;
  for (let i = 0; i < outHeight; i++) {
    const r0 = ty.lo[i] * rowStride;
    const r1 = ty.hi[i] * rowStride;
    const wy = ty.frac[i];
    if (C === 1) {
      for (let j = 0; j < outWidth; j++) {
        const a = xl[j];
        const b = xh[j];
        const wx = fx[j];
        const top = src[r0 + a] + (src[r0 + b] - src[r0 + a]) * wx;
        const bot = src[r1 + a] + (src[r1 + b] - src[r1 + a]) * wx;
        out[o++] = top + (bot - top) * wy;
      }
    } else {
      for (let j = 0; j < outWidth; j++) {
        const a = xl[j];
        const b = xh[j];
        const wx = fx[j];
        for (let c = 0; c < C; c++) {
          const top = src[r0 + a + c] + (src[r0 + b + c] - src[r0 + a + c]) * wx;
          const bot = src[r1 + a + c] + (src[r1 + b + c] - src[r1 + a + c]) * wx;
          out[o++] = top + (bot - top) * wy;
        }
      }
    }
  }
  return { data: out, height: outHeight, width: outWidth, channels: C };
}
