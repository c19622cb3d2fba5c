/**
 * The accepted values of the config's enum-like keys, each taken from the
 * module that owns the concept (so a new method, strategy, backend or
 * dataset is added in one place), and the string unions the schema's keys
 * are typed with.
 *
 * @module
 */

import {
  BACKEND_CHOICES,
  type BackendChoice,
  PRECISION_CHOICES,
  type PrecisionChoice,
} from "../backend/mod.ts";
import { AMT_STRATEGIES, type AmtStrategy } from "../amt/sampler.ts";
import {
  ENCODER_MAP_SOURCES,
  type EncoderMapSource,
  SALIENCY_SOURCES,
  type SaliencySource,
} from "../amt/saliency.ts";
import { type Counting, COUNTINGS } from "../mim/counts.ts";
import { HOG_NORMS, type HogNorm } from "../mim/hog.ts";
import { METHOD_NAMES, type MimMethodName } from "../mim/methods.ts";
import { DATASET_NAMES } from "../data/names.ts";
import { type Normalization, NORMALIZATIONS } from "../data/normalize.ts";
import { PRESET_NAMES } from "../vit/presets.ts";

/** `mim.method`: a masked-image-modeling method of lib/mim's registry. */
export type MethodName = MimMethodName;
/** Every {@linkcode MethodName} (lib/mim's list). */
export const METHOD_CHOICES: readonly MethodName[] = METHOD_NAMES;

/** `mim.hogNorm`: how MaskFeat's HOG vectors are L2-normalised (lib/mim/hog.ts's list). */
export type HogNormName = HogNorm;
/** Every {@linkcode HogNormName}. */
export const HOG_NORM_CHOICES: readonly HogNormName[] = HOG_NORMS;

/** `amt.strategy`: `none` (the method's random masking) or an AMT sampler strategy. */
export type StrategyName = AmtStrategy;
/** Every {@linkcode StrategyName} (lib/amt's list). */
export const STRATEGY_CHOICES: readonly StrategyName[] = AMT_STRATEGIES;

/** `amt.saliency`: where AMT's maps come from (lib/amt's list). */
export type SaliencyName = SaliencySource;
/** Every {@linkcode SaliencyName}. */
export const SALIENCY_CHOICES: readonly SaliencyName[] = SALIENCY_SOURCES;

/** `eval.attnSources` (a comma-separated list of these): the maps the attention monitor scores. */
export const MONITOR_SOURCE_CHOICES: readonly EncoderMapSource[] = ENCODER_MAP_SOURCES;

/** `data.normalize`: how pixels become model inputs (lib/data's list). */
export type NormalizeName = Normalization;
/** Every {@linkcode NormalizeName}. */
export const NORMALIZE_CHOICES: readonly NormalizeName[] = NORMALIZATIONS;

/** `amt.counting`: `auto` (the method's rule) or a rule of lib/mim/counts.ts. */
export type CountingName = "auto" | Counting;
/** Every {@linkcode CountingName}. */
export const COUNTING_CHOICES: readonly CountingName[] = Object.freeze<CountingName[]>([
  "auto",
  ...COUNTINGS,
]);

/** `run.backend`: a TensorFlow.js backend (lib/backend's list). */
export type BackendName = BackendChoice;
/** Every {@linkcode BackendName}. */
export const BACKEND_NAMES: readonly BackendName[] = BACKEND_CHOICES;

/** `train.precision`: the matmul precision (lib/backend's list). */
export type PrecisionName = PrecisionChoice;
/** Every {@linkcode PrecisionName}. */
export const PRECISION_NAMES: readonly PrecisionName[] = PRECISION_CHOICES;

/**
 * `data.name`: a dataset. lib/data types its list as `readonly string[]`, so
 * the union is `string` until `DATASET_NAMES` is declared `as const` there.
 */
export type DatasetName = (typeof DATASET_NAMES)[number];
/** Every {@linkcode DatasetName} (lib/data's list). */
export const DATASET_CHOICES: readonly DatasetName[] = DATASET_NAMES;

/** `data.onBadImage`: what an image folder does with an unreadable file. */
export type BadImagePolicy = "skip" | "fail";
/** Every {@linkcode BadImagePolicy}. */
export const BAD_IMAGE_CHOICES: readonly BadImagePolicy[] = Object.freeze<BadImagePolicy[]>([
  "skip",
  "fail",
]);

/**
 * `probe.optimizer`: the linear probe's optimiser. lib/eval (above the config)
 * checks at compile time that its `LinearProbeOptions["optimizer"]` is this union.
 */
export type ProbeOptimizer = "sgd" | "lars";
/** Every {@linkcode ProbeOptimizer}. */
export const PROBE_OPTIMIZERS: readonly ProbeOptimizer[] = Object.freeze<ProbeOptimizer[]>([
  "sgd",
  "lars",
]);

/** `finetune.init`: start from the run's checkpoint, or from scratch (the baseline). */
export type FinetuneInit = "pretrained" | "random";
/** Every {@linkcode FinetuneInit}. */
export const FINETUNE_INITS: readonly FinetuneInit[] = Object.freeze<FinetuneInit[]>([
  "pretrained",
  "random",
]);

/** Accepted values of the string keys that take one of a fixed set, by dotted key. */
export const CHOICES: Readonly<Record<string, readonly string[]>> = Object.freeze({
  "data.name": DATASET_CHOICES,
  "data.onBadImage": BAD_IMAGE_CHOICES,
  "data.normalize": NORMALIZE_CHOICES,
  "model.preset": PRESET_NAMES,
  "mim.method": METHOD_CHOICES,
  "mim.hogNorm": HOG_NORM_CHOICES,
  "amt.strategy": STRATEGY_CHOICES,
  "amt.counting": COUNTING_CHOICES,
  "amt.saliency": SALIENCY_CHOICES,
  "run.backend": BACKEND_NAMES,
  "train.precision": PRECISION_NAMES,
  "probe.optimizer": PROBE_OPTIMIZERS,
  "finetune.init": FINETUNE_INITS,
});
