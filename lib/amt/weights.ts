/**
 * Per-patch weights from a saliency map (AMT, spec section 3.1), and the
 * unit-to-patch expansion SimMIM needs when its mask unit spans several
 * patches.
 *
 * @module
 */

import type { Raster } from "../data/types.ts";

function checkMap(map: Raster, unit: number, what: string): void {
  if (!Number.isInteger(unit) || unit < 1) {
    throw new RangeError(`unit must be a positive integer (pixels per cell side), got ${unit}`);
  }
  const { height, width, channels, data } = map;
  if (channels !== 1) {
    throw new RangeError(`${what} must have 1 channel, got channels=${channels}`);
  }
  if (!Number.isInteger(height) || !Number.isInteger(width) || height < 1 || width < 1) {
    throw new RangeError(`${what} has bad size ${height}x${width}`);
  }
  if (data.length !== height * width) {
    throw new RangeError(
      `${what} data has ${data.length} values, expected height*width = ${height}*${width}`,
    );
  }
  if (height % unit !== 0 || width % unit !== 0) {
    throw new RangeError(
      `unit=${unit} does not divide the ${what} size ${height}x${width}; ` +
        `resize the map to the model input first`,
    );
  }
}

/**
 * Sums a saliency map over `unit x unit` cells: `w_i` = sum of the map inside
 * cell `i`, cells in row-major order.
 *
 * The map is expected already cropped and resized to the model input
 * (`S x S`, one channel, values in [0, 1]). Values are summed as stored: a
 * `Uint8Array` map in [0, 255] gives weights 255 times larger, which does not
 * change the Plackett-Luce law (it is invariant to scaling a row).
 *
 * @param map [S, S, 1]
 * @param unit cell side in pixels (patch size for MAE, mask unit for SimMIM).
 * @returns [(S/unit)^2] weights (`(H/unit) * (W/unit)` for a non-square map).
 *
 * @example
 * ```ts
 * import { patchWeights } from "./weights.ts";
 * const map = { data: new Float32Array(16).fill(0.5), height: 4, width: 4, channels: 1 };
 * const w = patchWeights(map, 2); // 4 cells of 4 pixels each
 * if (w.length !== 4 || w[0] !== 2) throw new Error();
 * ```
 */
export function patchWeights(map: Raster, unit: number): Float32Array {
  checkMap(map, unit, "map");
  const out = new Float32Array((map.height / unit) * (map.width / unit));
  accumulate(map, unit, out, 0);
  return out;
}

/** Adds the cell sums of `map` into `out[at..at+L)` (which must start at 0). */
function accumulate(map: Raster, unit: number, out: Float32Array, at: number): void {
  const { data, height, width } = map;
  const cols = width / unit;
  // Sum in float64 per cell row, then store: float32 running sums lose digits
  // at 224 px (up to 1024 terms per cell).
  const rowSums = new Float64Array(cols);
  for (let cy = 0; cy < height / unit; cy++) {
    rowSums.fill(0);
    for (let y = cy * unit; y < (cy + 1) * unit; y++) {
      const base = y * width;
      for (let x = 0; x < width; x++) rowSums[(x / unit) | 0] += data[base + x];
    }
    for (let cx = 0; cx < cols; cx++) out[at + cy * cols + cx] = rowSums[cx];
  }
}

/**
 * {@linkcode patchWeights} for a batch of maps of one size.
 *
 * @param maps B maps, each [S, S, 1].
 * @param out optional [B, L] buffer to fill (reused across steps).
 * @returns [B, L] weights, row-major.
 */
export function batchPatchWeights(maps: Raster[], unit: number, out?: Float32Array): Float32Array {
  if (maps.length === 0) throw new RangeError("maps is empty; expected B >= 1 maps");
  const { height, width } = maps[0];
  for (let b = 0; b < maps.length; b++) {
    checkMap(maps[b], unit, `maps[${b}]`);
    if (maps[b].height !== height || maps[b].width !== width) {
      throw new RangeError(
        `maps[${b}] is ${maps[b].height}x${maps[b].width}, but maps[0] is ${height}x${width}`,
      );
    }
  }
  const L = (height / unit) * (width / unit);
  const size = maps.length * L;
  if (out !== undefined && out.length !== size) {
    throw new RangeError(`out has length ${out.length}, expected B*L = ${maps.length}*${L}`);
  }
  const result = out ?? new Float32Array(size);
  for (let b = 0; b < maps.length; b++) accumulate(maps[b], unit, result, b * L);
  return result;
}

export { expandUnitPlan } from "../mim/plan.ts";
