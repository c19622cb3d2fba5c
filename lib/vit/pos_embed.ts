/**
 * Fixed 2-D sin-cos position embeddings (MAE / MoCo v3 form).
 *
 * For a `g x g` grid and even-by-4 dimension `D`, the first `D/2` channels
 * encode the column coordinate and the last `D/2` the row coordinate. Each half
 * is `[sin(pos * w_k), cos(pos * w_k)]` with `w_k = 1 / 10000^(k / (D/4))`,
 * `k = 0..D/4-1`.
 *
 * @module
 */

/**
 * Sin-cos table for a `grid x grid` patch grid.
 *
 * @returns [grid*grid, dim], row-major patches
 */
export function sincosPosEmbed2d(dim: number, grid: number): Float32Array {
  if (dim % 4 !== 0) {
    throw new RangeError(`sin-cos position embedding needs dim divisible by 4, got ${dim}`);
  }
  const quarter = dim / 4;
  const out = new Float32Array(grid * grid * dim);
  for (let r = 0; r < grid; r++) {
    for (let c = 0; c < grid; c++) {
      const row = (r * grid + c) * dim;
      for (let k = 0; k < quarter; k++) {
        const omega = 1 / Math.pow(10000, k / quarter);
        // first half: x (column) coordinate; second half: y (row) coordinate
        out[row + k] = Math.sin(c * omega);
        out[row + quarter + k] = Math.cos(c * omega);
        out[row + 2 * quarter + k] = Math.sin(r * omega);
        out[row + 3 * quarter + k] = Math.cos(r * omega);
      }
    }
  }
  return out;
}
