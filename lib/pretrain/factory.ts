/**
 * Builds the masking planner a config asks for (`amt.strategy`): one factory
 * per value of `AMT_STRATEGIES` (`lib/amt/sampler.ts`), `none` being the
 * method's own random masking from its registry entry (`lib/mim/methods.ts`).
 * The trainer never names a strategy or a method. The model comes from
 * `buildModel` (`lib/run/model.ts`), which evaluations share.
 *
 * @module
 */
import { AmtPlanner } from "../amt/planner.ts";
import { AMT_STRATEGIES, type Strategy } from "../amt/sampler.ts";
import type { Config } from "../config/schema.ts";
import type { Dataset } from "../data/types.ts";
import { type Counting, methodMaskUnit, resolveCounting } from "../mim/counts.ts";
import { mimMethod } from "../mim/methods.ts";
import type { MaskPlanner } from "../mim/plan.ts";
import type { MimModel } from "../mim/types.ts";

/** Context a planner may need (AMT runs saliency passes over the dataset). */
export interface PlannerContext {
  model: MimModel;
  dataset: Dataset;
  imageSize: number;
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
  return mimMethod(config.mim.method).randomPlanner({
    maskRatio: config.mim.maskRatio,
    counting: countingOf(config),
    maskUnit: maskUnitPixels(config, patchSize, imageSize),
    patchSize,
  });
}

/** The AMT planner of a sampler strategy, with the method's random masking for its warm-up. */
function amtPlanner(strategy: Strategy, config: Readonly<Config>, ctx: PlannerContext): AmtPlanner {
  return new AmtPlanner(
    {
      strategy,
      maskRatio: config.amt.maskRatio,
      throwRatio: config.amt.throwRatio,
      counting: countingOf(config),
      warmup: config.amt.warmup,
      interval: config.amt.interval,
      epochs: config.train.epochs,
      maskUnit: maskUnitPixels(config, ctx.model.encoder.shape.patchSize, ctx.imageSize),
      batchSize: config.amt.batchSize,
      seed: config.run.seed,
      saliency: config.amt.saliency,
      invert: config.amt.invert,
      emaMomentum: config.amt.emaMomentum,
      lossMaskRatio: config.mim.maskRatio,
    },
    ctx.model,
    ctx.dataset,
    ctx.imageSize,
    methodRandomPlanner(config, ctx.model.encoder.shape.patchSize, ctx.imageSize),
    ctx.log,
  );
}

/**
 * Planner factories by `amt.strategy`, one per `AMT_STRATEGIES` value: "none"
 * is the method's random masking with `mim.maskRatio`, every other value an
 * {@linkcode AmtPlanner} of that sampler strategy.
 */
export const PLANNERS: Readonly<
  Record<string, (config: Readonly<Config>, ctx: PlannerContext) => MaskPlanner>
> = Object.freeze(Object.fromEntries(
  AMT_STRATEGIES.map((strategy) => [
    strategy,
    strategy === "none"
      ? (config: Readonly<Config>, ctx: PlannerContext) =>
        methodRandomPlanner(config, ctx.model.encoder.shape.patchSize, ctx.imageSize)
      : (config: Readonly<Config>, ctx: PlannerContext) => amtPlanner(strategy, config, ctx),
  ]),
));

/** Build the planner for `amt.strategy`. */
export function buildPlanner(config: Readonly<Config>, ctx: PlannerContext): MaskPlanner {
  const make = Object.hasOwn(PLANNERS, config.amt.strategy)
    ? PLANNERS[config.amt.strategy]
    : undefined;
  if (!make) {
    throw new RangeError(
      `amt.strategy "${config.amt.strategy}" is not available; valid: ${
        Object.keys(PLANNERS).join(", ")
      }`,
    );
  }
  return make(config, ctx);
}
