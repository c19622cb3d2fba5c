/**
 * Builds the MIM model a config asks for (`mim.method`). The trainer, the
 * evaluations and `loadRun` rebuild a run's model from its config with this;
 * the methods themselves are the registry of `lib/mim/methods.ts`.
 *
 * @module
 */
import type { Config } from "../config/schema.ts";
import { type PosEmbedKind, PRESETS } from "../vit/presets.ts";
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
 * run's seed, `mim.normPixLoss` and the HOG keys (`mim.hog*`, MaskFeat's).
 * `posEmbed` is the encoder's position table as the run recorded it
 * (`run.json`'s `shape.posEmbed`: `"learned"` for imported weights with a
 * trained table), default the fixed sin-cos one.
 *
 * @throws {RangeError} when `mim.method` is not a registered method.
 */
export function buildModel(
  config: Readonly<Config>,
  channels: number,
  imageSize: number,
  posEmbed: PosEmbedKind = "sincos",
): MimModel {
  const resolved = resolveShape(config.model, channels, imageSize);
  // sin-cos shapes stay as they were (no posEmbed field), so run.json records are unchanged
  const shape = posEmbed === "learned" ? { ...resolved, posEmbed } : resolved;
  return mimMethod(config.mim.method).build(shape, {
    seed: config.run.seed,
    normPixLoss: config.mim.normPixLoss,
    hog: {
      cellSize: config.mim.hogCell,
      bins: config.mim.hogBins,
      window: config.mim.hogWindow,
      norm: config.mim.hogNorm,
    },
  });
}
