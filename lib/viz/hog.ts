/**
 * HOG figures (MaskFeat): each cell's orientation histogram drawn as a star
 * of line glyphs, one per bin, through the cell centre along the edge that
 * bin's gradient orientation stands for (perpendicular to the gradient), its
 * brightness the bin's value (channels summed). Masked patches show the
 * glyphs on a dark shade of {@linkcode PLAN_COLORS}.masked; visible patches
 * show the image, dimmed; thrown patches are flat grey
 * ({@linkcode PLAN_COLORS}.thrown).
 *
 * The HOG row layout is `lib/mim`'s `FeatureLayout`: per patch
 * `cellsPerSide^2` cells ordered `(cell row, cell col, channel, bin)`, bin `b`
 * covering gradient orientations `[b, b + 1) * 180 / bins` degrees from +x
 * towards +y (down).
 *
 * @module
 */

import type { Raster } from "../data/types.ts";
import type { ImagePlan } from "../mim/plan.ts";
import type { FeatureLayout } from "../mim/types.ts";
import {
  checkIndices,
  clamp01,
  patchGrid,
  type Rgb,
  toRgbFloat,
  upscaleNearest,
} from "./_raster.ts";
import { maskedImage, PLAN_COLORS, planImage } from "./grid.ts";

/** Integer upscale that gives a HOG cell at least 8 px to draw its glyphs in. */
export function hogUpscale(cellSize: number): number {
  return Math.max(1, Math.ceil(8 / cellSize));
}

/** Options of {@linkcode hogGlyphImage}. */
export interface HogGlyphOptions {
  /** Integer upscale of the image (default {@linkcode hogUpscale} of the cell size). */
  upscale?: number;
  /**
   * The value drawn at full brightness (default the largest channel-summed bin of `hog`, at
   * least {@linkcode HOG_GLYPH_FLOOR}).
   */
  maxValue?: number;
  /** Glyph colour at full brightness (default white). */
  color?: Rgb;
  /** Brightness of the image under visible patches (default 0.35). */
  dim?: number;
  /** Brightness of the masked colour under masked patches' glyphs (default 0.2; 0 = black). */
  maskedShade?: number;
}

/**
 * The least full-brightness value: HOG vectors are L2-normalised (norm 1 per patch or per cell),
 * so a bin of a real edge is well above it, and where every target is flat (all zeros) small
 * predictions stay dim instead of being stretched to white.
 */
export const HOG_GLYPH_FLOOR = 0.25;

/** Largest channel-summed bin value of HOG rows (for a shared brightness scale). */
export function hogMaxValue(hog: ArrayLike<number>, layout: FeatureLayout): number {
  const { channels: C, bins: nb } = layout;
  let max = 0;
  for (let base = 0; base < hog.length; base += C * nb) {
    for (let b = 0; b < nb; b++) {
      let v = 0;
      for (let c = 0; c < C; c++) v += hog[base + c * nb + b];
      if (v > max) max = v;
    }
  }
  return max;
}

/**
 * Draws HOG vectors of the masked patches as oriented-bin glyphs (see the
 * module doc).
 *
 * @param image [S, S, C] in [0, 1]
 * @param plan the image's patch groups
 * @param hog [Km, F] HOG rows of `plan.masked`, in its order (negative values draw as 0)
 * @returns Float32 RGB [S * upscale, S * upscale, 3]
 */
export function hogGlyphImage(
  image: Raster,
  plan: ImagePlan,
  hog: ArrayLike<number>,
  layout: FeatureLayout,
  patchSize: number,
  opts: HogGlyphOptions = {},
): Raster {
  const m = opts.upscale ?? hogUpscale(layout.cellSize);
  const { gh, gw } = patchGrid(image, patchSize);
  checkIndices(plan.masked, gh * gw, "plan.masked");
  checkIndices(plan.thrown, gh * gw, "plan.thrown");
  const { dim: F, cellsPerSide: k, cellSize, channels: C, bins: nb } = layout;
  if (k * cellSize !== patchSize) {
    throw new Error(
      `hogGlyphImage: ${k} cells of ${cellSize} px per side do not make a ${patchSize} px patch`,
    );
  }
  if (hog.length !== plan.masked.length * F) {
    throw new Error(
      `hogGlyphImage: hog has ${hog.length} values, expected Km x F = ${plan.masked.length} x ${F}`,
    );
  }
  const rgb = upscaleNearest(toRgbFloat(image, "image"), m);
  const W = rgb.width, d = rgb.data;
  const P = patchSize * m, cellPx = cellSize * m;
  const fill = (patch: number, color: Rgb | null, scale = 1) => {
    const y0 = Math.floor(patch / gw) * P, x0 = (patch % gw) * P;
    for (let y = y0; y < y0 + P; y++) {
      for (let x = x0; x < x0 + P; x++) {
        for (let c = 0; c < 3; c++) {
          const i = (y * W + x) * 3 + c;
          d[i] = color ? color[c] : clamp01(d[i]) * scale;
        }
      }
    }
  };
  for (let i = 0; i < plan.visible.length; i++) fill(plan.visible[i], null, opts.dim ?? 0.35);
  for (let i = 0; i < plan.thrown.length; i++) fill(plan.thrown[i], PLAN_COLORS.thrown);
  // masked patches on a dark shade of the plan's masked colour, so a flat (all-zero) one still
  // reads as masked next to a dark visible patch
  const shade = opts.maskedShade ?? 0.2;
  const [mr, mg, mb] = PLAN_COLORS.masked;
  const ground: Rgb = [mr * shade, mg * shade, mb * shade];
  const color = opts.color ?? [1, 1, 1];
  const max = opts.maxValue ?? Math.max(hogMaxValue(hog, layout), HOG_GLYPH_FLOOR);
  if (!(max > 0)) throw new Error(`hogGlyphImage: maxValue must be > 0, got ${max}`);
  const half = cellPx / 2 - 0.5;
  for (let r = 0; r < plan.masked.length; r++) {
    const patch = plan.masked[r];
    fill(patch, ground);
    const py = Math.floor(patch / gw) * P, px = (patch % gw) * P;
    for (let ci = 0; ci < k; ci++) {
      for (let cj = 0; cj < k; cj++) {
        const cy = py + ci * cellPx + cellPx / 2, cx = px + cj * cellPx + cellPx / 2;
        const base = r * F + (ci * k + cj) * C * nb;
        for (let b = 0; b < nb; b++) {
          let v = 0;
          for (let c = 0; c < C; c++) v += hog[base + c * nb + b];
          const a = clamp01(v / max);
          if (a <= 0) continue;
          // the edge runs perpendicular to the bin's gradient orientation (bin centre)
          const phi = (b + 0.5) * Math.PI / nb + Math.PI / 2;
          const ux = Math.cos(phi), uy = Math.sin(phi);
          for (let t = -half; t <= half; t += 0.25) {
            const x = Math.floor(cx + t * ux), y = Math.floor(cy + t * uy);
            if (x < px || x >= px + P || y < py || y >= py + P) continue;
            for (let c = 0; c < 3; c++) {
              const i = (y * W + x) * 3 + c;
              d[i] = Math.max(d[i], a * color[c]);
            }
          }
        }
      }
    }
  }
  return rgb;
}

/**
 * One row of a MaskFeat reconstruction figure: the image | its mask plan |
 * the encoder's input | the predicted HOG of the masked patches | their
 * target HOG, every cell upscaled by {@linkcode hogUpscale} so the glyphs
 * have room; predicted and target glyphs share the target's brightness scale
 * (its largest bin, at least {@linkcode HOG_GLYPH_FLOOR}).
 *
 * @param predicted [Km, F] predicted HOG of `plan.masked`
 * @param target [Km, F] target HOG of `plan.masked`
 * @returns `[image, plan, input, predicted HOG, target HOG]`, each [S * m, S * m, 3 | C]
 */
export function hogRow(
  image: Raster,
  plan: ImagePlan,
  predicted: ArrayLike<number>,
  target: ArrayLike<number>,
  layout: FeatureLayout,
  patchSize: number,
): Raster[] {
  const m = hogUpscale(layout.cellSize);
  const maxValue = Math.max(hogMaxValue(target, layout), HOG_GLYPH_FLOOR);
  const glyphs = (hog: ArrayLike<number>) =>
    hogGlyphImage(image, plan, hog, layout, patchSize, { upscale: m, maxValue });
  return [
    upscaleNearest(toRgbFloat(image, "image"), m),
    upscaleNearest(planImage(image, plan, patchSize), m),
    upscaleNearest(toRgbFloat(maskedImage(image, plan.visible, patchSize), "input"), m),
    glyphs(predicted),
    glyphs(target),
  ];
}
