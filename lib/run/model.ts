/**
 * Builds the MIM model a config asks for (`mim.method`). The trainer, the
 * evaluations and `loadRun` rebuild a run's model from its config with this;
 * the methods themselves are the registry of `lib/mim/methods.ts`.
 *
 * @module
 */
import type { Config } from "../config/schema.ts";
import { PRESETS } from "../vit/presets.ts";
import { resolveShape } from "../vit/vit.ts";
import { mimMethod } from "../mim/methods.ts";
import type { MimModel } from "../mim/types.ts";

/** Model input side: `data.imageSize`, or the preset's when 0. */
export function modelImageSize(config: Readonly<Config>): number {
  return config.data.imageSize > 0
    ? config.data.imageSize
    : PRESETS[config.model.preset]?.imageSize ?? 0;
}

/**
 * Build the MIM model for `mim.method` from its registry entry, with the
 * run's seed and `mim.normPixLoss`.
 *
 * @throws {RangeError} when `mim.method` is not a registered method.
 */
export function buildModel(
  config: Readonly<Config>,
  channels: number,
  imageSize: number,
): MimModel {
  const shape = resolveShape(config.model, channels, imageSize);
  return mimMethod(config.mim.method).build(shape, {
    seed: config.run.seed,
    normPixLoss: config.mim.normPixLoss,
  });
}
