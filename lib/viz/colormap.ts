/**
 * Colormaps for saliency / attention maps, and overlays on images.
 *
 * viridis and inferno are interpolated linearly between nine anchor colours
 * sampled evenly from matplotlib's maps (close enough for figures); jet is
 * the usual piecewise-linear ramp.
 *
 * @module
 */

import type { Raster } from "../data/types.ts";
import { checkRaster, clamp01, resizeBilinear, type Rgb, toFloat, toRgbFloat } from "./_raster.ts";

export type { Rgb } from "./_raster.ts";

/** Names accepted by {@linkcode colorize}. */
export type ColormapName = "viridis" | "inferno" | "jet";

const ANCHORS: Readonly<Record<"viridis" | "inferno", readonly number[]>> = {
  // 9 colours at t = 0, 1/8, ..., 1 as 0xRRGGBB.
  viridis: [
    0x440154,
    0x482878,
    0x3e4989,
    0x31688e,
    0x26828e,
    0x1f9e89,
    0x35b779,
    0x6ece58,
    0xfde725,
  ],
  inferno: [
    0x000004,
    0x1f0c48,
    0x550f6d,
    0x88226a,
    0xba3655,
    0xe35933,
    0xf98e09,
    0xf9cb35,
    0xfcffa4,
  ],
};

function channel(hex: number, shift: number): number {
  return ((hex >> shift) & 0xff) / 255;
}

/** The colour of `t` in [0, 1] (clamped; NaN → 0) under a colormap. */
export function colormapRgb(t: number, name: ColormapName = "viridis"): Rgb {
  const v = clamp01(t);
  if (name === "jet") {
    return [
      clamp01(1.5 - Math.abs(4 * v - 3)),
      clamp01(1.5 - Math.abs(4 * v - 2)),
      clamp01(1.5 - Math.abs(4 * v - 1)),
    ];
  }
  const anchors = ANCHORS[name];
  if (anchors === undefined) {
    throw new Error(`unknown colormap "${name}"; use viridis, inferno or jet`);
  }
  const f = v * (anchors.length - 1);
  const i = Math.min(Math.floor(f), anchors.length - 2);
  const w = f - i;
  const a = anchors[i];
  const b = anchors[i + 1];
  return [
    channel(a, 16) * (1 - w) + channel(b, 16) * w,
    channel(a, 8) * (1 - w) + channel(b, 8) * w,
    channel(a, 0) * (1 - w) + channel(b, 0) * w,
  ];
}

/** `#rrggbb` for an RGB colour in [0, 1]. */
export function rgbHex(rgb: Rgb): string {
  return "#" + rgb.map((v) => Math.round(clamp01(v) * 255).toString(16).padStart(2, "0")).join("");
}

/**
 * Maps a one-channel raster with values in [0, 1] (Uint8 is read as /255) to
 * a Float32 RGB raster of the same size.
 */
export function colorize(map: Raster, name: ColormapName = "viridis"): Raster {
  checkRaster(map, "map");
  if (map.channels !== 1) throw new Error(`colorize: map must have 1 channel, got ${map.channels}`);
  const src = toFloat(map);
  const out = new Float32Array(src.length * 3);
  for (let i = 0; i < src.length; i++) {
    const [r, g, b] = colormapRgb(src[i], name);
    out[i * 3] = r;
    out[i * 3 + 1] = g;
    out[i * 3 + 2] = b;
  }
  return { data: out, height: map.height, width: map.width, channels: 3 };
}

/** Rescales a one-channel raster to [0, 1] by its own min and max (constant maps → 0). */
export function normalizeMap(map: Raster): Raster {
  checkRaster(map, "map");
  const src = toFloat(map);
  let lo = Infinity;
  let hi = -Infinity;
  for (const v of src) {
    if (Number.isFinite(v)) {
      if (v < lo) lo = v;
      if (v > hi) hi = v;
    }
  }
  const span = hi > lo ? hi - lo : 0;
  for (let i = 0; i < src.length; i++) src[i] = span > 0 ? (src[i] - lo) / span : 0;
  return { data: src, height: map.height, width: map.width, channels: map.channels };
}

/**
 * Blends a colorized map over an image: `(1 - alpha) * image + alpha * colormap(map)`.
 *
 * @param image [H, W, 1 | 3] in [0, 1] (Uint8 is read as /255)
 * @param map [h, w, 1] in [0, 1]; normally the image size, otherwise it is
 *   resized bilinearly (e.g. a patch-level saliency map)
 * @returns Float32 RGB raster [H, W, 3]
 */
export function overlay(
  image: Raster,
  map: Raster,
  alpha = 0.5,
  name: ColormapName = "jet",
): Raster {
  const rgb = toRgbFloat(image, "image");
  checkRaster(map, "map");
  if (map.channels !== 1) throw new Error(`overlay: map must have 1 channel, got ${map.channels}`);
  if (!(alpha >= 0 && alpha <= 1)) {
    throw new Error(`overlay: alpha must be in [0, 1], got ${alpha}`);
  }
  const sized = map.height === rgb.height && map.width === rgb.width
    ? map
    : resizeBilinear(map, rgb.height, rgb.width);
  const heat = colorize(sized, name).data;
  const out = new Float32Array(rgb.data.length);
  for (let i = 0; i < out.length; i++) {
    out[i] = (1 - alpha) * clamp01(rgb.data[i]) + alpha * heat[i];
  }
  return { data: out, height: rgb.height, width: rgb.width, channels: 3 };
}
