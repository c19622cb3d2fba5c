/**
 * The tensors of a weights file under timm / MAE names: timm's own files as they are,
 * Hugging Face `ViTMAEModel` / `ViTMAEForPreTraining` files renamed (their separate query,
 * key and value projections stacked into timm's `qkv`, in that order).
 *
 * @module
 */
import { type SafetensorsFile, tensorFloat32 } from "../run/safetensors.ts";

/** One tensor under its timm / MAE name: shape, the file's name(s) for it, and its values. */
export interface NamedTensor {
  shape: number[];
  /** The names in the file it is read from (three for a stacked HF qkv). */
  from: string[];
  read(): Float32Array;
}

/** A file's tensors in timm / MAE names, and how it named them. */
export interface CanonicalTensors {
  /** `timm` (timm, MAE and this toolkit) or `hf-vitmae` (Hugging Face ViTMAE). */
  format: "timm" | "hf-vitmae";
  tensors: Map<string, NamedTensor>;
}

/** HF ViTMAE layer sub-module -> timm block sub-module. */
const HF_LAYER: readonly [RegExp, string][] = [
  [/^layernorm_before\./, "norm1."],
  [/^layernorm_after\./, "norm2."],
  [/^attention\.output\.dense\./, "attn.proj."],
  [/^intermediate\.dense\./, "mlp.fc1."],
  [/^output\.dense\./, "mlp.fc2."],
];

const HF_TOP: readonly [RegExp, string][] = [
  [/^embeddings\.cls_token$/, "cls_token"],
  [/^embeddings\.position_embeddings$/, "pos_embed"],
  [/^embeddings\.patch_embeddings\.projection\./, "patch_embed.proj."],
  [/^layernorm\./, "norm."],
  [/^decoder\.decoder_embed\./, "decoder_embed."],
  [/^decoder\.mask_token$/, "mask_token"],
  [/^decoder\.decoder_pos_embed$/, "decoder_pos_embed"],
  [/^decoder\.decoder_norm\./, "decoder_norm."],
  [/^decoder\.decoder_pred\./, "decoder_pred."],
];

/** The timm / MAE name of an HF ViTMAE tensor (q / k / v: `…attn.qkv.<part>#q`), or null. */
function fromHf(name: string): string | null {
  const n = name.replace(/^vit\./, "");
  for (const [re, to] of HF_TOP) if (re.test(n)) return n.replace(re, to);
  const layer = /^(encoder\.layer|decoder\.decoder_layers)\.(\d+)\.(.+)$/.exec(n);
  if (!layer) return null;
  const block = `${layer[1] === "encoder.layer" ? "blocks" : "decoder_blocks"}.${layer[2]}.`;
  const qkv = /^attention\.attention\.(query|key|value)\.(weight|bias)$/.exec(layer[3]);
  if (qkv) return `${block}attn.qkv.${qkv[2]}#${qkv[1][0]}`;
  for (const [re, to] of HF_LAYER) if (re.test(layer[3])) return block + layer[3].replace(re, to);
  return null;
}

/**
 * The tensors of `file` under timm / MAE names. A file is HF's when it has
 * `[vit.]embeddings.patch_embeddings.projection.weight`; then every tensor is renamed, and
 * one with no timm counterpart keeps its own name (the importer reports it as unused).
 *
 * @throws {RangeError} when an HF layer lacks one of query, key, value, or their shapes differ.
 */
export function canonicalTensors(file: SafetensorsFile): CanonicalTensors {
  const names = [...file.tensors.keys()];
  const hf = names.some((n) =>
    /^(vit\.)?embeddings\.patch_embeddings\.projection\.weight$/.test(n)
  );
  const tensors = new Map<string, NamedTensor>();
  const direct = (name: string, as: string) => {
    const e = file.tensors.get(name)!;
    tensors.set(as, { shape: e.shape, from: [name], read: () => tensorFloat32(file, name) });
  };
  if (!hf) {
    for (const n of names) direct(n, n);
    return { format: "timm", tensors };
  }
  const parts = new Map<string, Map<string, string>>(); // qkv name -> q/k/v -> file name
  for (const n of names) {
    const to = fromHf(n);
    if (to === null) direct(n, n);
    else if (to.includes("#")) {
      const [base, part] = to.split("#");
      if (!parts.has(base)) parts.set(base, new Map());
      parts.get(base)!.set(part, n);
    } else direct(n, to);
  }
  for (const [base, byPart] of parts) {
    const from = ["q", "k", "v"].map((p) => byPart.get(p));
    if (from.some((f) => f === undefined)) {
      throw new RangeError(
        `${base}: the file has ${[...byPart.values()].join(", ")} but not all of query, key, value`,
      );
    }
    const shapes = from.map((f) => file.tensors.get(f!)!.shape);
    if (shapes.some((s) => s.join() !== shapes[0].join())) {
      throw new RangeError(
        `${base}: query, key, value have shapes ${shapes.map((s) => `[${s}]`).join(", ")}`,
      );
    }
    // [D, D] x 3 -> [3D, D] (rows q, then k, then v); [D] x 3 -> [3D]
    const shape = [3 * shapes[0][0], ...shapes[0].slice(1)];
    tensors.set(base, {
      shape,
      from: from as string[],
      read: () => {
        const out = new Float32Array(shape.reduce((a, b) => a * b, 1));
        from.forEach((f, i) => out.set(tensorFloat32(file, f!), (i * out.length) / 3));
        return out;
      },
    });
  }
  return { format: "hf-vitmae", tensors };
}
