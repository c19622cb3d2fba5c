/**
 * Seeded, counter-based pseudo-random numbers.
 *
 * Every stream is derived from `(seed, ...keys)` by hashing, so a stream for
 * "epoch 3, step 17, augmentation" can be re-created after a resume without
 * saving any generator state.
 *
 * @module
 */

/** A uniform generator on [0, 1). */
export type Rng = () => number;

/** 32-bit FNV-1a over the decimal forms of the keys, mixed with the seed. */
export function hashKeys(seed: number, ...keys: (string | number)[]): number {
  let h = (0x811c9dc5 ^ (seed >>> 0)) >>> 0;
  h = Math.imul(h, 0x01000193) >>> 0;
  for (const key of keys) {
    const s = String(key) + "\u0001";
    for (let i = 0; i < s.length; i++) {
      h ^= s.charCodeAt(i);
      h = Math.imul(h, 0x01000193) >>> 0;
    }
  }
  return h >>> 0;
}

/**
 * Mulberry32 generator seeded from `(seed, ...keys)`.
 *
 * @example
 * ```ts
 * const a = makeRng(0, "mask", 3); const b = makeRng(0, "mask", 3);
 * if (a() !== b()) throw new Error("not reproducible");
 * ```
 */
export function makeRng(seed: number, ...keys: (string | number)[]): Rng {
  let state = hashKeys(seed, ...keys);
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Standard normal draws (Box-Muller) from a uniform generator. */
export function normalFrom(rng: Rng): () => number {
  let spare: number | null = null;
  return () => {
    if (spare !== null) {
      const s = spare;
      spare = null;
      return s;
    }
    const u = 1 - rng(); // (0, 1]
    const v = rng();
    const r = Math.sqrt(-2 * Math.log(u));
    spare = r * Math.sin(2 * Math.PI * v);
    return r * Math.cos(2 * Math.PI * v);
  };
}

/** A seeded Fisher-Yates permutation of `0..n-1`. */
export function permutation(n: number, rng: Rng): Int32Array {
  const out = new Int32Array(n);
  for (let i = 0; i < n; i++) out[i] = i;
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(rng() * (i + 1));
    const t = out[i];
    out[i] = out[j];
    out[j] = t;
  }
  return out;
}
