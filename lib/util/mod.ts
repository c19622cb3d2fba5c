/**
 * Utilities below every package: the seeded counter-based RNG that drives all
 * randomness of a run, atomic file writes, base64.
 *
 * @example
 * ```ts
 * import { makeRng } from "./mod.ts";
 * const a = makeRng(0, "mask", 3);
 * const b = makeRng(0, "mask", 3);
 * if (a() !== b()) throw new Error("same seed and keys must give the same stream");
 * ```
 *
 * @module
 */

// Seeded randomness: one stream per (seed, ...keys).
export { hashKeys, makeRng, normalFrom, permutation, type Rng } from "./rng.ts";

// Atomic writes (temporary file, then rename).
export { type AtomicWriteOptions, writeFileAtomic } from "./fs.ts";
export { decodeBase64, encodeBase64 } from "./base64.ts";
