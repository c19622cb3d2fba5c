/**
 * Patchify / unpatchify on the host (typed arrays), so the device never runs
 * the 6-D transpose this takes (slow on wasm).
 *
 * Patch order is row-major over the `(S/p) x (S/p)` grid; pixels inside a
 * patch are ordered (row, col, channel), as in MAE (`nchpwq -> nhwpqc`).
 *
 * @module
 */

/**
 * Split images into flattened patches.
 *
 * @param images [B, S, S, C] row-major
 * @returns [B, L, p*p*C] with L = (S/p)^2
 */
export function patchify(
  images: Float32Array,
  batch: number,
  size: number,
  channels: number,
  patch: number,
  out?: Float32Array,
): Float32Array {
  if (size % patch !== 0) {
    throw new RangeError(`patch size ${patch} does not divide image size ${size}`);
  }
  const g = size / patch;
  const ppc = patch * patch * channels;
  const n = batch * g * g * ppc;
  if (images.length !== batch * size * size * channels) {
    throw new RangeError(
      `images has ${images.length} values, expected B*S*S*C = ${batch}*${size}*${size}*${channels}`,
    );
  }
  const dst = out ?? new Float32Array(n);
  const rowLen = patch * channels;
  let o = 0;
  for (let b = 0; b < batch; b++) {
    const base = b * size * size * channels;
    for (let gy = 0; gy < g; gy++) {
      for (let gx = 0; gx < g; gx++) {
        for (let py = 0; py < patch; py++) {
          const src = base + ((gy * patch + py) * size + gx * patch) * channels;
          dst.set(images.subarray(src, src + rowLen), o);
          o += rowLen;
        }
      }
    }
  }
  return dst;
}

/**
 * Inverse of {@link patchify}.
 *
 * @param patches [B, L, p*p*C]
 * @returns [B, S, S, C]
 */
export function unpatchify(
  patches: Float32Array,
  batch: number,
  size: number,
  channels: number,
  patch: number,
): Float32Array {
  const g = size / patch;
  const dst = new Float32Array(batch * size * size * channels);
  const rowLen = patch * channels;
  let o = 0;
  for (let b = 0; b < batch; b++) {
    const base = b * size * size * channels;
    for (let gy = 0; gy < g; gy++) {
      for (let gx = 0; gx < g; gx++) {
        for (let py = 0; py < patch; py++) {
          const d = base + ((gy * patch + py) * size + gx * patch) * channels;
          dst.set(patches.subarray(o, o + rowLen), d);
          o += rowLen;
        }
      }
    }
  }
  return dst;
}
