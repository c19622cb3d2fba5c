/**
 * Builds the model and the masking planner a config asks for. New methods and
 * strategies register here; the trainer never names them.
 *
 * @module
 */
import type { Config } from "../config/schema.ts";
import type { Dataset } from "../data/types.ts";
import { MaskedAutoencoder } from "../mim/mae.ts";
import type { MaskPlanner } from "../mim/plan.ts";
import { RandomMaskPlanner } from "../mim/random.ts";
import type { MimModel } from "../mim/types.ts";
import { PRESETS } from "../vit/presets.ts";
import { resolveShape } from "../vit/vit.ts";

/** Model input side: `data.imageSize`, or the preset's when 0. */
export function modelImageSize(config: Readonly<Config>): number {
  return config.data.imageSize > 0 ? config.data.imageSize : PRESETS[config.model.preset]?.imageSize ?? 0;
}

/** Build the MIM model for `mim.method`. */
export function buildModel(config: Readonly<Config>, channels: number, imageSize: number): MimModel {
  const shape = resolveShape(config.model, channels, imageSize);
  switch (config.mim.method) {
    case "mae":
      return new MaskedAutoencoder({ shape, normPixLoss: config.mim.normPixLoss, seed: config.run.seed });
    default:
      throw new RangeError(`mim.method "${config.mim.method}" is not available; use "mae"`);
  }
}

/** Context a planner may need (AMT runs saliency passes over the dataset). */
export interface PlannerContext {
  model: MimModel;
  dataset: Dataset;
  imageSize: number;
  runDir: string;
  log: (s: string) => void;
}

/** Planner factories by `amt.strategy`; "none" is plain random masking with `mim.maskRatio`. */
export const PLANNERS: Record<string, (config: Readonly<Config>, ctx: PlannerContext) => MaskPlanner> = {
  none: (config) => new RandomMaskPlanner(config.mim.maskRatio),
};

/** Build the planner for `amt.strategy`. */
export function buildPlanner(config: Readonly<Config>, ctx: PlannerContext): MaskPlanner {
  const make = PLANNERS[config.amt.strategy];
  if (!make) {
    throw new RangeError(
      `amt.strategy "${config.amt.strategy}" is not available; valid: ${Object.keys(PLANNERS).join(", ")}`,
    );
  }
  return make(config, ctx);
}
