/**
 * Histograms of oriented gradients (HOG), MaskFeat's target (Wei et al.,
 * CVPR 2022; its reference layer is SlowFast's `HOGLayerC`), as one batched
 * tfjs computation from the patches a training step already has.
 *
 * Per image channel:
 *
 * 1. **Gradients**: the 3 x 3 Sobel pair on the whole image, reflect-padded by
 *    one pixel at the image border (as the reference). The Sobel kernel is
 *    applied as its two 1-D factors (`conv2d` with `[-1, 0, 1]`, then with
 *    `[1, 2, 1]` across), the same operator, but a flat region's difference is
 *    exactly 0 in floating point, so a constant patch has no histogram.
 * 2. **Orientation**: unsigned, `theta = atan2(gy, gx) mod 180 deg`, measured
 *    from the +x axis (right) towards +y (down the rows): a vertical edge (dark
 *    to bright left to right) has theta = 0, a horizontal one theta = 90 deg.
 * 3. **Binning**: hard, as the reference (`scatter_add_` of
 *    `floor(phase)`): bin `b = floor(theta / (180 deg / bins))` covers
 *    `[b, b + 1) * 180 / bins` degrees and gets the pixel's gradient magnitude
 *    `sqrt(gx^2 + gy^2)`, times an optional Gaussian spatial window (the
 *    reference's `gaussian_window`: a `window` px kernel, std `floor(window /
 *    2)`, tiled over the image; off by default as in its image models).
 *    The reference measures its phase from the y axis (`atan2(gx, gy)`), so
 *    with 9 bins its bin edges sit 10 deg from ours: a fixed, different code
 *    for the same orientations, which a linear head learns either way.
 * 4. **Cells**: the histograms summed over `cellSize` x `cellSize` px cells.
 * 5. **Patch vector**: the cells of a model patch (`(patch / cell)^2` of them),
 *    ordered `(cell row, cell col, channel, bin)` like pixels in a patch, then
 *    L2-normalised: over the whole patch vector (`norm: "patch"`, MaskFeat's
 *    description: the histograms of a patch concatenated and normalised) or per
 *    cell and channel (`norm: "cell"`, what the reference code's
 *    `F.normalize(out, dim=2)` does). A norm below {@linkcode HOG_EPS} counts
 *    as flat (divided by the floor), so a constant patch's vector is all zeros.
 *
 * **Where it is computed.** The trainer stays method-agnostic and hands every
 * model `patches [B*L, p*p*C]`; {@linkcode HogTargets.compute} re-assembles the
 * images from them with one gather (whose index table also does the reflect
 * padding), so gradients are the image's own everywhere: a pixel on a patch's
 * edge sees its neighbour patch's pixel through the 3 x 3 Sobel, as when HOG
 * is taken on the whole image in MaskFeat. A masked patch's target therefore
 * depends on a one-pixel halo of its neighbours (also a thrown neighbour's),
 * though no model input does. (HOG of each patch alone, padded inside the
 * patch, would lose the across-edge gradient of 12 of a 4 px patch's 16
 * pixels.)
 *
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs";
 * import { HogTargets } from "./hog.ts";
 * // one 4 x 4 image, one 4 px patch of 2 x 2 cells: 2 * 2 * 1 channel * 9 bins = 36 values
 * const hog = new HogTargets({ imageSize: 4, patchSize: 4, channels: 1 });
 * const flat = tf.zeros([1, 16]) as tf.Tensor2D;
 * const f = hog.compute(flat);
 * if (f.shape[1] !== 36 || f.max().dataSync()[0] !== 0) throw new Error("flat image, no HOG");
 * tf.dispose([flat, f]);
 * hog.dispose();
 * ```
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import type { FeatureTargets } from "./types.ts";

/** How a patch's HOG vector is L2-normalised (see the module doc). */
export type HogNorm = "patch" | "cell";

/** Every {@linkcode HogNorm} (the config's `mim.hogNorm` list). */
export const HOG_NORMS: readonly HogNorm[] = Object.freeze<HogNorm[]>(["patch", "cell"]);

/** HOG settings (`mim.hogCell`, `mim.hogBins`, `mim.hogWindow`, `mim.hogNorm`). */
export interface HogOptions {
  /** Cell side in px; divides the patch side (MaskFeat: 8 px cells in 16 px patches). */
  cellSize: number;
  /** Orientation bins over 180 deg (MaskFeat: 9). */
  bins: number;
  /** Gaussian spatial window side in px, tiled over the image (0 = off, the reference's default). */
  window: number;
  /** L2 normalisation of the patch vector: "patch" (whole vector) or "cell" (per cell and channel). */
  norm: HogNorm;
}

/** The defaults: 2 px cells in our 4 px patches (2 x 2 cells per patch, as MaskFeat's 8 in 16). */
export const HOG_DEFAULTS: Readonly<HogOptions> = Object.freeze({
  cellSize: 2,
  bins: 9,
  window: 0,
  norm: "patch",
});

/** The image geometry HOG targets are computed for. */
export interface HogGeometry {
  imageSize: number;
  patchSize: number;
  channels: number;
}

/**
 * Norm floor of the L2 normalisation. The reference uses torch's 1e-12; on
 * dataset-normalised pixels a one-grey-level step already gives a cell norm
 * near 0.1, so 1e-3 only stops float noise in a flat region from being blown
 * up to a unit vector.
 */
export const HOG_EPS = 1e-3;

/** Index `i` of a length-`n` axis after one pixel of reflect padding (-1 -> 1, n -> n - 2). */
function reflect(i: number, n: number): number {
  if (i < 0) return -i;
  if (i >= n) return 2 * (n - 1) - i;
  return i;
}

/** The reference's Gaussian kernel (`get_gkern`): side `w`, std `floor(w / 2)`, sum 1. */
export function gaussianWindow(w: number): Float32Array {
  const std = Math.floor(w / 2);
  const g = Array.from({ length: w }, (_, i) => Math.exp(-0.5 * ((i - (w - 1) / 2) / std) ** 2));
  const out = new Float32Array(w * w);
  let s = 0;
  for (let y = 0; y < w; y++) for (let x = 0; x < w; x++) s += out[y * w + x] = g[y] * g[x];
  for (let i = 0; i < out.length; i++) out[i] /= s;
  return out;
}

function checkOptions(o: HogOptions, g?: HogGeometry): void {
  const int = (v: number) => Number.isInteger(v) && v >= 1;
  if (!int(o.cellSize)) {
    throw new RangeError(`HOG cell size must be an integer >= 1, got ${o.cellSize}`);
  }
  if (!int(o.bins) || o.bins < 2) {
    throw new RangeError(`HOG bins must be an integer >= 2, got ${o.bins}`);
  }
  if (!HOG_NORMS.includes(o.norm)) {
    throw new RangeError(`HOG norm must be "patch" or "cell", got ${JSON.stringify(o.norm)}`);
  }
  if (!(Number.isInteger(o.window) && (o.window === 0 || o.window >= 2))) {
    throw new RangeError(`HOG window must be 0 (off) or an integer >= 2 px, got ${o.window}`);
  }
  if (!g) return;
  if (g.patchSize % o.cellSize !== 0) {
    throw new RangeError(
      `HOG cell ${o.cellSize} px does not divide the ${g.patchSize} px patch; set mim.hogCell to ` +
        `a divisor of model.patchSize`,
    );
  }
  if (o.window > 0 && g.imageSize % o.window !== 0) {
    throw new RangeError(
      `HOG window ${o.window} px does not tile the ${g.imageSize} px image; set mim.hogWindow to ` +
        `a divisor of the image side (or 0)`,
    );
  }
}

/**
 * Magnitude-weighted, hard-binned orientation histograms per cell.
 *
 * @param padded [N, S+2, S+2, 1] one image channel per row, reflect-padded by one pixel
 * @param window [1, S, S, 1] spatial weights of the magnitudes, or undefined
 * @returns [N, S/cell, S/cell, bins], not normalised
 */
/**
 * The Sobel pair as its 1-D factors: derivative [-1, 0, 1] along the axis, smoothing [1, 2, 1]
 * across it (SlowFast's kernel is the negative of this; unsigned bins ignore it). Kept by the
 * caller that builds them (one set per {@linkcode HogTargets}, not per step).
 */
interface SobelKernels {
  diffX: tf.Tensor4D;
  diffY: tf.Tensor4D;
  smoothX: tf.Tensor4D;
  smoothY: tf.Tensor4D;
}

function sobelKernels(): SobelKernels {
  return {
    diffX: tf.tensor4d([-1, 0, 1], [1, 3, 1, 1]),
    diffY: tf.tensor4d([-1, 0, 1], [3, 1, 1, 1]),
    smoothX: tf.tensor4d([1, 2, 1], [1, 3, 1, 1]),
    smoothY: tf.tensor4d([1, 2, 1], [3, 1, 1, 1]),
  };
}

function cellHistograms(
  padded: tf.Tensor4D,
  cellSize: number,
  bins: number,
  kernels: SobelKernels,
  window?: tf.Tensor4D,
): tf.Tensor4D {
  return tf.tidy(() => {
    const [N, Sp] = padded.shape;
    const S = Sp - 2;
    const { diffX, diffY, smoothX, smoothY } = kernels;
    const dx = tf.conv2d(padded, diffX, 1, "valid"); // [N, S+2, S, 1]
    const gx = tf.conv2d(dx, smoothY, 1, "valid"); // [N, S, S, 1] d/dx, +x = right
    const dy = tf.conv2d(padded, diffY, 1, "valid"); // [N, S, S+2, 1]
    const gy = tf.conv2d(dy, smoothX, 1, "valid"); // [N, S, S, 1] d/dy, +y = down
    let mag = tf.sqrt(tf.add(tf.square(gx), tf.square(gy))); // [N, S, S, 1]
    if (window) mag = tf.mul(mag, window);
    // atan2 in [-pi, pi] -> u in [0, 2 bins]; floor(u) mod bins is the unsigned bin (u >= 0, so
    // the backends' mod conventions agree; u = 2 bins at theta = pi wraps to bin 0).
    const u = tf.add(tf.mul(tf.atan2(gy, gx), bins / Math.PI), bins);
    const bin = tf.mod(tf.floor(u), bins).toInt().reshape([N * S * S]); // [N*S*S]
    // int32 one-hot, then cast: the wasm backend's OneHot writes int32 data whatever dtype is
    // asked for, so a float32 one-hot reads as denormals (1.4e-45) there
    const votes = tf.mul(
      tf.oneHot(bin, bins).toFloat(),
      mag.reshape([N * S * S, 1]),
    ); // [N*S*S, bins]
    const hist = tf.avgPool(
      votes.reshape([N, S, S, bins]) as tf.Tensor4D,
      cellSize,
      cellSize,
      "valid",
    ); // [N, S/c, S/c, bins] means over a cell
    return tf.mul(hist, cellSize * cellSize) as tf.Tensor4D; // sums over a cell
  });
}

/**
 * Cell histograms of whole images, not normalised (what {@linkcode HogTargets}
 * builds its patch vectors from; for tests and figures).
 *
 * @param images [B, S, S, C] dataset-normalised pixels
 * @returns [B, S/cell, S/cell, C, bins]
 */
export function hogCellHistograms(
  images: tf.Tensor4D,
  options: Partial<HogOptions> = {},
): tf.Tensor5D {
  const o: HogOptions = { ...HOG_DEFAULTS, ...options };
  const [B, S, W, C] = images.shape;
  if (S !== W) throw new RangeError(`hogCellHistograms: images must be square, got ${S} x ${W}`);
  checkOptions(o, { imageSize: S, patchSize: S, channels: C });
  if (S % o.cellSize !== 0) {
    throw new RangeError(`HOG cell ${o.cellSize} px does not divide the ${S} px image`);
  }
  return tf.tidy(() => {
    const planes = tf.transpose(images, [0, 3, 1, 2]).reshape([B * C, S, S, 1]); // [B*C, S, S, 1]
    const padded = tf.mirrorPad(planes, [[0, 0], [1, 1], [1, 1], [0, 0]], "reflect");
    const win = o.window > 0 ? windowTensor(S, o.window) : undefined;
    const h = cellHistograms(padded as tf.Tensor4D, o.cellSize, o.bins, sobelKernels(), win);
    const Hc = S / o.cellSize;
    return h.reshape([B, C, Hc, Hc, o.bins]).transpose([0, 2, 3, 1, 4]) as tf.Tensor5D; // [B, Hc, Hc, C, bins]
  });
}

/** The Gaussian window tiled over an `S` px image: [1, S, S, 1]. */
function windowTensor(S: number, w: number): tf.Tensor4D {
  const k = gaussianWindow(w);
  const out = new Float32Array(S * S);
  for (let y = 0; y < S; y++) for (let x = 0; x < S; x++) out[y * S + x] = k[(y % w) * w + (x % w)];
  return tf.tensor4d(out, [1, S, S, 1]);
}

/**
 * MaskFeat's HOG target of every patch, computed from the patches on the fly
 * (one gather to images, the Sobel pair, atan2, hard binning, cell pooling, a
 * gather to patch vectors, L2 normalisation; see the module doc). Owns two
 * index tables (and the window); call `dispose()`.
 */
export class HogTargets implements FeatureTargets {
  /** Which feature this is (figures draw HOG as oriented glyphs). */
  readonly kind = "hog";
  readonly options: Readonly<HogOptions>;
  /** Values per patch: cellsPerSide^2 * channels * bins. */
  readonly dim: number;
  /** Cells along a patch side. */
  readonly cellsPerSide: number;
  readonly channels: number;
  readonly bins: number;
  readonly cellSize: number;
  /** [C*(S+2)^2] row of the flat patch layout for each padded image pixel (c, y, x). */
  private readonly padIndex: tf.Tensor1D;
  /** [L*F] entry of the flat cell histograms [C, Hc, Hc, bins] for each patch-vector value. */
  private readonly featureIndex: tf.Tensor1D;
  private readonly window?: tf.Tensor4D;
  private readonly sobel: SobelKernels = sobelKernels();

  constructor(readonly geometry: HogGeometry, options: Partial<HogOptions> = {}) {
    const o: HogOptions = { ...HOG_DEFAULTS, ...options };
    checkOptions(o, geometry);
    this.options = Object.freeze(o);
    const { imageSize: S, patchSize: p, channels: C } = geometry;
    if (S % p !== 0) throw new RangeError(`patch size ${p} does not divide image size ${S}`);
    const g = S / p, P = p * p * C, c = o.cellSize, k = p / c, Hc = S / c, nb = o.bins;
    this.cellsPerSide = k;
    this.channels = C;
    this.bins = nb;
    this.cellSize = c;
    this.dim = k * k * C * nb;

    const Sp = S + 2;
    const pad = new Int32Array(C * Sp * Sp);
    for (let ch = 0; ch < C; ch++) {
      for (let Y = 0; Y < Sp; Y++) {
        const y = reflect(Y - 1, S);
        for (let X = 0; X < Sp; X++) {
          const x = reflect(X - 1, S);
          const patch = Math.floor(y / p) * g + Math.floor(x / p);
          pad[(ch * Sp + Y) * Sp + X] = patch * P + ((y % p) * p + (x % p)) * C + ch;
        }
      }
    }
    const feat = new Int32Array(g * g * this.dim);
    let o2 = 0;
    for (let gy = 0; gy < g; gy++) {
      for (let gx = 0; gx < g; gx++) {
        for (let i = 0; i < k; i++) {
          for (let j = 0; j < k; j++) {
            const Y = gy * k + i, X = gx * k + j;
            for (let ch = 0; ch < C; ch++) {
              for (let b = 0; b < nb; b++) feat[o2++] = ((ch * Hc + Y) * Hc + X) * nb + b;
            }
          }
        }
      }
    }
    this.padIndex = tf.keep(tf.tensor1d(pad, "int32"));
    this.featureIndex = tf.keep(tf.tensor1d(feat, "int32"));
    if (o.window > 0) this.window = tf.keep(windowTensor(S, o.window));
  }

  /**
   * HOG vectors of every patch. No gradient flows (the targets are fixed
   * functions of the input), so it may run inside the training tape.
   *
   * @param patches [B*L, p*p*C] dataset-normalised patch pixels (`patchify` order)
   * @returns [B*L, F] with F = {@linkcode dim}, each row `(cell row, cell col, channel, bin)`
   */
  compute(patches: tf.Tensor2D): tf.Tensor2D {
    const { imageSize: S, patchSize: p, channels: C } = this.geometry;
    const L = (S / p) ** 2, P = p * p * C;
    if (patches.shape[1] !== P || patches.shape[0] % L !== 0) {
      throw new RangeError(
        `HogTargets.compute: patches [${patches.shape}] is not [B*${L}, ${P}] for ${S} px ` +
          `images of ${p} px patches with ${C} channel(s)`,
      );
    }
    const B = patches.shape[0] / L, Hc = S / this.cellSize, nb = this.bins, F = this.dim;
    return tf.tidy(() => {
      const images = tf.gather(patches.reshape([B, L * P]), this.padIndex, 1); // [B, C*(S+2)^2]
      const padded = images.reshape([B * C, S + 2, S + 2, 1]) as tf.Tensor4D; // [B*C, S+2, S+2, 1]
      const hist = cellHistograms(padded, this.cellSize, nb, this.sobel, this.window); // [B*C, Hc, Hc, nb]
      const flat = hist.reshape([B, C * Hc * Hc * nb]); // [B, C*Hc*Hc*nb]
      const v = tf.gather(flat, this.featureIndex, 1).reshape([B * L, F]); // [B*L, F]
      const rows = this.options.norm === "patch" ? v : v.reshape([B * L * F / nb, nb]);
      const norm = tf.sqrt(tf.sum(tf.square(rows), -1, true)); // [rows, 1]
      return tf.div(rows, tf.maximum(norm, HOG_EPS)).reshape([B * L, F]) as tf.Tensor2D;
    });
  }

  dispose(): void {
    this.padIndex.dispose();
    this.featureIndex.dispose();
    this.window?.dispose();
    tf.dispose(Object.values(this.sobel));
  }
}
