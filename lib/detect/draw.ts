/**
 * Detections drawn into rasters: masks tinted in their class colour, boxes as
 * 1-pixel outlines (on an upscaled copy so thin boxes stay visible).
 *
 * @module
 */
import type { Raster } from "../data/types.ts";

/** Ten class colours (Tableau 10) as RGB in [0, 1]. */
export const CLASS_COLORS: readonly (readonly [number, number, number])[] = Object.freeze(
  [
    "#1f77b4",
    "#ff7f0e",
    "#2ca02c",
    "#d62728",
    "#9467bd",
    "#8c564b",
    "#e377c2",
    "#7f7f7f",
    "#bcbd22",
    "#17becf",
  ].map((h) =>
    [1, 3, 5].map((i) => parseInt(h.slice(i, i + 2), 16) / 255) as [number, number, number]
  ),
);

/** Something to draw: a box in the raster's pixels, a class, optionally a mask of the raster's size. */
export interface Drawable {
  label: number;
  bbox: readonly number[];
  mask?: Uint8Array | null;
  score?: number;
}

/** Options of {@link drawDetections}. */
export interface DrawOptions {
  /** Integer upscale (default 4). */
  scale?: number;
  /** Mask tint weight (default 0.45). */
  alpha?: number;
  /** Draw only detections scoring at least this (default 0.2). */
  minScore?: number;
  /** Draw at most this many, best first (default 8). */
  maxDets?: number;
}

/**
 * An RGB Float32 copy of `image` (grey or RGB, uint8 or [0, 1] floats),
 * upscaled, with masks tinted and boxes outlined in class colours.
 */
export function drawDetections(
  image: Raster,
  dets: readonly Drawable[],
  opts: DrawOptions = {},
): Raster {
  const k = opts.scale ?? 4, alpha = opts.alpha ?? 0.45, minScore = opts.minScore ?? 0.2;
  const { height: H, width: W, channels: C, data } = image;
  const h = H * k, w = W * k;
  const out = new Float32Array(h * w * 3);
  const norm = data instanceof Uint8Array ? 1 / 255 : 1;
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const s = (Math.floor(y / k) * W + Math.floor(x / k)) * C;
      for (let c = 0; c < 3; c++) out[(y * w + x) * 3 + c] = data[s + Math.min(c, C - 1)] * norm;
    }
  }
  const shown = dets.filter((d) => (d.score ?? 1) >= minScore)
    .sort((a, b) => (b.score ?? 1) - (a.score ?? 1))
    .slice(0, opts.maxDets ?? 8);
  // masks first, then all boxes on top
  for (const d of shown) {
    if (!d.mask) continue;
    const col = CLASS_COLORS[d.label % CLASS_COLORS.length];
    for (let y = 0; y < h; y++) {
      for (let x = 0; x < w; x++) {
        if (!d.mask[Math.floor(y / k) * W + Math.floor(x / k)]) continue;
        const o = (y * w + x) * 3;
        for (let c = 0; c < 3; c++) out[o + c] = (1 - alpha) * out[o + c] + alpha * col[c];
      }
    }
  }
  for (const d of shown) {
    const col = CLASS_COLORS[d.label % CLASS_COLORS.length];
    const x0 = clampInt(Math.round(d.bbox[0] * k), 0, w - 1);
    const y0 = clampInt(Math.round(d.bbox[1] * k), 0, h - 1);
    const x1 = clampInt(Math.round((d.bbox[0] + d.bbox[2]) * k) - 1, 0, w - 1);
    const y1 = clampInt(Math.round((d.bbox[1] + d.bbox[3]) * k) - 1, 0, h - 1);
    const put = (x: number, y: number) => out.set(col, (y * w + x) * 3);
    for (let x = x0; x <= x1; x++) {
      put(x, y0);
      put(x, y1);
    }
    for (let y = y0; y <= y1; y++) {
      put(x0, y);
      put(x1, y);
    }
  }
  return { data: out, height: h, width: w, channels: 3 };
}

function clampInt(v: number, lo: number, hi: number): number {
  return v < lo ? lo : v > hi ? hi : v;
}
