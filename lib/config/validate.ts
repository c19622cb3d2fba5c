/**
 * Semantic checks on a whole config, independent of any data on disk.
 *
 * Checks that need the dataset (the preset's image size against the
 * dataset's, the number of channels) belong to the model builder, which can
 * reuse {@linkcode checkPatchDividesImage}.
 *
 * @module
 */

import type { Config } from "./schema.ts";
import { ConfigError } from "./errors.ts";
import { closestWord } from "./_suggest.ts";
import { configKeys, formatValue, getConfigValue, keyKind } from "./keys.ts";
import { CHOICES, MONITOR_SOURCE_CHOICES as MONITOR_SOURCES } from "./choices.ts";
import { parseNoDecay } from "../vit/params.ts";
import { PRESETS } from "../vit/presets.ts";

export { CHOICES };

function divisors(n: number): number[] {
  const out: number[] = [];
  for (let d = 1; d <= n; d++) if (n % d === 0) out.push(d);
  return out;
}

/** The divisor of `n` closest to `near` (ties go to the smaller one). */
function nearestDivisor(n: number, near: number): number {
  let best = 1;
  for (const d of divisors(n)) if (Math.abs(d - near) < Math.abs(best - near)) best = d;
  return best;
}

/**
 * Throws unless `patchSize` divides `imageSize` (both positive integers).
 *
 * @param where what the sizes belong to, quoted in the message
 *   (e.g. `"model.patchSize / data.imageSize"` or `"preset vit-tiny-32 on cifar10"`).
 * @throws {ConfigError} quoting both sizes and suggesting a divisor.
 * @example
 * ```ts
 * checkPatchDividesImage(28, 4, "vit-tiny-28"); // fine: 7 x 7 patches
 * ```
 */
export function checkPatchDividesImage(imageSize: number, patchSize: number, where: string): void {
  const message = patchProblem(imageSize, patchSize, where);
  if (message !== undefined) throw new ConfigError(message);
}

function patchProblem(imageSize: number, patchSize: number, where: string): string | undefined {
  if (
    !Number.isInteger(imageSize) || imageSize < 1 || !Number.isInteger(patchSize) || patchSize < 1
  ) {
    return `image size ${imageSize} and patch size ${patchSize} must be positive integers (${where}).`;
  }
  if (imageSize % patchSize === 0) return undefined;
  const good = divisors(imageSize).filter((d) => d > 1 && d < imageSize);
  const suggestion = good.length > 0
    ? `Use a patch size that divides ${imageSize}, e.g. ${nearestDivisor(imageSize, patchSize)} ` +
      `(divisors: ${good.join(", ")}), or an image size that is a multiple of ${patchSize} ` +
      `(e.g. ${Math.max(patchSize, Math.round(imageSize / patchSize) * patchSize)}).`
    : `${imageSize} is prime: use an image size that is a multiple of ${patchSize} ` +
      `(e.g. ${Math.max(patchSize, Math.round(imageSize / patchSize) * patchSize)}).`;
  return `patch size ${patchSize} does not divide image size ${imageSize} (${where}): ` +
    `${imageSize} / ${patchSize} = ${
      (imageSize / patchSize).toFixed(2)
    } patches per side. ${suggestion}`;
}

/**
 * Checks every semantic rule of the config tree and throws one error that
 * lists all problems found.
 *
 * @param sources where each dotted key's value came from (file or command
 *   line); quoted in the messages when given.
 * @throws {ConfigError} with `problems` holding one line per problem.
 */
export function validateConfig(
  config: Readonly<Config>,
  sources?: Readonly<Record<string, string>>,
): void {
  const problems: string[] = [];
  const problemKeys: string[] = [];
  const from = (...keys: string[]): string => {
    const places = [...new Set(keys.map((k) => sources?.[k]).filter((s) => s && s !== "default"))]
      .map((s) => s === "command line" ? "on the command line" : `in ${s}`);
    return places.length > 0 ? ` (set ${places.join(" and ")})` : "";
  };
  const fail = (keys: string[], message: string): void => {
    problems.push(message + from(...keys));
    problemKeys.push(keys[0]);
  };
  const v = (key: string) => getConfigValue(config, key);
  const num = (key: string) => v(key) as number;

  // Types first: a config built in code or read from an old file may hold anything.
  const badType = new Set<string>();
  for (const key of configKeys()) {
    const kind = keyKind(key)!;
    const value = v(key) as unknown;
    let ok: boolean;
    if (kind === "string") ok = typeof value === "string";
    else if (kind === "boolean") ok = typeof value === "boolean";
    else if (kind === "pair") {
      ok = Array.isArray(value) && value.length === 2 && value.every((x) => Number.isFinite(x));
    } else {
      ok = typeof value === "number" && Number.isFinite(value) &&
        (kind !== "integer" || Number.isInteger(value));
    }
    if (!ok) {
      badType.add(key);
      fail(
        [key],
        `${key} = ${formatValue(value)} is not ${kind === "integer" ? "an integer" : `a ${kind}`}.`,
      );
    }
  }
  const usable = (...keys: string[]) => keys.every((k) => !badType.has(k));

  for (const [key, allowed] of Object.entries(CHOICES)) {
    if (!usable(key)) continue;
    const value = v(key) as string;
    if (allowed.includes(value)) continue;
    const guess = closestWord(value, allowed);
    fail(
      [key],
      `${key} = ${formatValue(value)} is not one of: ${allowed.join(", ")}.` +
        (guess !== undefined ? ` Did you mean "${guess}"?` : ""),
    );
  }

  const atLeast = (key: string, min: number, why = ""): void => {
    if (usable(key) && !(num(key) >= min)) {
      fail([key], `${key} = ${num(key)} must be >= ${min}${why}.`);
    }
  };
  for (
    const key of [
      "data.limit",
      "data.imageSize",
      "model.patchSize",
      "model.dim",
      "model.depth",
      "model.heads",
      "model.mlpRatio",
      "model.decoderDim",
      "model.decoderDepth",
      "model.decoderHeads",
      "mim.maskUnit",
      "mim.hogWindow",
      "amt.warmup",
      "train.warmupEpochs",
      "train.weightDecay",
      "train.clipGrad",
      "train.ckptEvery",
      "train.maxSteps",
      "eval.knnEvery",
      "eval.attnEvery",
      "run.seed",
      "run.threads",
      "run.vizImages",
      "probe.trainLimit",
      "probe.testLimit",
      "probe.seed",
      "finetune.weightDecay",
      "finetune.trainLimit",
      "finetune.testLimit",
      "finetune.seed",
      "knn.trainLimit",
      "knn.testLimit",
      "detect.steps",
      "detect.batchSize",
      "detect.lr",
      "detect.trainScenes",
      "detect.valScenes",
    ]
  ) atLeast(key, 0, " (0 = default/off)");
  for (const key of ["probe.epochs", "finetune.epochs", "finetune.batchSize"]) atLeast(key, 1);
  for (const key of ["probe.featureBatchSize", "knn.featureBatchSize"]) atLeast(key, 1);
  atLeast("probe.batchSize", 2, " (BatchNorm needs two images)");
  for (const key of ["probe.baseLr", "finetune.baseLr", "knn.temperature"]) {
    if (usable(key) && !(num(key) > 0)) fail([key], `${key} = ${num(key)} must be > 0.`);
  }
  for (const key of ["probe.warmupEpochs", "finetune.warmupEpochs"]) {
    if (usable(key) && !(num(key) >= 0 || num(key) === -1)) {
      fail([key], `${key} = ${num(key)} must be >= 0, or -1 for the default warm-up.`);
    }
  }
  if (usable("finetune.layerDecay")) {
    const x = num("finetune.layerDecay");
    if (!(x >= 0 && x <= 1)) {
      fail(
        ["finetune.layerDecay"],
        `finetune.layerDecay = ${x} must be in (0, 1] (1 = off), or 0 for the method's.`,
      );
    }
  }
  atLeast("mim.hogCell", 1, " (HOG cell side in px)");
  atLeast("mim.hogBins", 2, " (HOG orientation bins)");
  if (usable("mim.hogWindow") && num("mim.hogWindow") === 1) {
    fail(["mim.hogWindow"], `mim.hogWindow = 1 is no window; use 0 (off) or a side >= 2 px.`);
  }
  atLeast("train.epochs", 1);
  atLeast("train.batchSize", 1);
  atLeast("amt.batchSize", 1);
  atLeast("amt.interval", 1, " (epochs between saliency passes)");
  atLeast("train.logEvery", 1);
  atLeast("train.lrBatch", 1, " (the batch size baseLr is given for)");
  atLeast("eval.knnK", 1);
  atLeast("eval.attnImages", 1, " (training images the attention monitor scores)");
  if (usable("eval.attnSources")) {
    const given = v("eval.attnSources") as string;
    const names = given.split(",").map((s) => s.trim());
    const bad = names.find((s) => !(MONITOR_SOURCES as readonly string[]).includes(s));
    if (bad !== undefined) {
      fail(
        ["eval.attnSources"],
        `eval.attnSources = ${formatValue(given)}: ${formatValue(bad)} is not a map the ` +
          `monitor scores; use a comma-separated list of ${MONITOR_SOURCES.join(", ")}.`,
      );
    }
  }
  atLeast("train.baseLr", 0, "; a negative learning rate would ascend the loss");
  atLeast("train.minLr", 0, "; a negative learning rate would ascend the loss");
  if (usable("run.seed") && num("run.seed") > 0xffffffff) {
    fail(["run.seed"], `run.seed = ${num("run.seed")} must fit in 32 bits (0 .. 4294967295).`);
  }

  const inRange = (key: string, lo: number, hi: number, loOpen: boolean): void => {
    if (!usable(key)) return;
    const x = num(key);
    const ok = (loOpen ? x > lo : x >= lo) && x < hi;
    if (!ok) fail([key], `${key} = ${x} must be in ${loOpen ? "(" : "["}${lo}, ${hi}).`);
  };
  inRange("amt.maskRatio", 0, 1, false);
  inRange("amt.throwRatio", 0, 1, false);
  inRange("mim.maskRatio", 0, 1, true);
  inRange("model.dropPath", 0, 1, false);
  inRange("train.beta1", 0, 1, false);
  inRange("train.beta2", 0, 1, false);
  inRange("finetune.labelSmoothing", 0, 1, false);
  inRange("finetune.dropPath", 0, 1, false);
  if (usable("amt.maskRatio", "amt.throwRatio")) {
    const sum = num("amt.maskRatio") + num("amt.throwRatio");
    if (!(sum < 1)) {
      fail(
        ["amt.maskRatio", "amt.throwRatio"],
        `amt.maskRatio + amt.throwRatio = ${num("amt.maskRatio")} + ${num("amt.throwRatio")} = ` +
          `${+sum.toFixed(6)} must be < 1 so that some patches stay visible; lower one of them.`,
      );
    }
  }

  for (const key of ["data.cropScale", "finetune.cropScale"]) {
    if (!usable(key)) continue;
    const [a, b] = v(key) as [number, number];
    if (!(a > 0 && a <= b && b <= 1)) {
      fail([key], `${key} = ${a},${b} must satisfy 0 < a <= b <= 1 (e.g. 0.2,1).`);
    }
  }
  if (usable("data.cropRatio")) {
    const [a, b] = v("data.cropRatio") as [number, number];
    if (!(a > 0 && a <= b)) {
      fail(
        ["data.cropRatio"],
        `data.cropRatio = ${a},${b} must satisfy 0 < a <= b (e.g. 0.75,1.3333).`,
      );
    }
  }

  for (const key of ["data.split", "run.name", "detect.budget", "detect.backbones"]) {
    if (usable(key) && (v(key) as string).trim() === "") fail([key], `${key} must not be empty.`);
  }
  if (usable("run.name")) {
    const name = v("run.name") as string;
    if (name.trim() !== "" && !/^[A-Za-z0-9._-]+$/.test(name)) {
      fail(
        ["run.name"],
        `run.name = ${
          formatValue(name)
        } is used in a folder name: use only letters, digits, ".", "_" and "-".`,
      );
    }
  }
  if (
    usable("data.name", "data.root") && v("data.name") === "image-folder" && v("data.root") === ""
  ) {
    fail(
      ["data.name", "data.root"],
      `data.name = "image-folder" needs data.root: the folder holding the images.`,
    );
  }

  if (usable("data.imageSize", "model.patchSize")) {
    const image = num("data.imageSize");
    const patch = num("model.patchSize");
    if (image > 0 && patch > 0) {
      const message = patchProblem(image, patch, "model.patchSize, data.imageSize");
      if (message !== undefined) fail(["model.patchSize", "data.imageSize"], message);
    }
  }
  const heads = (dimKey: string, headsKey: string): void => {
    if (!usable(dimKey, headsKey)) return;
    const dim = num(dimKey);
    const h = num(headsKey);
    if (dim > 0 && h > 0 && dim % h !== 0) {
      const good = divisors(dim).filter((d) => d <= 32);
      fail(
        [dimKey, headsKey],
        `${headsKey} = ${h} does not divide ${dimKey} = ${dim}: each head needs dim / heads channels. ` +
          `Use ${headsKey} = ${nearestDivisor(dim, h)} (divisors up to 32: ${good.join(", ")}).`,
      );
    }
  };
  heads("model.dim", "model.heads");
  heads("model.decoderDim", "model.decoderHeads");

  if (usable("mim.maskUnit", "model.patchSize")) {
    const unit = num("mim.maskUnit");
    const patch = num("model.patchSize");
    if (unit > 0 && patch > 0 && unit % patch !== 0) {
      fail(
        ["mim.maskUnit", "model.patchSize"],
        `mim.maskUnit = ${unit} must be a multiple of model.patchSize = ${patch} ` +
          `(e.g. ${Math.max(1, Math.round(unit / patch)) * patch}).`,
      );
    }
  }
  if (usable("mim.maskUnit", "data.imageSize")) {
    const unit = num("mim.maskUnit");
    const image = num("data.imageSize");
    if (unit > 0 && image > 0 && image % unit !== 0) {
      fail(
        ["mim.maskUnit", "data.imageSize"],
        `mim.maskUnit = ${unit} does not divide data.imageSize = ${image}; ` +
          `use a divisor of ${image} such as ${nearestDivisor(image, unit)}.`,
      );
    }
  }

  // MaskFeat's HOG geometry (other methods ignore these keys); the model asserts it again against
  // the dataset's image size
  if (usable("mim.method", "mim.hogCell", "model.patchSize", "model.preset")) {
    const patch = num("model.patchSize") || PRESETS[v("model.preset") as string]?.patchSize || 0;
    const cell = num("mim.hogCell");
    if (v("mim.method") === "maskfeat" && patch > 0 && cell >= 1 && patch % cell !== 0) {
      const fits = divisors(patch).filter((d) => d < patch);
      fail(
        ["mim.hogCell", "model.patchSize"],
        `mim.hogCell = ${cell} does not divide the ${patch} px patch: HOG cells tile each ` +
          `patch; use one of ${fits.join(", ")} (MaskFeat: 8 px cells in 16 px patches).`,
      );
    }
  }
  if (usable("mim.method", "mim.hogWindow", "data.imageSize")) {
    const w = num("mim.hogWindow");
    const image = num("data.imageSize");
    if (v("mim.method") === "maskfeat" && w > 1 && image > 0 && image % w !== 0) {
      fail(
        ["mim.hogWindow", "data.imageSize"],
        `mim.hogWindow = ${w} does not divide data.imageSize = ${image}: the window is tiled ` +
          `over the image; use a divisor such as ${nearestDivisor(image, w)}, or 0 (off).`,
      );
    }
  }

  // Saliency sources, register tokens, weight-decay groups.
  atLeast("model.registers", 0, " (0 = no register tokens)");
  inRange("amt.emaMomentum", 0, 1, false);
  if (
    usable("amt.saliency", "model.registers") && v("amt.saliency") === "registers" &&
    num("model.registers") === 0
  ) {
    fail(
      ["amt.saliency", "model.registers"],
      `amt.saliency = "registers" reads the CLS map of an encoder with register tokens, but ` +
        `model.registers = 0; set model.registers > 0 (e.g. 4) or pick another amt.saliency.`,
    );
  }
  if (usable("train.noDecay")) {
    try {
      parseNoDecay(v("train.noDecay") as string);
    } catch (e) {
      fail(["train.noDecay"], `${(e as Error).message}.`);
    }
  }

  if (problems.length === 1) {
    throw new ConfigError(`invalid config: ${problems[0]}`, { key: problemKeys[0], problems });
  }
  if (problems.length > 1) {
    throw new ConfigError(
      `invalid config (${problems.length} problems):\n` +
        problems.map((p) => `  - ${p}`).join("\n"),
      { key: problemKeys[0], problems },
    );
  }
}
