/**
 * Private raster helpers shared by the viz files: validation, conversion to
 * float [0, 1], channel promotion and resizing.
 *
 * @module
 */

import type { Raster } from "../data/types.ts";

/** An RGB colour with components in [0, 1]. */
export type Rgb = readonly [number, number, number];

/** Throws unless `r` is a well-formed HWC raster with 1..4 channels. */
export function checkRaster(r: Raster, what = "raster"): void {
  const { height, width, channels, data } = r;
  if (!Number.isInteger(height) || !Number.isInteger(width) || height < 1 || width < 1) {
    throw new Error(`${what}: height and width must be positive integers, got ${height}x${width}`);
  }
  if (!Number.isInteger(channels) || channels < 1 || channels > 4) {
    throw new Error(`${what}: channels must be 1..4, got ${channels}`);
  }
  if (data.length !== height * width * channels) {
    throw new Error(
      `${what}: data has ${data.length} values, expected ${height}x${width}x${channels} = ${
        height * width * channels
      }`,
    );
  }
}

/** Clamps to [0, 1]; NaN becomes 0. */
export function clamp01(v: number): number {
  return v > 0 ? (v < 1 ? v : 1) : 0;
}

/** A Float32 copy with values in [0, 1] (Uint8 is divided by 255; Float32 is copied as is). */
export function toFloat(r: Raster): Float32Array {
  if (r.data instanceof Uint8Array) {
    const out = new Float32Array(r.data.length);
    for (let i = 0; i < out.length; i++) out[i] = r.data[i] / 255;
    return out;
  }
  return Float32Array.from(r.data);
}

/** A Float32 RGB raster in [0, 1] from a 1..4 channel raster (gray is repeated, alpha dropped). */
export function toRgbFloat(r: Raster, what = "image"): Raster {
  checkRaster(r, what);
  const { height, width, channels } = r;
  const src = toFloat(r);
  if (channels === 3) return { data: src, height, width, channels: 3 };
  const n = height * width;
  const out = new Float32Array(n * 3);
  for (let i = 0; i < n; i++) {
    if (channels <= 2) {
      const g = src[i * channels];
      out[i * 3] = g;
      out[i * 3 + 1] = g;
      out[i * 3 + 2] = g;
    } else {
      out[i * 3] = src[i * 4];
      out[i * 3 + 1] = src[i * 4 + 1];
      out[i * 3 + 2] = src[i * 4 + 2];
    }
  }
  return { data: out, height, width, channels: 3 };
}

/** Nearest-neighbour upscale by an integer factor; keeps the data type. */
export function upscaleNearest(r: Raster, scale: number): Raster {
  if (!Number.isInteger(scale) || scale < 1) {
    throw new Error(`scale must be a positive integer, got ${scale}`);
  }
  if (scale === 1) return r;
  const { height, width, channels, data } = r;
  const H = height * scale;
  const W = width * scale;
  const out = data instanceof Uint8Array
    ? new Uint8Array(H * W * channels)
    : new Float32Array(H * W * channels);
  for (let y = 0; y < H; y++) {
    const sy = Math.floor(y / scale);
    for (let x = 0; x < W; x++) {
      const s = (sy * width + Math.floor(x / scale)) * channels;
      const d = (y * W + x) * channels;
      for (let c = 0; c < channels; c++) out[d + c] = data[s + c];
    }
  }
  return { data: out, height: H, width: W, channels };
}

/**
 * Bilinear resize of a float raster to `height x width` (pixel centres aligned,
 * edges clamped). Used to bring a patch-resolution map up to image size.
 */
export function resizeBilinear(r: Raster, height: number, width: number): Raster {
  const src = toFloat(r);
  const { height: h, width: w, channels: C } = r;
  const out = new Float32Array(height * width * C);
  const sy = h / height;
  const sx = w / width;
  for (let y = 0; y < height; y++) {
    const fy = Math.min(Math.max((y + 0.5) * sy - 0.5, 0), h - 1);
    const y0 = Math.floor(fy);
    const y1 = Math.min(y0 + 1, h - 1);
    const ty = fy - y0;
    for (let x = 0; x < width; x++) {
      const fx = Math.min(Math.max((x + 0.5) * sx - 0.5, 0), w - 1);
      const x0 = Math.floor(fx);
      const x1 = Math.min(x0 + 1, w - 1);
      const tx = fx - x0;
      for (let c = 0; c < C; c++) {
        const a = src[(y0 * w + x0) * C + c] * (1 - tx) + src[(y0 * w + x1) * C + c] * tx;
        const b = src[(y1 * w + x0) * C + c] * (1 - tx) + src[(y1 * w + x1) * C + c] * tx;
        out[(y * width + x) * C + c] = a * (1 - ty) + b * ty;
      }
    }
  }
  return { data: out, height, width, channels: C };
}

/** Patch grid of an image; throws unless the patch size divides both sides. */
export function patchGrid(r: Raster, patchSize: number): { gh: number; gw: number } {
  if (!Number.isInteger(patchSize) || patchSize < 1) {
    throw new Error(`patchSize must be a positive integer, got ${patchSize}`);
  }
  if (r.height % patchSize !== 0 || r.width % patchSize !== 0) {
    throw new Error(
      `patchSize ${patchSize} must divide the image size ${r.height}x${r.width}; crop or resize first`,
    );
  }
  return { gh: r.height / patchSize, gw: r.width / patchSize };
}

/** Throws unless every index is an integer patch index in 0..L-1. */
export function checkIndices(idx: ArrayLike<number>, L: number, what: string): void {
  for (let i = 0; i < idx.length; i++) {
    const k = idx[i];
    if (!Number.isInteger(k) || k < 0 || k >= L) {
      throw new Error(`${what}[${i}] = ${k} is not a patch index in 0..${L - 1}`);
    }
  }
}
