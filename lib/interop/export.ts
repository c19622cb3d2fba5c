/**
 * `deno task export`: a run folder's newest checkpoint as `model.safetensors` in timm's
 * `VisionTransformer` names and layouts (plus MAE's decoder or SimMIM's head in their own
 * names), and a timm-style `config.json` with the model arguments and the normalisation the
 * run trained with. See `layout.ts` for the mapping.
 *
 * @module
 */
import { loadRun, runPaths } from "../run/mod.ts";
import { encodeSafetensors, type TensorToWrite } from "../run/safetensors.ts";
import { writeFileAtomic } from "../util/fs.ts";
import { sincosPosEmbed2d } from "../vit/pos_embed.ts";
import type { VitShape } from "../vit/presets.ts";
import { counterpartOf, type PatchGeometry, toTheirs, withClsRow } from "./layout.ts";

/** What {@linkcode exportRun} wrote. */
export interface ExportResult {
  outDir: string;
  /** `<outDir>/model.safetensors` and `<outDir>/config.json`. */
  weights: string;
  config: string;
  /** Checkpoint step exported. */
  step: number;
  method: string;
  /** Tensor names written, in file order (the encoder's first). */
  tensors: string[];
}

/** `<runDir>/export`, the default output folder. */
export function defaultExportDir(runDir: string): string {
  return `${runDir.replace(/\/+$/, "")}/export`;
}

/** timm's registered name for a standard ViT shape, else `VisionTransformer` (build it with the args). */
export function timmArchitecture(s: VitShape): string {
  const sizes: Record<string, string> = {
    "192,12,3": "tiny",
    "384,12,6": "small",
    "768,12,12": "base",
    "1024,24,16": "large",
  };
  const size = sizes[`${s.dim},${s.depth},${s.heads}`];
  const known = s.mlpRatio === 4 && s.channels === 3 && s.imageSize === 224 &&
    (s.patchSize === 16 || (s.patchSize === 32 && size !== "tiny"));
  return size && known ? `vit_${size}_patch${s.patchSize}_224` : "VisionTransformer";
}

/**
 * The timm-style `config.json` of an exported run: `architecture`, the model arguments at the
 * top level and under `model_args`, `pretrained_cfg` (mean, std, input size), and the MIM
 * method's own (MAE's decoder arguments).
 */
export function exportConfig(
  shape: VitShape,
  norm: { mean: readonly number[]; std: readonly number[] },
  mim: { method: string; normPixLoss: boolean },
  source: Record<string, unknown>,
): Record<string, unknown> {
  const args = {
    img_size: shape.imageSize,
    patch_size: shape.patchSize,
    in_chans: shape.channels,
    embed_dim: shape.dim,
    depth: shape.depth,
    num_heads: shape.heads,
    mlp_ratio: shape.mlpRatio,
    num_classes: 0,
    global_pool: "token",
  };
  return {
    architecture: timmArchitecture(shape),
    ...args,
    model_args: { ...args, class_token: true, qkv_bias: true },
    pretrained_cfg: {
      mean: [...norm.mean],
      std: [...norm.std],
      input_size: [shape.channels, shape.imageSize, shape.imageSize],
      num_classes: 0,
    },
    mim_method: mim.method,
    ...(mim.method === "mae"
      ? {
        decoder_embed_dim: shape.decoderDim,
        decoder_depth: shape.decoderDepth,
        decoder_num_heads: shape.decoderHeads,
        norm_pix_loss: mim.normPixLoss,
      }
      : {}),
    amt_mim: source,
  };
}

/**
 * Export the newest checkpoint of `runDir` to `out` (default `<runDir>/export`).
 * Needs a started tfjs backend (any: nothing is computed).
 */
export async function exportRun(
  runDir: string,
  opts: { out?: string; log?: (s: string) => void } = {},
): Promise<ExportResult> {
  const log = opts.log ?? ((s: string) => console.log(s));
  const outDir = opts.out || defaultExportDir(runDir);
  const run = await loadRun(runDir);
  const { model, info, config } = run;
  try {
    const shape = model.encoder.shape;
    const g: PatchGeometry = { patchSize: shape.patchSize, channels: shape.channels };
    const L = model.encoder.numPatches, grid = model.encoder.gridSize;
    const encoder = new Map<string, TensorToWrite>();
    const rest = new Map<string, TensorToWrite>();
    if (!model.encoder.posEmbed) {
      // the fixed table, written out as timm's pos_embed (its CLS position is zero)
      const table = withClsRow(sincosPosEmbed2d(shape.dim, grid), L, shape.dim);
      encoder.set("pos_embed", { shape: [1, 1 + L, shape.dim], data: table });
    }
    for (const p of model.store.params.values()) {
      const cp = counterpartOf(p.name, config.mim.method);
      const t = toTheirs(cp.layout, p.variable.dataSync() as Float32Array, p.variable.shape, g);
      const isEncoder = p.name.startsWith("encoder.") && p.name !== "encoder.mask_token";
      (isEncoder ? encoder : rest).set(cp.name, t);
    }
    if (config.mim.method === "mae") {
      const Dd = shape.decoderDim;
      rest.set("decoder_pos_embed", {
        shape: [1, 1 + L, Dd],
        data: withClsRow(sincosPosEmbed2d(Dd, grid), L, Dd),
      });
    }
    // timm's order: cls_token, pos_embed, patch_embed, blocks, norm; then the method's own
    const first = ["cls_token", "pos_embed"];
    const ordered = new Map<string, TensorToWrite>();
    for (const n of first) ordered.set(n, encoder.get(n)!);
    for (const [n, t] of encoder) if (!first.includes(n)) ordered.set(n, t);
    for (const [n, t] of rest) ordered.set(n, t);
    const norm = run.normalization ?? { mean: info.mean, std: info.std };
    const source = { run: runDir, step: run.step, dataset: info.dataset };
    const bytes = encodeSafetensors(ordered, {
      format: "pt",
      mim_method: config.mim.method,
      amt_mim_run: runDir,
      amt_mim_step: String(run.step),
    });
    await Deno.mkdir(outDir, { recursive: true });
    const weights = `${outDir}/model.safetensors`, configPath = `${outDir}/config.json`;
    await writeFileAtomic(weights, bytes);
    const json = exportConfig(shape, norm, config.mim, source);
    await writeFileAtomic(configPath, JSON.stringify(json, null, 2) + "\n");
    log(
      `exported ${runPaths(runDir).checkpoint} (step ${run.step}, ${config.mim.method}) to ` +
        `${weights} (${ordered.size} tensors, ${
          (bytes.length / 1e6).toFixed(1)
        } MB) and ${configPath}`,
    );
    return {
      outDir,
      weights,
      config: configPath,
      step: run.step,
      method: config.mim.method,
      tensors: [...ordered.keys()],
    };
  } finally {
    model.dispose();
  }
}
