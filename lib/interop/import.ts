/**
 * `deno task import`: weights in timm names (or Hugging Face ViTMAE names) and their
 * `config.json` into a run folder that every task reading runs accepts (`linprobe`, `knn`,
 * `finetune`, `features`, `plots`, and `pretrain` to continue).
 *
 * The folder holds what a pre-training run at step 0 holds: `config.json` (the model shape
 * from the weights' config, the data / mim / train settings of the command line), `run.json`
 * (`normalization: "run"` with the weights' mean and std, `imported` with the source) and a
 * checkpoint with the weights at optimiser step 0 (no AdamW moments: they start at zero). A learned `pos_embed` is kept as loaded
 * (`shape.posEmbed: "learned"`); one equal to the fixed sin-cos table (MAE's) becomes that
 * table. MAE's decoder and SimMIM's head are loaded when the file has them and initialised
 * from the run's seed when it has none.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { type Config, ConfigError, defaultConfig, saveConfig } from "../config/mod.ts";
import { nativeChannels } from "../data/mod.ts";
import { MIM_METHODS, type MimMethodName } from "../mim/methods.ts";
import { sincosPosEmbed2d } from "../vit/pos_embed.ts";
import { type PosEmbedKind, PRESETS } from "../vit/presets.ts";
import {
  buildModel,
  type CheckpointData,
  gitCommit,
  pathExists,
  RunLock,
  runPaths,
  saveCheckpoint,
  writeRunInfo,
} from "../run/mod.ts";
import { readSafetensors } from "../run/safetensors.ts";
import { counterpartOf, type PatchGeometry, theirShape, toOurs } from "./layout.ts";
import { canonicalTensors, type NamedTensor } from "./names.ts";
import type { WeightsConfig } from "./weights_config.ts";

/** timm's `IMAGENET_DEFAULT_MEAN` / `_STD`: the normalisation when a 3-channel config has none. */
export const IMAGENET_MEAN: readonly number[] = Object.freeze([0.485, 0.456, 0.406]);
export const IMAGENET_STD: readonly number[] = Object.freeze([0.229, 0.224, 0.225]);

/** Largest difference from our sin-cos table at which a loaded table is taken to be it. */
const SINCOS_TOLERANCE = 1e-5;

/** Tensors a file may carry that the run does not need: a classifier, a pooled-feature norm. */
const IGNORABLE = /^(head|fc_norm|pooler)\./;

/** The preset nearest a weights config (image size, then width): it names the model family. */
function nearestPreset(w: WeightsConfig): string {
  const names = Object.keys(PRESETS);
  const cost = (n: string) => [
    Math.abs(PRESETS[n].imageSize - w.imageSize),
    Math.abs(PRESETS[n].dim - w.dim),
  ];
  return names.reduce((best, n) => {
    const [a, b] = cost(n), [c, d] = cost(best);
    return a < c || (a === c && b < d) ? n : best;
  });
}

/**
 * The base config of an imported run: the defaults with the model shape of the weights'
 * config (its decoder, when it names one, else the nearest preset's), `data.imageSize`, a
 * dataset with the right channels (`fashion-mnist` for 1, `synthetic` for 3: pass
 * `--data.*` for real data), the method and its conventions, `run.name` `import`. The
 * command line applies on top (`parseTask`'s `base`).
 */
export function importBase(w: WeightsConfig): Config {
  const config = defaultConfig();
  const preset = nearestPreset(w);
  const method = (w.method ?? "mae") as MimMethodName;
  const conventions = MIM_METHODS[method]?.conventions ?? MIM_METHODS.mae.conventions;
  const dec = w.decoder ?? {
    dim: PRESETS[preset].decoderDim,
    depth: PRESETS[preset].decoderDepth,
    heads: PRESETS[preset].decoderHeads,
  };
  config.model = {
    ...config.model,
    preset,
    patchSize: w.patchSize,
    dim: w.dim,
    depth: w.depth,
    heads: w.heads,
    mlpRatio: w.mlpRatio,
    decoderDim: dec.dim,
    decoderDepth: dec.depth,
    decoderHeads: dec.heads,
    dropPath: 0,
  };
  config.data.imageSize = w.imageSize;
  config.data.name = w.channels === 1 ? "fashion-mnist" : "synthetic";
  config.mim.method = method;
  config.mim.maskRatio = conventions.maskRatio;
  config.mim.normPixLoss = w.normPixLoss ?? conventions.normPixLoss;
  config.run.name = "import";
  return config;
}

/** Options of {@linkcode importWeights}. */
export interface ImportOptions {
  /** The `.safetensors` file. */
  weights: string;
  /** Its config, read with `readWeightsConfig`. */
  weightsConfig: WeightsConfig;
  /** The run folder to write. */
  out: string;
  /** The run's config: {@linkcode importBase} with the command line applied, validated. */
  config: Readonly<Config>;
  /** Overwrite a folder that already holds a run. */
  force?: boolean;
  log?: (s: string) => void;
}

/** What {@linkcode importWeights} wrote. */
export interface ImportResult {
  runDir: string;
  format: "timm" | "hf-vitmae";
  method: string;
  posEmbed: PosEmbedKind;
  /** The method's own tensors (MAE decoder, SimMIM head): loaded, or initialised (absent). */
  extras: "loaded" | "initialised";
  /** Tensors of the file that were not used. */
  ignored: string[];
  parameters: number;
}

/** Whether `table` (`[1+L, D]` rows) is the sin-cos table with a zero CLS row. */
function isSincos(table: Float32Array, grid: number, dim: number): boolean {
  if (dim % 4 !== 0) return false;
  const ref = sincosPosEmbed2d(dim, grid);
  for (let i = 0; i < dim; i++) if (Math.abs(table[i]) > SINCOS_TOLERANCE) return false;
  for (let i = 0; i < ref.length; i++) {
    if (!(Math.abs(table[dim + i] - ref[i]) <= SINCOS_TOLERANCE)) return false;
  }
  return true;
}

function describe(w: WeightsConfig): string {
  return `img_size ${w.imageSize}, patch_size ${w.patchSize}, in_chans ${w.channels}, ` +
    `embed_dim ${w.dim}, depth ${w.depth}, num_heads ${w.heads}, mlp_ratio ${w.mlpRatio}`;
}

/** A position table `[1, 1+L, D]` from the file's `[1, 1+L, D]` or CLS-less `[1, L, D]`. */
function readPosTable(
  t: NamedTensor,
  name: string,
  L: number,
  D: number,
  w: WeightsConfig,
): Float32Array {
  const s = t.shape.join(",");
  if (s === `1,${1 + L},${D}`) return t.read();
  if (s === `1,${L},${D}`) {
    const out = new Float32Array((1 + L) * D); // no CLS position: zero, as timm's no_embed_class
    out.set(t.read(), D);
    return out;
  }
  throw new RangeError(
    `tensor "${name}" has shape [${t.shape}] in the weights, but ${w.path} (${describe(w)}) ` +
      `needs [1,${1 + L},${D}]`,
  );
}

/**
 * Read `weights` in timm or HF ViTMAE names, check every tensor against the shape of
 * `weightsConfig`, and write the run folder `out`.
 *
 * @throws {RangeError} naming the tensor and both shapes on a mismatch, a missing encoder
 *   tensor, or a tensor this ViT has no place for (LayerScale, register tokens...).
 * @throws {ConfigError} when the data settings contradict the weights, or `out` holds a run.
 */
export async function importWeights(opts: ImportOptions): Promise<ImportResult> {
  const { config, weightsConfig: w, out } = opts;
  const log = opts.log ?? ((s: string) => console.log(s));
  if (!(await pathExists(opts.weights))) {
    throw new ConfigError(`--weights=${opts.weights}: no such file`, {
      key: "weights",
      source: "command line",
    });
  }
  const channels = nativeChannels(config.data.name);
  if (channels !== w.channels) {
    throw new ConfigError(
      `data.name ${config.data.name} has ${channels} channel(s), the weights take in_chans ` +
        `${w.channels}; pass --data.name (and --data.root) of a dataset with ${w.channels}`,
      { key: "data.name", source: "command line" },
    );
  }
  if (config.data.imageSize !== w.imageSize) {
    throw new ConfigError(
      `data.imageSize ${config.data.imageSize}: the weights take ${w.imageSize} px images ` +
        `(img_size of ${w.path}); leave data.imageSize out`,
      { key: "data.imageSize", source: "command line" },
    );
  }
  const mean = w.mean ?? (w.channels === 3 ? IMAGENET_MEAN : undefined);
  const std = w.std ?? (w.channels === 3 ? IMAGENET_STD : undefined);
  if (!mean || !std || mean.length !== w.channels || std.length !== w.channels) {
    throw new ConfigError(
      `${w.path}: pretrained_cfg.mean / std ${JSON.stringify(w.mean)} / ${
        JSON.stringify(w.std)
      } do not give one value per channel (${w.channels}); add the normalisation the weights ` +
        `were trained with`,
      { key: "pretrained_cfg.mean", source: w.path },
    );
  }
  if (!w.mean) log(`${w.path} gives no mean/std: using ImageNet's (timm's default)`);
  if (w.layerNormEps !== undefined && w.layerNormEps !== 1e-6) {
    log(
      `note: ${w.path} has layer_norm_eps ${w.layerNormEps}; this ViT's LayerNorm uses 1e-6 ` +
        `(as timm's), so features differ from the source model by about that much`,
    );
  }
  const paths = runPaths(out);
  if (!opts.force && (await pathExists(paths.checkpoint) || await pathExists(paths.config))) {
    throw new ConfigError(
      `--out=${out} already holds a run; pass --force to overwrite it or choose another folder`,
      { key: "out", source: "command line" },
    );
  }

  const file = await readSafetensors(opts.weights);
  const { format, tensors } = canonicalTensors(file);
  const g = w.imageSize / w.patchSize, L = g * g, D = w.dim;
  const posSrc = tensors.get("pos_embed");
  if (!posSrc) throw new RangeError(`${opts.weights}: no tensor "pos_embed" (a timm ViT has one)`);
  const pos = readPosTable(posSrc, "pos_embed", L, D, w);
  const posEmbed: PosEmbedKind = isSincos(pos, g, D) ? "sincos" : "learned";
  const geometry: PatchGeometry = { patchSize: w.patchSize, channels: w.channels };
  const method = config.mim.method;
  // mask_token is both methods' name, so the decoder / head proper says whose file it is
  const extraNames = method === "mae"
    ? ["decoder_embed.weight", "decoder_pred.weight"]
    : method === "simmim"
    ? ["decoder.0.weight"]
    : ["head.weight"];
  const hasExtras = extraNames.some((n) => tensors.has(n));
  const used = new Set<string>(["pos_embed"]);

  const model = buildModel(config, w.channels, w.imageSize, posEmbed);
  const arrays: CheckpointData["arrays"] = new Map();
  try {
    for (const p of model.store.params.values()) {
      const ourShape = p.variable.shape;
      const cp = counterpartOf(p.name, method);
      const isExtra = !p.name.startsWith("encoder.") || p.name === "encoder.mask_token";
      let data: Float32Array;
      if (p.name === "encoder.pos_embed") {
        data = pos;
      } else {
        const src = tensors.get(cp.name);
        if (!src) {
          if (isExtra && !hasExtras) {
            // no decoder / head in the file: the fresh one from the run's seed
            data = p.variable.dataSync() as Float32Array;
            arrays.set(`param/${p.name}`, { shape: ourShape, data });
            continue;
          }
          throw new RangeError(
            `${opts.weights}: no tensor "${cp.name}" (our ${p.name}, shape [${
              theirShape(cp.layout, ourShape, geometry)
            }]); is it a ViT in timm names (${describe(w)})?`,
          );
        }
        const want = theirShape(cp.layout, ourShape, geometry);
        if (src.shape.join(",") !== want.join(",")) {
          throw new RangeError(
            `tensor "${cp.name}" has shape [${src.shape}] in ${opts.weights}, but ${w.path} ` +
              `(${describe(w)}) needs [${want}]`,
          );
        }
        used.add(cp.name);
        data = toOurs(cp.layout, src.read(), ourShape, geometry);
      }
      arrays.set(`param/${p.name}`, { shape: ourShape, data });
    }
    if (method === "mae" && tensors.has("decoder_pos_embed")) {
      const Dd = config.model.decoderDim;
      const t = readPosTable(tensors.get("decoder_pos_embed")!, "decoder_pos_embed", L, Dd, w);
      if (!isSincos(t, g, Dd)) {
        throw new RangeError(
          `tensor "decoder_pos_embed" of ${opts.weights} is not the fixed 2-D sin-cos table ` +
            `that this MAE decoder uses`,
        );
      }
      used.add("decoder_pos_embed");
    }
    const unused = [...tensors.keys()].filter((n) => !used.has(n));
    const foreign = unused.filter((n) =>
      !IGNORABLE.test(n) && !/^decoder/.test(n) && n !== "mask_token"
    );
    if (foreign.length > 0) {
      throw new RangeError(
        `${opts.weights}: tensor(s) ${foreign.slice(0, 5).map((n) => `"${n}"`).join(", ")}${
          foreign.length > 5 ? ", ..." : ""
        } have no place in this ViT (LayerScale, register tokens, another architecture?); ` +
          `nothing was written`,
      );
    }
    const ignored = unused.flatMap((n) => tensors.get(n)!.from);
    if (ignored.length > 0) log(`ignored ${ignored.length} tensor(s): ${ignored.join(", ")}`);

    const lock = await RunLock.acquire(out);
    try {
      await saveConfig(out, { ...config, run: { ...config.run, dir: out } } as Config);
      const shape = model.encoder.shape;
      await writeRunInfo(out, {
        backend: "none",
        threads: 0,
        dataset: config.data.name,
        images: 0,
        channels: w.channels,
        mean: [...mean],
        std: [...std],
        normalization: "run",
        imageSize: w.imageSize,
        shape,
        parameters: model.store.count(),
        stepsPerEpoch: 0,
        totalSteps: 0,
        deno: Deno.version.deno,
        tfjs: tf.version.tfjs,
        gitCommit: await gitCommit(),
        command: ["deno", ...Deno.args].join(" "),
        imported: {
          weights: opts.weights,
          config: w.path,
          format,
          architecture: w.architecture,
          ignored: ignored.length > 0 ? ignored : undefined,
        },
      });
      await saveCheckpoint(paths.checkpoint, {
        meta: {
          globalStep: 0,
          optimizerStep: 0,
          epoch: 0,
          stepsPerEpoch: 0,
          seed: config.run.seed,
          method,
          planner: "imported",
          imported: true,
        },
        arrays,
      });
    } finally {
      await lock.release();
    }
    log(
      `imported ${opts.weights} (${format} names, ${describe(w)}) into ${out}: ${method}, ` +
        `${posEmbed} position table, ${hasExtras ? "its" : "a freshly initialised"} ${
          method === "mae" ? "decoder" : "head"
        }, ${model.store.count().toLocaleString()} params`,
    );
    return {
      runDir: out,
      format,
      method,
      posEmbed,
      extras: hasExtras ? "loaded" : "initialised",
      ignored,
      parameters: model.store.count(),
    };
  } finally {
    model.dispose();
  }
}
