/**
 * Builds the masking planner a config asks for (`amt.strategy`). New
 * strategies register here; the trainer never names them. The model comes
 * from `buildModel` (`lib/run/model.ts`), which evaluations share.
 *
 * @module
 */
import { AmtPlanner } from "../amt/planner.ts";
import type { Strategy } from "../amt/sampler.ts";
import type { Config } from "../config/schema.ts";
import type { Dataset } from "../data/types.ts";
import { type Counting, methodMaskUnit, resolveCounting } from "../mim/counts.ts";
import type { MaskPlanner } from "../mim/plan.ts";
import { RandomMaskPlanner, UnitRandomMaskPlanner } from "../mim/random.ts";
import type { MimModel } from "../mim/types.ts";

/** Context a planner may need (AMT runs saliency passes over the dataset). */
export interface PlannerContext {
  model: MimModel;
  dataset: Dataset;
  imageSize: number;
  runDir: string;
  log: (s: string) => void;
}

/**
 * Mask unit in pixels: `mim.maskUnit`, else the method's own (the patch for
 * MAE; for SimMIM two patches when that tiles the image, as SimMIM's 32 px
 * unit over 16 px patches, else one); asserted against patch and image.
 */
export function maskUnitPixels(
  config: Readonly<Config>,
  patchSize: number,
  imageSize: number,
): number {
  return methodMaskUnit(config.mim.method, config.mim.maskUnit, patchSize, imageSize);
}

/** The counting rule every strategy of this run uses (`amt.counting`, `auto` = the method's). */
export function countingOf(config: Readonly<Config>): Counting {
  return resolveCounting(config.amt.counting, config.mim.method);
}

/**
 * The method's own random masking (MAE's per-patch, SimMIM's per mask unit)
 * with the run's counting rule, so it masks as many patches as the AMT
 * strategies at the same ratio.
 */
export function methodRandomPlanner(
  config: Readonly<Config>,
  patchSize: number,
  imageSize: number,
): MaskPlanner {
  const counting = countingOf(config);
  if (config.mim.method === "simmim") {
    return new UnitRandomMaskPlanner(
      config.mim.maskRatio,
      maskUnitPixels(config, patchSize, imageSize) / patchSize,
      counting,
    );
  }
  return new RandomMaskPlanner(config.mim.maskRatio, counting);
}

/** Planner factories by `amt.strategy`; "none" is plain random masking with `mim.maskRatio`. */
export const PLANNERS: Record<
  string,
  (config: Readonly<Config>, ctx: PlannerContext) => MaskPlanner
> = {
  none: (config, ctx) =>
    methodRandomPlanner(config, ctx.model.encoder.shape.patchSize, ctx.imageSize),
};
for (const strategy of ["amt", "attn-mask", "random", "random-throw", "attn-throw-low"]) {
  PLANNERS[strategy] = (config, ctx) =>
    new AmtPlanner(
      {
        strategy: strategy as Strategy,
        maskRatio: config.amt.maskRatio,
        throwRatio: config.amt.throwRatio,
        counting: countingOf(config),
        warmup: config.amt.warmup,
        interval: config.amt.interval,
        epochs: config.train.epochs,
        maskUnit: maskUnitPixels(config, ctx.model.encoder.shape.patchSize, ctx.imageSize),
        batchSize: config.amt.batchSize,
        vizImages: config.run.vizImages,
        seed: config.run.seed,
      },
      ctx.model,
      ctx.dataset,
      ctx.imageSize,
      ctx.runDir,
      methodRandomPlanner(config, ctx.model.encoder.shape.patchSize, ctx.imageSize),
      ctx.log,
    );
}

/** Build the planner for `amt.strategy`. */
export function buildPlanner(config: Readonly<Config>, ctx: PlannerContext): MaskPlanner {
  const make = PLANNERS[config.amt.strategy];
  if (!make) {
    throw new RangeError(
      `amt.strategy "${config.amt.strategy}" is not available; valid: ${
        Object.keys(PLANNERS).join(", ")
      }`,
    );
  }
  return make(config, ctx);
}
