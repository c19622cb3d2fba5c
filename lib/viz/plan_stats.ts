/**
 * What a mask sampler does to each patch, estimated by drawing many plans:
 * the per-patch probabilities of being masked, thrown or visible, for heat
 * maps of a strategy (`heatmapGridSvg`).
 *
 * @module
 */

import { sampleMaskPlans, type SampleOptions } from "../amt/sampler.ts";

/** Per-patch group frequencies over `draws` sampled plans. */
export interface PlanProbabilities {
  /** [L] fraction of draws in which each patch was masked. */
  masked: Float32Array;
  /** [L] fraction of draws in which each patch was thrown. */
  thrown: Float32Array;
  /** [L] fraction of draws in which each patch stayed visible. */
  visible: Float32Array;
  draws: number;
}

/**
 * Monte-Carlo estimate of each patch's probability of landing in each group
 * under `sampleMaskPlans` with `options` (strategy, ratios, rng). The three
 * probabilities of a patch sum to 1; each estimate has a standard error of
 * at most `0.5 / sqrt(draws)`.
 *
 * @param weights [L] one image's per-patch weights (e.g. its saliency)
 * @param options sampler options plus `draws` (default 2000)
 *
 * @example
 * ```ts
 * import { planProbabilities } from "./plan_stats.ts";
 * import { makeRng } from "../util/rng.ts";
 * const p = planProbabilities(new Float32Array(16).fill(1),
 *   { maskRatio: 0.5, throwRatio: 0.25, strategy: "random", rng: makeRng(0), draws: 400 });
 * if (Math.abs(p.masked[3] - 0.5) > 0.1) throw new Error(String(p.masked[3]));
 * ```
 */
export function planProbabilities(
  weights: ArrayLike<number>,
  options: SampleOptions & { draws?: number },
): PlanProbabilities {
  const draws = options.draws ?? 2000;
  if (!Number.isInteger(draws) || draws < 1) {
    throw new RangeError(`draws must be a positive integer, got ${draws}`);
  }
  const L = weights.length;
  const row = Float32Array.from(weights);
  const tiled = new Float32Array(draws * L); // [draws, L]
  for (let d = 0; d < draws; d++) tiled.set(row, d * L);
  const plan = sampleMaskPlans(tiled, draws, options);
  const count = (idx: Int32Array) => {
    const out = new Float32Array(L);
    for (let i = 0; i < idx.length; i++) out[idx[i]] += 1 / draws;
    return out;
  };
  return {
    masked: count(plan.masked),
    thrown: count(plan.thrown),
    visible: count(plan.visible),
    draws,
  };
}
