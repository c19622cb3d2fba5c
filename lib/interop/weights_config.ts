/**
 * The `config.json` beside a weights file: timm's (`architecture`, the model arguments at the
 * top level or under `model_args`, `pretrained_cfg.mean/std/input_size`), ours (timm's plus
 * MAE's `decoder_embed_dim` / `decoder_depth` / `decoder_num_heads` / `norm_pix_loss` and
 * `mim_method`), or Hugging Face's `ViTMAEConfig` (`hidden_size`, `num_hidden_layers`, ...;
 * mean and std from a `preprocessor_config.json` beside it).
 *
 * @module
 */
import { dirname, join } from "node:path";
import { ConfigError } from "../config/mod.ts";

/** The model and normalisation a weights file's `config.json` describes. */
export interface WeightsConfig {
  /** The file read. */
  path: string;
  /** `timm` (timm and ours) or `hf-vitmae` (Hugging Face `ViTMAEConfig`). */
  kind: "timm" | "hf-vitmae";
  architecture?: string;
  imageSize: number;
  patchSize: number;
  channels: number;
  dim: number;
  depth: number;
  heads: number;
  mlpRatio: number;
  /** MAE's decoder, when the file says (`decoder_embed_dim`... or HF's `decoder_hidden_size`...). */
  decoder?: { dim: number; depth: number; heads: number };
  /** The normalisation the weights were trained with (pixels in [0, 1]), when given. */
  mean?: number[];
  std?: number[];
  /** `mim_method` (ours): which MIM method the file's extra tensors belong to. */
  method?: string;
  normPixLoss?: boolean;
  /** LayerNorm epsilon, when the file says (HF); ours is 1e-6 as timm's ViT. */
  layerNormEps?: number;
}

/** `config.json` beside `weights` (the default of `--config`). */
export function configBeside(weights: string): string {
  return join(dirname(weights), "config.json");
}

type Json = Record<string, unknown>;

const isObject = (v: unknown): v is Json =>
  typeof v === "object" && v !== null && !Array.isArray(v);

/**
 * Read and check the `config.json` of a weights file.
 *
 * @throws {ConfigError} for a missing or unreadable file, a missing or bad size, or an
 *   activation or layout this toolkit's ViT does not have; the message names the key.
 */
export async function readWeightsConfig(path: string): Promise<WeightsConfig> {
  let json: unknown;
  try {
    json = JSON.parse(await Deno.readTextFile(path));
  } catch (e) {
    throw new ConfigError(
      `${path}: cannot read the weights' config (${(e as Error).message}); write a config.json ` +
        `beside the weights (img_size, patch_size, in_chans, embed_dim, depth, num_heads, ` +
        `mlp_ratio, pretrained_cfg.mean/std) or pass --config=FILE.json`,
      { source: path },
    );
  }
  if (!isObject(json)) throw new ConfigError(`${path}: not a JSON object`, { source: path });
  if ("hidden_size" in json || json.model_type === "vit_mae") return await hfConfig(json, path);
  return timmConfig(json, path);
}

function need(json: Json, key: string, path: string, fallback?: unknown): number {
  let v = json[key] ?? fallback;
  if (Array.isArray(v) && v.length === 2 && v[0] === v[1]) v = v[0]; // [224, 224]
  if (typeof v !== "number" || !(v > 0)) {
    throw new ConfigError(
      `${path}: "${key}" is ${JSON.stringify(v)}; expected a positive number (square images only)`,
      { key, source: path },
    );
  }
  return v;
}

function numbers(v: unknown, key: string, path: string): number[] | undefined {
  if (v === undefined || v === null) return undefined;
  if (!Array.isArray(v) || !v.every((x) => typeof x === "number" && Number.isFinite(x))) {
    throw new ConfigError(`${path}: "${key}" is ${JSON.stringify(v)}; expected a list of numbers`, {
      key,
      source: path,
    });
  }
  return v as number[];
}

function refuse(json: Json, key: string, ok: (v: unknown) => boolean, why: string, path: string) {
  if (key in json && !ok(json[key])) {
    throw new ConfigError(`${path}: "${key}" is ${JSON.stringify(json[key])}: ${why}`, {
      key,
      source: path,
    });
  }
}

function timmConfig(json: Json, path: string): WeightsConfig {
  const args: Json = { ...json, ...(isObject(json.model_args) ? json.model_args : {}) };
  const pre: Json = isObject(json.pretrained_cfg) ? json.pretrained_cfg : {};
  const input = numbers(pre.input_size, "pretrained_cfg.input_size", path);
  // what timm's VisionTransformer can hold but this ViT cannot: say so rather than misread it
  refuse(args, "class_token", (v) => v !== false, "this ViT always has a CLS token", path);
  refuse(args, "no_embed_class", (v) => v !== true, "the CLS token needs a position", path);
  refuse(args, "reg_tokens", (v) => !v, "register tokens are not supported", path);
  refuse(args, "qkv_bias", (v) => v !== false, "this ViT's qkv projection has a bias", path);
  refuse(args, "init_values", (v) => v === null, "LayerScale is not supported", path);
  const decoder = "decoder_embed_dim" in args
    ? {
      dim: need(args, "decoder_embed_dim", path),
      depth: need(args, "decoder_depth", path),
      heads: need(args, "decoder_num_heads", path),
    }
    : undefined;
  return {
    path,
    kind: "timm",
    architecture: typeof json.architecture === "string" ? json.architecture : undefined,
    imageSize: need(args, "img_size", path, input?.[1]),
    patchSize: need(args, "patch_size", path),
    channels: need(args, "in_chans", path, input?.[0] ?? 3),
    dim: need(args, "embed_dim", path),
    depth: need(args, "depth", path),
    heads: need(args, "num_heads", path),
    mlpRatio: need(args, "mlp_ratio", path, 4),
    decoder,
    mean: numbers(pre.mean ?? json.mean, "pretrained_cfg.mean", path),
    std: numbers(pre.std ?? json.std, "pretrained_cfg.std", path),
    method: typeof json.mim_method === "string" ? json.mim_method : undefined,
    normPixLoss: typeof args.norm_pix_loss === "boolean" ? args.norm_pix_loss : undefined,
  };
}

async function hfConfig(json: Json, path: string): Promise<WeightsConfig> {
  refuse(json, "hidden_act", (v) => v === "gelu", 'only exact GELU ("gelu") is supported', path);
  refuse(json, "qkv_bias", (v) => v !== false, "this ViT's qkv projection has a bias", path);
  const dim = need(json, "hidden_size", path);
  const mlpRatio = need(json, "intermediate_size", path) / dim;
  // our MAE decoder's MLP has the encoder's ratio
  refuse(
    json,
    "decoder_intermediate_size",
    (v) => typeof v === "number" && v === mlpRatio * (json.decoder_hidden_size as number),
    `the decoder's MLP ratio must be the encoder's (${mlpRatio})`,
    path,
  );
  const decoder = "decoder_hidden_size" in json
    ? {
      dim: need(json, "decoder_hidden_size", path),
      depth: need(json, "decoder_num_hidden_layers", path),
      heads: need(json, "decoder_num_attention_heads", path),
    }
    : undefined;
  // HF keeps the normalisation in the image processor's file
  let mean: number[] | undefined, std: number[] | undefined;
  const pre = join(dirname(path), "preprocessor_config.json");
  try {
    const p = JSON.parse(await Deno.readTextFile(pre));
    mean = numbers(p.image_mean, "image_mean", pre);
    std = numbers(p.image_std, "image_std", pre);
  } catch (e) {
    if (e instanceof ConfigError) throw e;
  }
  return {
    path,
    kind: "hf-vitmae",
    architecture: Array.isArray(json.architectures) && typeof json.architectures[0] === "string"
      ? json.architectures[0]
      : undefined,
    imageSize: need(json, "image_size", path),
    patchSize: need(json, "patch_size", path),
    channels: need(json, "num_channels", path, 3),
    dim,
    depth: need(json, "num_hidden_layers", path),
    heads: need(json, "num_attention_heads", path),
    mlpRatio,
    decoder,
    mean,
    std,
    normPixLoss: typeof json.norm_pix_loss === "boolean" ? json.norm_pix_loss : undefined,
    layerNormEps: typeof json.layer_norm_eps === "number" ? json.layer_norm_eps : undefined,
  };
}
