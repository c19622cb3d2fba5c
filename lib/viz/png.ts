/**
 * PNG input/output for rasters and SVG figures, via sharp.
 *
 * Float32 rasters are pixel values in [0, 1] (clamped, NaN → 0); Uint8
 * rasters are written as they are. Files are written atomically: a temporary
 * file beside the target, then a rename, so a crashed run never leaves half a
 * PNG under the final name.
 *
 * @module
 */

import sharp from "sharp";
import { writeFileAtomic } from "../util/fs.ts";
import type { Raster } from "../data/types.ts";
import { checkRaster, clamp01, upscaleNearest } from "./_raster.ts";

/** Options for {@linkcode writePng}. */
export interface WritePngOptions {
  /** Integer nearest-neighbour upscale factor (default 1). */
  scale?: number;
}

/** Uint8 HWC pixels of a raster: Float32 [0, 1] is scaled by 255 and rounded. */
export function toUint8(raster: Raster): Uint8Array {
  checkRaster(raster);
  const { data } = raster;
  if (data instanceof Uint8Array) return data;
  const out = new Uint8Array(data.length);
  for (let i = 0; i < data.length; i++) out[i] = Math.round(clamp01(data[i]) * 255);
  return out;
}

/** Encodes a raster (1..4 channels) as PNG bytes. */
export async function encodePng(raster: Raster, opts: WritePngOptions = {}): Promise<Uint8Array> {
  checkRaster(raster);
  const r = upscaleNearest(raster, opts.scale ?? 1);
  const channels = r.channels as 1 | 2 | 3 | 4;
  let img = sharp(toUint8(r), { raw: { width: r.width, height: r.height, channels } });
  // sharp would otherwise expand gray input to sRGB; keep a gray(+alpha) PNG.
  if (channels <= 2) img = img.toColourspace("b-w");
  const buf = await img.png().toBuffer();
  return new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength);
}

/**
 * Writes a raster as a PNG file.
 *
 * @example
 * ```ts ignore
 * await writePng("runs/x/plots/sample.png", { data: new Float32Array(28 * 28), height: 28, width: 28, channels: 1 }, { scale: 4 });
 * ```
 */
export async function writePng(
  path: string,
  raster: Raster,
  opts: WritePngOptions = {},
): Promise<void> {
  await writeFileAtomic(path, await encodePng(raster, opts));
}

/** Reads a PNG (or any image sharp decodes) as a Uint8 HWC raster with its own channel count. */
export async function readPng(path: string): Promise<Raster> {
  const meta = await sharp(path).metadata();
  const { data, info } = await sharp(path).raw().toBuffer({ resolveWithObject: true });
  const px = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  const { height, width } = info;
  const gray = (meta.channels ?? 3) <= 2 && info.channels >= 3;
  if (!gray) return { data: px, height, width, channels: info.channels };
  // Raw output is always sRGB(A), gray replicated; take one gray channel (+ alpha) back out.
  const C = info.channels === 4 ? 2 : 1;
  const out = new Uint8Array(height * width * C);
  for (let i = 0; i < height * width; i++) {
    out[i * C] = px[i * info.channels];
    if (C === 2) out[i * C + 1] = px[i * info.channels + 3];
  }
  return { data: out, height, width, channels: C };
}

/** Options of {@linkcode svgToPngBytes} and {@linkcode svgToPng}. */
export interface SvgToPngOptions {
  /** Pixels per SVG pixel (default 2: sharp text and lines at the chart's layout size). */
  scale?: number;
}

/**
 * Renders an SVG document to PNG bytes: `scale` x the SVG's width / height.
 * Accepts the chart builders' promise directly (`svgToPngBytes(lineChart(...))`).
 */
export async function svgToPngBytes(
  svg: string | Promise<string>,
  opts: SvgToPngOptions = {},
): Promise<Uint8Array> {
  const scale = opts.scale ?? 2;
  if (!(scale > 0 && scale <= 8)) {
    throw new Error(`svgToPng: scale must be in (0, 8], got ${scale}`);
  }
  const text = await svg;
  const buf = await sharp(new TextEncoder().encode(text), { density: 72 * scale }).png().toBuffer();
  return new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength);
}

/** Renders an SVG document (e.g. from `lineChart`, or its promise) to a PNG file, atomically. */
export async function svgToPng(
  svg: string | Promise<string>,
  path: string,
  opts: SvgToPngOptions = {},
): Promise<void> {
  await writeFileAtomic(path, await svgToPngBytes(svg, opts));
}
