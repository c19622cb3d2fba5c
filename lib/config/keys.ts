/**
 * The flat view of the config tree: dotted keys (`"train.epochs"`), their
 * value kinds, descriptions, and the coercion of CLI strings and YAML/JSON
 * values into typed values.
 *
 * @module
 */

import { type Config, defaultConfig } from "./schema.ts";
import { ConfigError } from "./errors.ts";
import { closest } from "./_suggest.ts";

/** A leaf value of the config tree. */
export type ConfigValue = string | number | boolean | readonly [number, number];

/** The kind of a leaf, taken from its default (integers are declared in {@linkcode INTEGER_KEYS}). */
export type ValueKind = "string" | "number" | "integer" | "boolean" | "pair";

/** Number-valued keys that must hold whole numbers. */
export const INTEGER_KEYS: readonly string[] = Object.freeze([
  "data.limit",
  "data.imageSize",
  "model.patchSize",
  "model.dim",
  "model.depth",
  "model.heads",
  "model.decoderDim",
  "model.decoderDepth",
  "model.decoderHeads",
  "model.registers",
  "mim.maskUnit",
  "mim.hogCell",
  "mim.hogBins",
  "mim.hogWindow",
  "amt.warmup",
  "amt.interval",
  "amt.batchSize",
  "train.epochs",
  "train.batchSize",
  "train.logEvery",
  "train.ckptEvery",
  "train.maxSteps",
  "eval.knnEvery",
  "eval.knnK",
  "eval.attnEvery",
  "eval.attnImages",
  "run.seed",
  "run.threads",
  "run.vizImages",
  "probe.epochs",
  "probe.batchSize",
  "probe.trainLimit",
  "probe.testLimit",
  "probe.featureBatchSize",
  "probe.seed",
  "finetune.epochs",
  "finetune.batchSize",
  "finetune.trainLimit",
  "finetune.testLimit",
  "finetune.seed",
  "knn.trainLimit",
  "knn.testLimit",
  "knn.featureBatchSize",
  "detect.steps",
  "detect.batchSize",
  "detect.trainScenes",
  "detect.valScenes",
]);

/** One line per key, shown by `--help`. */
const DESCRIPTIONS: Readonly<Record<string, string>> = {
  "data.name": "dataset",
  "data.root": 'folder holding the dataset files ("" = embedded Fashion-MNIST)',
  "data.split": "pre-training split: train | test | unlabeled | train+unlabeled",
  "data.limit": "use only the first N training images (0 = all)",
  "data.imageSize": "side of the square model input in px (0 = dataset's native size)",
  "data.cropScale": "RandomResizedCrop area-fraction range, 0 < a <= b <= 1",
  "data.cropRatio": "RandomResizedCrop aspect-ratio range, 0 < a <= b",
  "data.flip": "random horizontal flips",
  "data.onBadImage": "unreadable file in an image folder",
  "data.normalize":
    "pixels to inputs in every pass: standard ((x/255 - mean) / std) | unit (x/255, no centring)",
  "model.preset": "named ViT shape; the model keys below override it when non-zero",
  "model.patchSize": "patch side in px (0 = preset's); must divide the image size",
  "model.dim": "encoder width (0 = preset's)",
  "model.depth": "encoder blocks (0 = preset's)",
  "model.heads": "encoder attention heads; must divide model.dim (0 = preset's)",
  "model.mlpRatio": "MLP hidden width / dim (0 = preset's)",
  "model.decoderDim": "decoder width (0 = preset's)",
  "model.decoderDepth": "decoder blocks (0 = preset's)",
  "model.decoderHeads": "decoder heads; must divide model.decoderDim (0 = preset's)",
  "model.dropPath": "encoder stochastic depth in pre-training, last block's rate (SimMIM 0.1)",
  "model.registers": "register tokens after CLS, dropped from outputs and saliency maps (0 = none)",
  "mim.method": "masked-image-modeling method",
  "mim.maskRatio": "random-masking ratio in (0, 1) (MAE 0.75, SimMIM 0.6, MaskFeat 0.4)",
  "mim.normPixLoss": "per-patch normalised pixel targets (MAE)",
  "mim.maskUnit":
    "SimMIM / MaskFeat mask unit in px, a multiple of the patch size (0 = the method's)",
  "mim.hogCell": "MaskFeat HOG cell side in px, a divisor of the patch size (MaskFeat 8 of 16)",
  "mim.hogBins": "MaskFeat HOG orientation bins over 180 degrees, >= 2 (MaskFeat 9)",
  "mim.hogWindow":
    "MaskFeat Gaussian window over gradient magnitudes in px, tiled; divides the image (0 = off)",
  "mim.hogNorm": "MaskFeat HOG L2 normalisation: patch (whole patch vector) | cell (per cell)",
  "amt.strategy": 'attention-driven masking; "none" = random masking with mim.maskRatio',
  "amt.maskRatio": "fraction of patches masked (reconstructed), in [0, 1)",
  "amt.throwRatio": "fraction of patches thrown away; maskRatio + throwRatio < 1",
  "amt.warmup": "epochs of random masking before the first saliency pass",
  "amt.interval": "epochs between saliency passes (>= 1)",
  "amt.counting":
    "patch-count rule of every strategy: auto (MAE floor, SimMIM ceil) | floor | ceil",
  "amt.batchSize": "batch size of the saliency pass",
  "amt.saliency":
    "map source: cls-last (paper) | rollout | registers (model.registers > 0) | ema-teacher | loss",
  "amt.invert": "use 1 - map (ablation: the least salient patches are masked first)",
  "amt.emaMomentum": "ema-teacher momentum m in [0, 1): teacher = m teacher + (1 - m) encoder",
  "train.epochs": "pre-training epochs",
  "train.batchSize": "images per optimiser step",
  "train.baseLr": "learning rate per train.lrBatch images: lr = baseLr * batchSize / lrBatch",
  "train.lrBatch": "the batch baseLr is given for: 256 (MAE) or 512 (SimMIM)",
  "train.minLr": "floor of the cosine schedule",
  "train.warmupEpochs": "linear learning-rate warm-up, in epochs",
  "train.weightDecay": "AdamW weight decay",
  "train.noDecay":
    "groups without weight decay: auto (the method's) | none | list of bias, norm, tokens",
  "train.beta1": "AdamW beta1, in [0, 1)",
  "train.beta2": "AdamW beta2, in [0, 1)",
  "train.clipGrad": "gradient-norm clipping (0 = off)",
  "train.logEvery": "read and log the loss every N steps",
  "train.ckptEvery": "write a checkpoint every N steps (0 = at epoch ends only)",
  "train.maxSteps": "stop after N optimiser steps in total (0 = run all epochs)",
  "train.precision":
    "matmul precision of every pass: auto (bf16 with AVX512_BF16 + oneDNN) | fp32 | bf16",
  "eval.knnEvery": "kNN monitor every N epochs (0 = off)",
  "eval.knnK": "neighbours of the kNN monitor",
  "eval.attnEvery":
    "attention-on-object monitor every N epochs, and after the last (0 = with the kNN monitor only)",
  "eval.attnImages": "training images (the first N, un-augmented) the attention monitor scores",
  "eval.attnSources": "comma-separated maps the attention monitor scores: cls-last, rollout",
  "run.dir": 'run folder ("" = runs/<run.name>/<timestamp>)',
  "run.seed": "seed of the run's one PRNG (data order, augmentation, masks, init)",
  "run.backend": "TensorFlow.js backend",
  "run.threads": "wasm threads (0 = as many as work)",
  "run.vizImages": "images in the reconstruction figure",
  "run.name": "experiment name used in the default run folder",
  "probe.dir": 'evaluation folder ("" = RUN_DIR/linprobe)',
  "probe.epochs": "linear-probe epochs",
  "probe.baseLr": "base lr; peak lr = baseLr * batchSize / 256",
  "probe.batchSize": "probe batch size (>= 2: BatchNorm)",
  "probe.optimizer": "SGD with momentum 0.9, or LARS (MAE)",
  "probe.warmupEpochs": "linear lr warm-up in epochs (-1 = epochs / 10)",
  "probe.trainLimit": "first N labelled training images (0 = all, as MAE probes)",
  "probe.testLimit": "first N test images (0 = all)",
  "probe.featureBatchSize": "images per feature-extraction pass",
  "probe.knn": "also score weighted kNN (k = eval.knnK, T = 0.07) on the same features",
  "probe.cache": "read and write the feature cache RUN_DIR/eval/features_*.bin",
  "probe.seed": "probe init and data order",
  "finetune.dir": 'evaluation folder ("" = RUN_DIR/finetune or RUN_DIR/finetune-random)',
  "finetune.init": "start from the run's checkpoint, or train the same shape from scratch",
  "finetune.epochs": "fine-tuning epochs",
  "finetune.baseLr": "base lr; peak lr = baseLr * batchSize / 256",
  "finetune.batchSize": "fine-tuning batch size",
  "finetune.warmupEpochs": "linear lr warm-up in epochs (-1 = min(5, epochs / 5))",
  "finetune.layerDecay":
    "layer-wise lr decay (0 = the method's: MAE 0.75, SimMIM and MaskFeat 0.65; 1 = off)",
  "finetune.labelSmoothing": "label smoothing, in [0, 1)",
  "finetune.dropPath": "stochastic depth of the last block, in [0, 1)",
  "finetune.weightDecay": "AdamW weight decay",
  "finetune.cropScale": "RandomResizedCrop area-fraction range, 0 < a <= b <= 1",
  "finetune.trainLimit": "first N labelled training images (0 = all)",
  "finetune.testLimit": "first N test images (0 = all)",
  "finetune.seed": "data order, crops, drop-path and head init",
  "knn.dir": 'evaluation folder ("" = RUN_DIR/knn)',
  "knn.temperature": "vote temperature T: votes are exp(cosine similarity / T)",
  "knn.trainLimit": "first N labelled training images (0 = all)",
  "knn.testLimit": "first N test images (0 = all)",
  "knn.featureBatchSize": "images per feature-extraction pass",
  "knn.cache": "read and write the feature cache RUN_DIR/eval/features_*.bin",
  "detect.budget": "sizes of the detection experiment: smoke | small (lib/detect/budgets.ts)",
  "detect.backbones": "comma-separated backbones: random, mae, mae-attn, mae-amt",
  "detect.steps": "detector optimiser steps (0 = the budget's)",
  "detect.batchSize": "scenes per detector step (0 = the budget's)",
  "detect.lr": "detector peak lr (0 = the budget's)",
  "detect.trainScenes": "generated training scenes (0 = the budget's)",
  "detect.valScenes": "generated held-out scenes (0 = the budget's)",
  "detect.reproDir": 'folder of finished `deno task repro` runs ("" = runs/repro-<budget>)',
  "detect.maeRun": 'MAE pre-training run folder ("" = from reproDir, else trained here)',
  "detect.maeAttnRun": 'MAE + attn-mask run folder ("" = from reproDir, else trained here)',
  "detect.maeAmtRun": 'MAE + AMT run folder ("" = from reproDir, else trained here)',
};

interface KeyInfo {
  readonly section: string;
  readonly leaf: string;
  readonly kind: ValueKind;
  readonly defaultValue: ConfigValue;
}

const KEYS: ReadonlyMap<string, KeyInfo> = buildKeyTable();

function buildKeyTable(): Map<string, KeyInfo> {
  const table = new Map<string, KeyInfo>();
  const integers = new Set(INTEGER_KEYS);
  const tree = defaultConfig() as unknown as Record<string, Record<string, unknown>>;
  for (const [section, keys] of Object.entries(tree)) {
    for (const [leaf, value] of Object.entries(keys)) {
      const key = `${section}.${leaf}`;
      let kind: ValueKind;
      if (Array.isArray(value)) kind = "pair";
      else if (typeof value === "boolean") kind = "boolean";
      else if (typeof value === "string") kind = "string";
      else kind = integers.has(key) ? "integer" : "number";
      table.set(key, { section, leaf, kind, defaultValue: value as ConfigValue });
    }
  }
  for (const key of integers) {
    if (table.get(key)?.kind !== "integer") {
      throw new Error(`INTEGER_KEYS: "${key}" is not a number key`);
    }
  }
  return table;
}

/** Every dotted key of the config tree, in schema order. */
export function configKeys(): string[] {
  return [...KEYS.keys()];
}

/** The sections of the config tree (`data`, `model`, ...), in schema order. */
export function configSections(): string[] {
  return [...new Set([...KEYS.values()].map((k) => k.section))];
}

/**
 * The dotted keys that `patterns` name, in schema order: a pattern is a section
 * (`"probe"`, every key in it) or a dotted key (`"run.backend"`). All keys when
 * `patterns` is undefined.
 *
 * @throws {Error} for a pattern that names no key (a mistake in the caller).
 * @example
 * ```ts
 * const keys = selectKeys(["run.backend", "knn"]);
 * if (keys[0] !== "run.backend" || !keys.includes("knn.temperature")) throw new Error();
 * ```
 */
export function selectKeys(patterns?: readonly string[]): string[] {
  if (patterns === undefined) return configKeys();
  for (const p of patterns) {
    if (!KEYS.has(p) && !configSections().includes(p)) {
      throw new Error(`selectKeys: "${p}" is neither a config section nor a dotted key`);
    }
  }
  return configKeys().filter((k) =>
    patterns.includes(k) || patterns.includes(KEYS.get(k)!.section)
  );
}

/** The kind of a dotted key, or undefined for an unknown key. */
export function keyKind(key: string): ValueKind | undefined {
  return KEYS.get(key)?.kind;
}

/** The one-line description of a dotted key ("" when none). */
export function describeKey(key: string): string {
  return DESCRIPTIONS[key] ?? "";
}

/**
 * The config as a flat record of dotted keys, in schema order. Pairs are copied.
 *
 * @example
 * ```ts
 * import { defaultConfig } from "./schema.ts";
 * const flat = flattenConfig(defaultConfig());
 * if (flat["train.epochs"] !== 10) throw new Error("unexpected default");
 * ```
 */
export function flattenConfig(config: Readonly<Config>): Record<string, ConfigValue> {
  const out: Record<string, ConfigValue> = {};
  for (const key of KEYS.keys()) {
    const value = getConfigValue(config, key);
    out[key] = Array.isArray(value) ? [value[0], value[1]] : value;
  }
  return out;
}

/** The value of a dotted key. */
export function getConfigValue(config: Readonly<Config>, key: string): ConfigValue {
  const info = KEYS.get(key);
  if (!info) throw new ConfigError(unknownKeyMessage(key, undefined, "code"), { key });
  const tree = config as unknown as Record<string, Record<string, ConfigValue>>;
  return tree[info.section][info.leaf];
}

/** Sets a dotted key on a mutable config (the value is assumed already checked). */
export function setConfigValue(config: Config, key: string, value: ConfigValue): void {
  const info = KEYS.get(key);
  if (!info) throw new ConfigError(unknownKeyMessage(key, undefined, "code"), { key });
  const tree = config as unknown as Record<string, Record<string, ConfigValue>>;
  tree[info.section][info.leaf] = Array.isArray(value) ? [value[0], value[1]] : value;
}

/** Renders a value the way a user would type it on the command line. */
export function formatValue(value: unknown): string {
  if (Array.isArray(value)) return value.map((v) => formatValue(v)).join(",");
  if (typeof value === "string") return JSON.stringify(value);
  if (value === undefined) return "(nothing)";
  if (value !== null && typeof value === "object") return JSON.stringify(value);
  return String(value);
}

/**
 * "unknown config key ..." with the closest key, or the section's keys when
 * nothing is close.
 */
export function unknownKeyMessage(key: string, value: unknown, source: string): string {
  const shown = value === undefined ? "" : `value ${formatValue(value)}, `;
  let message = `unknown config key "${key}" (${shown}from ${source}).`;
  const guess = closest(key, configKeys());
  if (guess !== undefined) return `${message} Did you mean "${guess}"?`;
  const dot = key.indexOf(".");
  const section = dot < 0 ? key : key.slice(0, dot);
  const sections = configSections();
  if (dot >= 0 && sections.includes(section)) {
    const leaves = configKeys().filter((k) => k.startsWith(section + ".")).map((k) =>
      k.slice(dot + 1)
    );
    message += ` Keys in "${section}": ${leaves.join(", ")}.`;
  } else {
    message += ` Keys are "section.key" with section one of: ${sections.join(", ")}` +
      " (run with --help for the full list).";
  }
  return message;
}

/** What a kind expects, for messages. */
function expected(kind: ValueKind): string {
  switch (kind) {
    case "integer":
      return "an integer";
    case "number":
      return "a number";
    case "boolean":
      return "a boolean (true/false, yes/no, 1/0)";
    case "string":
      return "a string";
    case "pair":
      return 'two numbers ("a,b" on the command line, [a, b] in YAML)';
  }
}

function typeError(key: string, value: unknown, source: string, hint: string): ConfigError {
  const info = KEYS.get(key)!;
  return new ConfigError(
    `config key "${key}" expects ${expected(info.kind)}, got ${formatValue(value)} ` +
      `(from ${source}). ${hint}`,
    { key, source },
  );
}

function example(key: string, onCli: boolean): string {
  const info = KEYS.get(key)!;
  const d = info.defaultValue;
  if (onCli) return `For example --${key}=${Array.isArray(d) ? d.join(",") : String(d)}.`;
  const shown = Array.isArray(d)
    ? `[${d.join(", ")}]`
    : typeof d === "string"
    ? JSON.stringify(d)
    : String(d);
  return `For example "${info.leaf}: ${shown}" under "${info.section}:".`;
}

const TRUE_WORDS = new Set(["true", "1", "yes", "on"]);
const FALSE_WORDS = new Set(["false", "0", "no", "off"]);

function parseNumber(text: string): number | undefined {
  const t = text.trim();
  if (t === "") return undefined;
  const n = Number(t);
  return Number.isFinite(n) ? n : undefined;
}

/**
 * Coerces a command-line string to the type of `key`'s default.
 *
 * Numbers reject `NaN`, `""` and words; integer keys reject fractions;
 * booleans take true/false, yes/no, on/off, 1/0; pairs take `"0.2,1"`.
 *
 * @throws {ConfigError} naming the key, the text and an example.
 */
export function parseCliValue(key: string, text: string, source = "the command line"): ConfigValue {
  const info = KEYS.get(key);
  if (!info) throw new ConfigError(unknownKeyMessage(key, text, source), { key, source });
  switch (info.kind) {
    case "string":
      return text;
    case "boolean": {
      const word = text.trim().toLowerCase();
      if (TRUE_WORDS.has(word)) return true;
      if (FALSE_WORDS.has(word)) return false;
      throw typeError(key, text, source, example(key, true));
    }
    case "number":
    case "integer": {
      const n = parseNumber(text);
      if (n === undefined) throw typeError(key, text, source, example(key, true));
      if (info.kind === "integer" && !Number.isInteger(n)) {
        throw typeError(key, text, source, `Use a whole number. ${example(key, true)}`);
      }
      return n;
    }
    case "pair": {
      const body = text.trim().replace(/^\[(.*)\]$/, "$1");
      const parts = body.split(",").map(parseNumber);
      if (parts.length !== 2 || parts[0] === undefined || parts[1] === undefined) {
        throw typeError(key, text, source, example(key, true));
      }
      return [parts[0], parts[1]];
    }
  }
}

/**
 * Checks a value read from YAML or JSON against the kind of `key`.
 *
 * Strings are accepted for booleans (`yes`) and pairs (`"0.2,1"`) as on the
 * command line; numbers are never accepted as strings or vice versa.
 *
 * @throws {ConfigError} naming the key, the value, the source and an example.
 */
export function checkFileValue(key: string, value: unknown, source: string): ConfigValue {
  const info = KEYS.get(key);
  if (!info) throw new ConfigError(unknownKeyMessage(key, value, source), { key, source });
  if (value === null || value === undefined) {
    throw new ConfigError(
      `config key "${key}" has no value (from ${source}). Give a value or delete the line. ` +
        example(key, false),
      { key, source },
    );
  }
  switch (info.kind) {
    case "string":
      if (typeof value === "string") return value;
      throw typeError(
        key,
        value,
        source,
        typeof value === "number" || typeof value === "boolean"
          ? `Quote it: ${info.leaf}: "${String(value)}".`
          : example(key, false),
      );
    case "boolean":
      if (typeof value === "boolean") return value;
      if (typeof value === "string") {
        const word = value.trim().toLowerCase();
        if (TRUE_WORDS.has(word)) return true;
        if (FALSE_WORDS.has(word)) return false;
      }
      throw typeError(key, value, source, example(key, false));
    case "number":
    case "integer":
      if (typeof value !== "number" || !Number.isFinite(value)) {
        const hint = typeof value === "string" && parseNumber(value) !== undefined
          ? `Write it without quotes: ${info.leaf}: ${value.trim()}.`
          : example(key, false);
        throw typeError(key, value, source, hint);
      }
      if (info.kind === "integer" && !Number.isInteger(value)) {
        throw typeError(key, value, source, `Use a whole number. ${example(key, false)}`);
      }
      return value;
    case "pair":
      if (typeof value === "string") return parseCliValue(key, value, source);
      if (
        Array.isArray(value) && value.length === 2 &&
        value.every((v) => typeof v === "number" && Number.isFinite(v))
      ) {
        return [value[0], value[1]];
      }
      throw typeError(key, value, source, example(key, false));
  }
}

/** Freezes an object and everything it holds. Returns the same object. */
export function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === "object" && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const child of Object.values(value as Record<string, unknown>)) deepFreeze(child);
  }
  return value;
}
