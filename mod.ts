/**
 * amt-mim: masked image modeling with Attention-driven Masking and Throwing
 * (AMT) on Deno + TensorFlow.js.
 *
 * @example
 * ```ts ignore
 * import { pretrain, resolveConfig } from "./mod.ts";
 * const { config } = resolveConfig({ argv: ["--config", "configs/mae.yaml", "--train.epochs=1"] });
 * await pretrain(config);
 * ```
 *
 * @module
 */
export * from "./lib/backend/mod.ts";
export * from "./lib/config/mod.ts";
export * from "./lib/data/mod.ts";
export * from "./lib/vit/mod.ts";
export * from "./lib/mim/mod.ts";
export * from "./lib/optim/mod.ts";
export * from "./lib/run/mod.ts";
export * from "./lib/pretrain/mod.ts";
export * from "./lib/eval/mod.ts";
export * from "./lib/detect/mod.ts";
export { makeRng, normalFrom, permutation, type Rng } from "./lib/util/rng.ts";
export * from "./lib/amt/mod.ts";
export * from "./lib/viz/mod.ts";
export * from "./lib/repro/mod.ts";
