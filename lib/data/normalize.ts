/**
 * How pixels become model inputs (`data.normalize`):
 * - `standard` (default): `(x / 255 - mean[c]) / std[c]` with the dataset's per-channel
 *   statistics, MAE's and SimMIM's input normalisation;
 * - `unit`: `x / 255`, pixels in [0, 1], no centring.
 *
 * The rule travels with the dataset: {@linkcode normalizedDataset} gives a view whose
 * `mean` / `std` say it (`unit`: 0 and 1), and every reader of pixels takes them from there:
 * `loadBatch` (training batches, the saliency pass, feature extraction, fine-tuning, attention
 * on the object), `denormalize` in the figures, and `run.json`'s `mean` / `std` that detection
 * reads. One rule per run, set in one place.
 *
 * @module
 */
import type { Dataset } from "./types.ts";

/** Every `data.normalize` value. */
export const NORMALIZATIONS: readonly ["standard", "unit"] = Object.freeze(
  ["standard", "unit"] as const,
);

/** A `data.normalize` value. */
export type Normalization = (typeof NORMALIZATIONS)[number];

/**
 * `rule` as a {@linkcode Normalization}.
 *
 * @throws {RangeError} for an unknown rule, naming the valid ones.
 */
export function checkNormalization(rule: string): Normalization {
  if ((NORMALIZATIONS as readonly string[]).includes(rule)) return rule as Normalization;
  throw new RangeError(
    `data.normalize: ${JSON.stringify(rule)} is not a normalisation; use one of ${
      NORMALIZATIONS.join(", ")
    }`,
  );
}

/**
 * `ds` under normalisation rule `rule`: `ds` itself for `standard`; for `unit`, a view of it
 * (same items, name, methods) whose `mean` is 0 and `std` 1 on every channel, so batches hold
 * `x / 255`.
 *
 * @throws {RangeError} for an unknown rule, naming the valid ones.
 * @example
 * ```ts
 * import { normalizedDataset } from "./normalize.ts";
 * import { loadBatch } from "./batch.ts";
 * import { makeSynthetic } from "./synthetic.ts";
 * import { makeRng } from "../util/rng.ts";
 * const ds = normalizedDataset(makeSynthetic({ count: 2, size: 8 }), "unit");
 * const b = await loadBatch(ds, [0], { imageSize: 8, augment: false, rng: makeRng(0) });
 * if (Math.min(...b.images) < 0 || Math.max(...b.images) > 1) throw new Error("not in [0, 1]");
 * ```
 */
export function normalizedDataset(ds: Dataset, rule: string): Dataset {
  if (checkNormalization(rule) === "standard") return ds;
  return withNormalization(
    ds,
    new Array<number>(ds.channels).fill(0),
    new Array<number>(ds.channels).fill(1),
  );
}

/**
 * A view of `ds` whose batches are normalised with `mean` / `std` (one per channel, pixels in
 * [0, 1]) instead of the dataset's own constants; items and methods are unchanged.
 *
 * @throws {RangeError} when there is not one mean and one positive std per channel.
 */
export function withNormalization(
  ds: Dataset,
  mean: readonly number[],
  std: readonly number[],
): Dataset {
  if (mean.length !== ds.channels || std.length !== ds.channels) {
    throw new RangeError(
      `${ds.name}: normalisation has ${mean.length} means and ${std.length} stds for ` +
        `${ds.channels} channel(s); give one of each per channel`,
    );
  }
  if (!mean.every(Number.isFinite) || !std.every((s) => Number.isFinite(s) && s > 0)) {
    throw new RangeError(
      `${ds.name}: normalisation mean [${mean}] / std [${std}]: means must be finite and stds > 0`,
    );
  }
  const m = Object.freeze([...mean]), s = Object.freeze([...std]);
  // a view, not a copy: readers keep their private fields and extra methods (object masks)
  return new Proxy(ds, {
    get(target, key) {
      if (key === "mean") return m;
      if (key === "std") return s;
      const value = Reflect.get(target, key, target);
      return typeof value === "function" ? value.bind(target) : value;
    },
  });
}
