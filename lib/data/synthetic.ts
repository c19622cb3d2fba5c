/**
 * A deterministic synthetic dataset for tests: one bright object (square,
 * disc or triangle) of random size, position and colour on a noisy dark
 * background. The label is the shape type, and `objectMask(i)` gives the
 * exact object pixels, to measure how much attention lands on the object.
 *
 * Background pixels are in [0, 47], object pixels in [160, 255], so any
 * threshold between them separates the two exactly.
 *
 * @module
 */

import { checkIndex } from "./_common.ts";
import type { Dataset, Item, Raster } from "./types.ts";
import { makeRng, type Rng } from "../util/rng.ts";

/** Shape names, in label order. */
export const SYNTHETIC_CLASSES: readonly string[] = Object.freeze(["square", "disc", "triangle"]);

/** Largest background value; object values are all >= `SYNTHETIC_OBJECT_MIN`. */
export const SYNTHETIC_BACKGROUND_MAX = 47;
/** Smallest object value. */
export const SYNTHETIC_OBJECT_MIN = 160;

/** Options of `makeSynthetic`. */
export interface SyntheticOptions {
  /** Number of items (default 256). */
  count?: number;
  /** Side of the square images in pixels (default 32, at least 8). */
  size?: number;
  /** 1 (grayscale) or 3 (RGB, default). */
  channels?: number;
  /** Seed of the generator (default 0). */
  seed?: number;
  /** Split name; different splits draw different items (default "train"). */
  split?: string;
}

/** The geometry of item `i`, drawn first from its own stream. */
interface Geometry {
  shape: number;
  /** Side of the object's bounding square in pixels. */
  side: number;
  top: number;
  left: number;
  rng: Rng;
}

/** Synthetic items generated on demand: [S, S, C] uint8 rasters. */
export class SyntheticDataset implements Dataset {
  readonly name: string;
  readonly length: number;
  readonly channels: number;
  readonly numClasses = SYNTHETIC_CLASSES.length;
  readonly classNames = SYNTHETIC_CLASSES;
  /** Measured on the first (up to) 64 items. */
  readonly mean: readonly number[];
  readonly std: readonly number[];
  readonly size: number;
  readonly seed: number;
  readonly split: string;

  constructor(opts: SyntheticOptions = {}) {
    const { count = 256, size = 32, channels = 3, seed = 0, split = "train" } = opts;
    if (!Number.isInteger(count) || count < 1) {
      throw new RangeError(`synthetic count ${count}: expected a positive integer`);
    }
    if (!Number.isInteger(size) || size < 8) {
      throw new RangeError(`synthetic size ${size}: expected an integer >= 8`);
    }
    if (channels !== 1 && channels !== 3) {
      throw new RangeError(`synthetic channels ${channels}: expected 1 or 3`);
    }
    this.name = `synthetic/${split}`;
    this.length = count;
    this.size = size;
    this.channels = channels;
    this.seed = seed;
    this.split = split;
    const n = Math.min(count, 64);
    const sum = new Float64Array(channels);
    const sq = new Float64Array(channels);
    for (let i = 0; i < n; i++) {
      const px = this.#render(i);
      for (let p = 0; p < px.length; p++) {
        const v = px[p] / 255;
        sum[p % channels] += v;
        sq[p % channels] += v * v;
      }
    }
    const per = n * size * size;
    this.mean = Object.freeze(Array.from(sum, (s) => s / per));
    this.std = Object.freeze(
      Array.from(sq, (s, c) => Math.sqrt(Math.max(s / per - (sum[c] / per) ** 2, 1e-12))),
    );
  }

  #geometry(i: number): Geometry {
    const rng = makeRng(this.seed, "synthetic", this.split, i);
    const s = this.size;
    const shape = Math.floor(rng() * SYNTHETIC_CLASSES.length);
    const side = Math.max(3, Math.round(s * (0.25 + 0.25 * rng())));
    const top = Math.floor(rng() * (s - side + 1));
    const left = Math.floor(rng() * (s - side + 1));
    return { shape, side, top, left, rng };
  }

  /** [S, S] 0/1 object mask from the geometry (pixel centres inside the shape). */
  #mask(g: Geometry): Uint8Array {
    const s = this.size;
    const out = new Uint8Array(s * s);
    for (let y = g.top; y < g.top + g.side; y++) {
      const u = (y + 0.5 - g.top) / g.side; // 0..1 down the bounding square
      for (let x = g.left; x < g.left + g.side; x++) {
        const v = (x + 0.5 - g.left) / g.side;
        let inside = true;
        if (g.shape === 1) inside = (u - 0.5) ** 2 + (v - 0.5) ** 2 <= 0.25;
        else if (g.shape === 2) inside = Math.abs(v - 0.5) <= u / 2; // apex up
        if (inside) out[y * s + x] = 1;
      }
    }
    return out;
  }

  #render(i: number): Uint8Array {
    const g = this.#geometry(i);
    const { rng } = g;
    const c = this.channels;
    const colour: number[] = [];
    for (let k = 0; k < c; k++) colour.push(176 + Math.floor(rng() * 80)); // 176..255
    const mask = this.#mask(g);
    const hw = this.size * this.size;
    const out = new Uint8Array(hw * c);
    for (let p = 0; p < hw; p++) {
      for (let k = 0; k < c; k++) {
        const r = rng();
        out[p * c + k] = mask[p]
          ? colour[k] - Math.floor(r * 16) // 160..255
          : Math.floor(r * (SYNTHETIC_BACKGROUND_MAX + 1)); // 0..47
      }
    }
    return out;
  }

  /** Item `i`: [S, S, C] uint8 pixels; label = shape index. */
  get(i: number): Promise<Item> {
    checkIndex(i, this.length, this.name);
    return Promise.resolve({
      image: {
        data: this.#render(i),
        height: this.size,
        width: this.size,
        channels: this.channels,
      },
      label: this.#geometry(i).shape,
      index: i,
    });
  }

  /** The exact object mask of item `i`: [S, S, 1] uint8 with 1 on the object, 0 elsewhere. */
  objectMask(i: number): Raster {
    checkIndex(i, this.length, this.name);
    return {
      data: this.#mask(this.#geometry(i)),
      height: this.size,
      width: this.size,
      channels: 1,
    };
  }
}

/**
 * A deterministic synthetic dataset (same options → same pixels).
 *
 * @example
 * ```ts
 * import { makeSynthetic } from "./synthetic.ts";
 * const ds = makeSynthetic({ count: 4, size: 16, channels: 1, seed: 1 });
 * const { image, label } = await ds.get(0);
 * const mask = ds.objectMask(0); // [16, 16, 1], 1 on the object
 * if (image.data.length !== 16 * 16 || mask.data.length !== 16 * 16 || label > 2) throw new Error();
 * ```
 */
export function makeSynthetic(opts: SyntheticOptions = {}): SyntheticDataset {
  return new SyntheticDataset(opts);
}
