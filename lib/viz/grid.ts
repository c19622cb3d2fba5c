/**
 * Figure rasters: image grids (with a text layer for labels), mask-plan
 * pictures, reconstruction pastes and reconstruction rows.
 *
 * Patch convention (same as `lib/mim/plan.ts`): an image of H x W pixels
 * with patch size p has a (H/p) x (W/p) patch grid numbered row-major, so
 * patch k sits at grid row `floor(k / (W/p))`, column `k % (W/p)`. Inside a
 * patch, pixels are ordered (row, col, channel).
 *
 * @module
 */

import sharp from "sharp";
import { Buffer } from "node:buffer";
import type { Raster } from "../data/types.ts";
import type { ImagePlan } from "../mim/plan.ts";
import {
  checkIndices,
  checkRaster,
  clamp01,
  patchGrid,
  type Rgb,
  toFloat,
  toRgbFloat,
  upscaleNearest,
} from "./_raster.ts";
import { CHART_FONT, escapeXml, textWidth } from "./charts.ts";
import { rgbHex } from "./colormap.ts";
import { toUint8 } from "./png.ts";
import { writeFileAtomic } from "../util/fs.ts";

/**
 * Colours of the three patch groups, used by {@linkcode planImage} and
 * {@linkcode maskedImage} and in figure legends ({@linkcode PLAN_LEGEND}).
 */
export const PLAN_COLORS: Readonly<{
  masked: Rgb;
  maskedAlpha: number;
  thrown: Rgb;
  visible: Rgb;
  visibleAlpha: number;
  hidden: Rgb;
}> = Object.freeze({
  /** Tint blended over masked (reconstructed) patches. */
  masked: Object.freeze([0.95, 0.15, 0.1]) as Rgb,
  /** Weight of the masked tint: `(1 - a) * pixel + a * masked`. */
  maskedAlpha: 0.55,
  /** Flat fill of thrown patches (never computed: no image left to see). */
  thrown: Object.freeze([0.4, 0.4, 0.4]) as Rgb,
  /** Light tint over visible patches (what the encoder sees), so all three groups read apart. */
  visible: Object.freeze([0.1, 0.8, 0.25]) as Rgb,
  /** Weight of the visible tint. */
  visibleAlpha: 0.3,
  /** Fill of patches the encoder does not see, in {@linkcode maskedImage}. */
  hidden: Object.freeze([0.5, 0.5, 0.5]) as Rgb,
});

/** A colour swatch with its label, drawn by {@linkcode imageGridPng}'s `legend`. */
export interface LegendEntry {
  label: string;
  color: Rgb;
}

/** Legend of {@linkcode planImage}'s three colours. */
export const PLAN_LEGEND: readonly LegendEntry[] = Object.freeze([
  { label: "masked", color: PLAN_COLORS.masked },
  { label: "thrown", color: PLAN_COLORS.thrown },
  { label: "visible", color: PLAN_COLORS.visible },
]);

/** Options of {@linkcode imageGrid}. */
export interface ImageGridOptions {
  /** Pixels between and around cells (default 2). */
  pad?: number;
  /** Grey level of padding and empty cells in [0, 1] (default 1, white). */
  background?: number;
  /** One label per row (drawn by {@linkcode imageGridPng} only). */
  rowLabels?: readonly string[];
  /** One label per column (drawn by {@linkcode imageGridPng} only). */
  colLabels?: readonly string[];
  /** Integer nearest-neighbour upscale of every cell (default 1). */
  scale?: number;
}

/** Geometry of a grid built by {@linkcode imageGrid}. */
export interface GridLayout {
  rows: number;
  cols: number;
  /** Cell size after scaling: the largest cell height and width. */
  cellHeight: number;
  cellWidth: number;
  pad: number;
  height: number;
  width: number;
}

/** Computes the grid geometry without drawing anything. */
export function gridLayout(
  rows: readonly (readonly (Raster | null)[])[],
  opts: ImageGridOptions = {},
): GridLayout {
  const pad = opts.pad ?? 2;
  const scale = opts.scale ?? 1;
  if (!Number.isInteger(pad) || pad < 0) throw new Error(`pad must be an integer >= 0, got ${pad}`);
  if (!Number.isInteger(scale) || scale < 1) {
    throw new Error(`scale must be a positive integer, got ${scale}`);
  }
  let cellHeight = 0;
  let cellWidth = 0;
  for (const row of rows) {
    for (const cell of row) {
      if (!cell) continue;
      cellHeight = Math.max(cellHeight, cell.height * scale);
      cellWidth = Math.max(cellWidth, cell.width * scale);
    }
  }
  const nRows = rows.length;
  const nCols = Math.max(0, ...rows.map((r) => r.length));
  if (nRows === 0 || nCols === 0 || cellHeight === 0) {
    throw new Error("imageGrid: needs at least one non-null cell");
  }
  return {
    rows: nRows,
    cols: nCols,
    cellHeight,
    cellWidth,
    pad,
    height: nRows * cellHeight + (nRows + 1) * pad,
    width: nCols * cellWidth + (nCols + 1) * pad,
  };
}

/**
 * Lays rasters out in a grid: Float32 RGB, grayscale promoted to RGB, each
 * cell centred in the largest cell size, null cells left as background.
 * Cell (r, c) starts at `pad + r * (cellHeight + pad)`, `pad + c * (cellWidth + pad)`
 * (plus the centring offset for smaller cells).
 */
export function imageGrid(
  rows: readonly (readonly (Raster | null)[])[],
  opts: ImageGridOptions = {},
): Raster {
  const g = gridLayout(rows, opts);
  const bg = clamp01(opts.background ?? 1);
  const out = new Float32Array(g.height * g.width * 3).fill(bg);
  rows.forEach((row, r) => {
    row.forEach((cell, c) => {
      if (!cell) return;
      const rgb = upscaleNearest(toRgbFloat(cell, `cell (${r}, ${c})`), opts.scale ?? 1);
      const y0 = g.pad + r * (g.cellHeight + g.pad) + Math.floor((g.cellHeight - rgb.height) / 2);
      const x0 = g.pad + c * (g.cellWidth + g.pad) + Math.floor((g.cellWidth - rgb.width) / 2);
      for (let y = 0; y < rgb.height; y++) {
        const src = y * rgb.width * 3;
        out.set(rgb.data.subarray(src, src + rgb.width * 3), ((y0 + y) * g.width + x0) * 3);
      }
    });
  });
  return { data: out, height: g.height, width: g.width, channels: 3 };
}

/** Options of {@linkcode imageGridPng}. */
export interface ImageGridPngOptions extends ImageGridOptions {
  /** Title above the grid. */
  title?: string;
  /** Colour swatches with labels, in one line under the title (e.g. {@linkcode PLAN_LEGEND}). */
  legend?: readonly LegendEntry[];
}

/**
 * Encodes an image grid as PNG bytes; row / column labels, a title and a
 * legend are drawn as an SVG text layer in margins added left of and above
 * the grid.
 */
export async function imageGridPngBytes(
  rows: readonly (readonly (Raster | null)[])[],
  opts: ImageGridPngOptions = {},
): Promise<Uint8Array> {
  const grid = imageGrid(rows, opts);
  const g = gridLayout(rows, opts);
  const { rowLabels, colLabels, title, legend } = opts;
  if (rowLabels && rowLabels.length !== g.rows) {
    throw new Error(`imageGridPng: ${rowLabels.length} row labels for ${g.rows} rows`);
  }
  if (colLabels && colLabels.length !== g.cols) {
    throw new Error(`imageGridPng: ${colLabels.length} column labels for ${g.cols} columns`);
  }
  const bg = clamp01(opts.background ?? 1);
  const ink = bg > 0.5 ? "#111" : "#eee";
  const font = Math.max(11, Math.min(15, Math.round(Math.min(g.cellHeight, g.cellWidth) / 6)));
  const titleH = title ? Math.round(font * 2.2) : 0;
  const legendH = legend && legend.length > 0 ? Math.round(font * 1.9) : 0;
  const colH = colLabels ? Math.round(font * 1.8) : 0;
  const top = titleH + legendH + colH;
  const left = rowLabels
    ? Math.ceil(Math.max(...rowLabels.map((s) => textWidth(s, font))) + 12)
    : 0;
  const swatch = font;
  const legendW = (legend ?? []).reduce(
    (w, e) => w + swatch + 6 + textWidth(e.label, font) + 16,
    0,
  );
  const H = grid.height + top;
  const W = Math.max(
    grid.width + left,
    title ? Math.ceil(textWidth(title, font + 2, true) + 16) : 0,
    Math.ceil(legendW + 8),
  );

  // The grid (with its row labels) is centred when the title or legend is wider.
  const x0 = left + Math.floor((W - left - grid.width) / 2);
  const canvas = new Float32Array(H * W * 3).fill(bg);
  for (let y = 0; y < grid.height; y++) {
    const src = y * grid.width * 3;
    canvas.set(grid.data.subarray(src, src + grid.width * 3), ((top + y) * W + x0) * 3);
  }
  let svg = `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" ` +
    `font-family="${CHART_FONT}" fill="${ink}">\n`;
  const centre = W / 2;
  if (title) {
    svg += `<text x="${centre}" y="${Math.round(font * 1.5)}" font-size="${font + 2}" ` +
      `font-weight="bold" text-anchor="middle">${escapeXml(title)}</text>\n`;
  }
  if (legend && legend.length > 0) {
    let x = Math.max(4, centre - legendW / 2);
    const y = titleH + Math.round((legendH - swatch) / 2);
    for (const e of legend) {
      svg += `<rect x="${x}" y="${y}" width="${swatch}" height="${swatch}" ` +
        `fill="${rgbHex(e.color)}" stroke="#444" stroke-width="0.5"/>\n`;
      x += swatch + 6;
      svg += `<text x="${x}" y="${(y + swatch * 0.85).toFixed(1)}" font-size="${font}">` +
        `${escapeXml(e.label)}</text>\n`;
      x += textWidth(e.label, font) + 16;
    }
  }
  colLabels?.forEach((label, c) => {
    const cx = x0 + g.pad + c * (g.cellWidth + g.pad) + g.cellWidth / 2;
    // Shrink long labels to their cell width.
    const size = Math.max(
      8,
      Math.min(font, (font * (g.cellWidth + g.pad - 4)) / Math.max(1, textWidth(label, font))),
    );
    svg += `<text x="${cx}" y="${top - Math.round(font * 0.5)}" font-size="${
      size.toFixed(1)
    }" text-anchor="middle">${escapeXml(label)}</text>\n`;
  });
  rowLabels?.forEach((label, r) => {
    const cy = top + g.pad + r * (g.cellHeight + g.pad) + g.cellHeight / 2 + font * 0.35;
    svg += `<text x="${x0 - 6}" y="${cy.toFixed(1)}" font-size="${font}" text-anchor="end">` +
      `${escapeXml(label)}</text>\n`;
  });
  svg += "</svg>\n";

  const hasText = !!(title || rowLabels || colLabels || legendH);
  let img = sharp(toUint8({ data: canvas, height: H, width: W, channels: 3 }), {
    raw: { width: W, height: H, channels: 3 },
  });
  if (hasText) img = img.composite([{ input: Buffer.from(svg), top: 0, left: 0 }]);
  const buf = await img.png().toBuffer();
  return new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength);
}

/** Writes an image grid as a PNG file, atomically (see {@linkcode imageGridPngBytes}). */
export async function imageGridPng(
  path: string,
  rows: readonly (readonly (Raster | null)[])[],
  opts: ImageGridPngOptions = {},
): Promise<void> {
  await writeFileAtomic(path, await imageGridPngBytes(rows, opts));
}

/** Calls `fn(pixel, inPatch)` for every pixel of patch k: its index in the image (y * width + x)
 * and its (row, col) position inside the patch (i * p + j). */
function forEachPixel(
  k: number,
  gw: number,
  p: number,
  width: number,
  fn: (pixel: number, inPatch: number) => void,
): void {
  const y0 = Math.floor(k / gw) * p;
  const x0 = (k % gw) * p;
  for (let i = 0; i < p; i++) {
    for (let j = 0; j < p; j++) fn((y0 + i) * width + x0 + j, i * p + j);
  }
}

/** Options of {@linkcode planImage}; defaults from {@linkcode PLAN_COLORS}. */
export interface PlanImageOptions {
  maskedColor?: Rgb;
  maskedAlpha?: number;
  thrownColor?: Rgb;
  visibleColor?: Rgb;
  /** 0 leaves visible patches as they are. */
  visibleAlpha?: number;
}

/**
 * Paints a mask plan over an image in three colours: masked patches tinted
 * ({@linkcode PLAN_COLORS}.masked, semi-transparent), thrown patches flat
 * ({@linkcode PLAN_COLORS}.thrown), visible patches lightly tinted
 * ({@linkcode PLAN_COLORS}.visible).
 *
 * @param image [H, W, 1 | 3] in [0, 1] (Uint8 is read as /255)
 * @param plan one image's patch indices (`planForImage` of `lib/mim/plan.ts`)
 * @returns Float32 RGB [H, W, 3]
 */
export function planImage(
  image: Raster,
  plan: ImagePlan,
  patchSize: number,
  opts: PlanImageOptions = {},
): Raster {
  const rgb = toRgbFloat(image, "image");
  const { gh, gw } = patchGrid(rgb, patchSize);
  const L = gh * gw;
  checkIndices(plan.masked, L, "plan.masked");
  checkIndices(plan.thrown, L, "plan.thrown");
  checkIndices(plan.visible, L, "plan.visible");
  const d = rgb.data;
  const tint = (idx: ArrayLike<number>, color: Rgb, a: number) => {
    if (a === 0) return;
    for (let m = 0; m < idx.length; m++) {
      forEachPixel(idx[m], gw, patchSize, rgb.width, (px) => {
        for (let c = 0; c < 3; c++) d[px * 3 + c] = (1 - a) * clamp01(d[px * 3 + c]) + a * color[c];
      });
    }
  };
  tint(
    plan.masked,
    opts.maskedColor ?? PLAN_COLORS.masked,
    opts.maskedAlpha ?? PLAN_COLORS.maskedAlpha,
  );
  tint(
    plan.visible,
    opts.visibleColor ?? PLAN_COLORS.visible,
    opts.visibleAlpha ?? PLAN_COLORS.visibleAlpha,
  );
  tint(plan.thrown, opts.thrownColor ?? PLAN_COLORS.thrown, 1);
  return rgb;
}

/**
 * What the encoder sees: every patch not in `visibleIdx` filled with
 * {@linkcode PLAN_COLORS}.hidden (or `fill`).
 *
 * @param image [H, W, C] in [0, 1] (Uint8 is read as /255)
 * @returns Float32 [H, W, C], same channels as the input
 */
export function maskedImage(
  image: Raster,
  visibleIdx: ArrayLike<number>,
  patchSize: number,
  fill: Rgb = PLAN_COLORS.hidden,
): Raster {
  checkRaster(image, "image");
  const { gh, gw } = patchGrid(image, patchSize);
  const L = gh * gw;
  checkIndices(visibleIdx, L, "visibleIdx");
  const C = image.channels;
  const data = toFloat(image);
  const seen = new Uint8Array(L);
  for (let i = 0; i < visibleIdx.length; i++) seen[visibleIdx[i]] = 1;
  // Gray rasters get the fill's mean grey; RGB(A) get the colour (alpha is kept).
  const grey = (fill[0] + fill[1] + fill[2]) / 3;
  for (let k = 0; k < L; k++) {
    if (seen[k]) continue;
    forEachPixel(k, gw, patchSize, image.width, (px) => {
      for (let c = 0; c < Math.min(C, 3); c++) data[px * C + c] = C < 3 ? grey : fill[c];
    });
  }
  return { data, height: image.height, width: image.width, channels: C };
}

/**
 * Replaces patches of an image by predicted pixels (for reconstruction figures).
 *
 * @param image [H, W, C] in [0, 1] (Uint8 is read as /255)
 * @param pred [K, p * p * C] predicted pixels, each patch ordered (row, col, channel),
 *   in the image's pixel space (un-normalise per-patch targets first)
 * @param idx [K] patch index of each prediction row
 * @returns Float32 [H, W, C]
 */
export function pasteReconstruction(
  image: Raster,
  pred: ArrayLike<number>,
  idx: ArrayLike<number>,
  patchSize: number,
): Raster {
  checkRaster(image, "image");
  const { gh, gw } = patchGrid(image, patchSize);
  checkIndices(idx, gh * gw, "idx");
  const C = image.channels;
  const P = patchSize * patchSize * C;
  if (pred.length !== idx.length * P) {
    throw new Error(
      `pasteReconstruction: pred has ${pred.length} values, expected K x p*p*C = ` +
        `${idx.length} x ${patchSize}*${patchSize}*${C} = ${idx.length * P}`,
    );
  }
  const data = toFloat(image);
  for (let r = 0; r < idx.length; r++) {
    forEachPixel(idx[r], gw, patchSize, image.width, (px, q) => {
      for (let c = 0; c < C; c++) data[px * C + c] = pred[r * P + q * C + c];
    });
  }
  return { data, height: image.height, width: image.width, channels: C };
}

/**
 * One row of a reconstruction figure from the arrays of one image
 * (`reconstructImages` in `lib/mim/reconstruct.ts` computes them): the image |
 * its mask plan ({@linkcode planImage}) | the encoder's input (only visible
 * patches, {@linkcode maskedImage}) | the reconstruction (visible patches
 * kept, masked patches predicted, thrown patches grey).
 *
 * @param image [H, W, C] in [0, 1]
 * @param plan the image's patch groups
 * @param predicted [Km, p * p * C] predicted pixels in [0, 1] of `plan.masked`, in its order
 * @returns `[image, plan, input, reconstruction]`
 */
export function reconstructionRow(
  image: Raster,
  plan: ImagePlan,
  predicted: ArrayLike<number>,
  patchSize: number,
): Raster[] {
  const input = maskedImage(image, plan.visible, patchSize);
  const recon = pasteReconstruction(
    maskedImage(image, Array.from(plan.visible).concat(Array.from(plan.masked)), patchSize),
    predicted,
    plan.masked,
    patchSize,
  );
  return [image, planImage(image, plan, patchSize), input, recon];
}
