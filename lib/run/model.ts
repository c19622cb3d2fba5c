/**
 * Builds the MIM model a config asks for (`mim.method`). The trainer, the
 * evaluations and `loadRun` rebuild a run's model from its config with this,
 * so new methods register here.
 *
 * @module
 */
import type { Config } from "../config/schema.ts";
import { PRESETS } from "../vit/presets.ts";
import { resolveShape } from "../vit/vit.ts";
import { MaskedAutoencoder } from "../mim/mae.ts";
import { SimMim } from "../mim/simmim.ts";
import type { MimModel } from "../mim/types.ts";

/** Model input side: `data.imageSize`, or the preset's when 0. */
export function modelImageSize(config: Readonly<Config>): number {
  return config.data.imageSize > 0
    ? config.data.imageSize
    : PRESETS[config.model.preset]?.imageSize ?? 0;
}

/** Build the MIM model for `mim.method`. */
export function buildModel(
  config: Readonly<Config>,
  channels: number,
  imageSize: number,
): MimModel {
  const shape = resolveShape(config.model, channels, imageSize);
  switch (config.mim.method) {
    case "mae":
      return new MaskedAutoencoder({
        shape,
        normPixLoss: config.mim.normPixLoss,
        seed: config.run.seed,
      });
    case "simmim":
      return new SimMim({ shape, seed: config.run.seed });
    default:
      throw new RangeError(
        `mim.method "${config.mim.method}" is not available; use "mae" or "simmim"`,
      );
  }
}
