/**
 * Our parameter names and layouts next to timm's `VisionTransformer` (and MAE's decoder,
 * SimMIM's head): one table of rules, read both ways by export and import.
 *
 * | ours                                   | theirs                              | layout          |
 * |----------------------------------------|-------------------------------------|-----------------|
 * | `encoder.patch_embed.weight [ppc, D]`  | `patch_embed.proj.weight [D,C,p,p]` | `patch`         |
 * | `encoder.patch_embed.bias [D]`         | `patch_embed.proj.bias [D]`         | same            |
 * | `encoder.cls_token [1,1,D]`            | `cls_token [1,1,D]`                 | same            |
 * | `encoder.pos_embed [1,1+L,D]` (learned) | `pos_embed [1,1+L,D]`              | same            |
 * | `encoder.blocks.i.norm{1,2}.*`          | `blocks.i.norm{1,2}.*`             | same            |
 * | `encoder.blocks.i.{attn.qkv,attn.proj,mlp.fc1,mlp.fc2}.weight [in,out]` | `blocks.i.….weight [out,in]` | `linear` |
 * | `encoder.norm.*`                        | `norm.*`                           | same            |
 * | `decoder.embed / decoder.pred` (MAE)    | `decoder_embed / decoder_pred`     | `linear` (weight) |
 * | `decoder.mask_token [1,1,Dd]` (MAE)     | `mask_token`                       | same            |
 * | `decoder.blocks.i.*`, `decoder.norm.*`  | `decoder_blocks.i.*`, `decoder_norm.*` | as the encoder's |
 * | `encoder.mask_token [1,1,D]` (SimMIM)   | `mask_token`                       | same            |
 * | `head.weight [D, ppc]` (SimMIM)         | `decoder.0.weight [ppc,D,1,1]`     | `pixel-shuffle` |
 * | `head.bias [ppc]` (SimMIM)              | `decoder.0.bias [ppc]`             | `pixel-shuffle` |
 * | `head.weight [D, K]` (others: MaskFeat) | `head.weight [K, D]`               | `linear`        |
 *
 * The fixed sin-cos tables have no parameter: export writes them as `pos_embed` and
 * `decoder_pos_embed` `[1, 1+L, D]` with a zero CLS row; import checks them.
 *
 * A patch vector of ours is ordered (row, col, channel): element `(py*p + px)*C + c` (MAE's
 * `nchpwq -> nhwpqc`, `lib/vit/patch.ts`). timm's patch embedding is a `p x p` stride-`p`
 * convolution over the `[C, H, W]` image, kernel `[D, C, p, p]`, so
 * `conv[d, c, py, px] = ours[(py*p + px)*C + c, d]`. SimMIM's head is a 1x1 convolution to
 * `p*p*C` channels then `PixelShuffle(p)`, whose channel `c*p*p + py*p + px` is pixel
 * `(py, px)` of channel `c`.
 *
 * @module
 */

/** How a tensor's values are laid out on our side versus theirs. */
export type Layout = "same" | "linear" | "patch" | "pixel-shuffle";

/** One parameter's counterpart: its name in the file and how the values move. */
export interface Counterpart {
  name: string;
  layout: Layout;
}

/** The block sub-layers whose weights are `[out, in]` in PyTorch and `[in, out]` here. */
const LINEARS = "attn\\.qkv|attn\\.proj|mlp\\.fc1|mlp\\.fc2";

const RULES: readonly [RegExp, string, Layout][] = [
  [/^encoder\.patch_embed\.weight$/, "patch_embed.proj.weight", "patch"],
  [/^encoder\.patch_embed\.bias$/, "patch_embed.proj.bias", "same"],
  [/^encoder\.cls_token$/, "cls_token", "same"],
  [/^encoder\.pos_embed$/, "pos_embed", "same"],
  [
    new RegExp(`^encoder\\.blocks\\.(\\d+)\\.(${LINEARS})\\.weight$`),
    "blocks.$1.$2.weight",
    "linear",
  ],
  [/^encoder\.blocks\.(\d+)\.(.+)$/, "blocks.$1.$2", "same"],
  [/^encoder\.norm\.(weight|bias)$/, "norm.$1", "same"],
  [/^encoder\.mask_token$/, "mask_token", "same"], // SimMIM
  [/^decoder\.embed\.weight$/, "decoder_embed.weight", "linear"],
  [/^decoder\.embed\.bias$/, "decoder_embed.bias", "same"],
  [/^decoder\.mask_token$/, "mask_token", "same"], // MAE
  [
    new RegExp(`^decoder\\.blocks\\.(\\d+)\\.(${LINEARS})\\.weight$`),
    "decoder_blocks.$1.$2.weight",
    "linear",
  ],
  [/^decoder\.blocks\.(\d+)\.(.+)$/, "decoder_blocks.$1.$2", "same"],
  [/^decoder\.norm\.(weight|bias)$/, "decoder_norm.$1", "same"],
  [/^decoder\.pred\.weight$/, "decoder_pred.weight", "linear"],
  [/^decoder\.pred\.bias$/, "decoder_pred.bias", "same"],
];

/** A method's own head: SimMIM's pixel head as its release names it, any other as a Linear. */
const HEADS: Readonly<Record<string, readonly [RegExp, string, Layout][]>> = {
  simmim: [[/^head\.(weight|bias)$/, "decoder.0.$1", "pixel-shuffle"]],
  other: [[/^head\.weight$/, "head.weight", "linear"], [/^head\.bias$/, "head.bias", "same"]],
};

/**
 * The file name and layout of our parameter `name` in a model of MIM method `method`.
 *
 * @throws {RangeError} for a parameter no rule maps (register tokens, a model this table does
 *   not know).
 */
export function counterpartOf(name: string, method = "mae"): Counterpart {
  for (const [re, to, layout] of [...RULES, ...(HEADS[method] ?? HEADS.other)]) {
    if (re.test(name)) return { name: name.replace(re, to), layout };
  }
  throw new RangeError(
    `parameter "${name}" has no timm / MAE name, so this model cannot be exported or imported ` +
      `(extend lib/interop/layout.ts)`,
  );
}

/** The patch geometry the `patch` and `pixel-shuffle` layouts need. */
export interface PatchGeometry {
  patchSize: number;
  channels: number;
}

/** `[rows, cols]` -> `[cols, rows]`. */
export function transpose2d(a: Float32Array, rows: number, cols: number): Float32Array {
  const out = new Float32Array(a.length);
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < cols; c++) out[c * rows + r] = a[r * cols + c];
  }
  return out;
}

/** Index of our patch element `(py, px, c)` and of timm's `(c, py, px)`, for every element. */
function patchOrder(g: PatchGeometry): { ours: Int32Array; theirs: Int32Array } {
  const p = g.patchSize, C = g.channels, n = p * p * C;
  const ours = new Int32Array(n), theirs = new Int32Array(n);
  let i = 0;
  for (let c = 0; c < C; c++) {
    for (let py = 0; py < p; py++) {
      for (let px = 0; px < p; px++) {
        ours[i] = (py * p + px) * C + c;
        theirs[i] = (c * p + py) * p + px;
        i++;
      }
    }
  }
  return { ours, theirs };
}

/**
 * Our values of a parameter of shape `shape` in their layout: the file's shape and data.
 *
 * @param shape our shape (`[in, out]` for linear weights)
 */
export function toTheirs(
  layout: Layout,
  data: Float32Array,
  shape: readonly number[],
  g: PatchGeometry,
): { shape: number[]; data: Float32Array } {
  switch (layout) {
    case "same":
      return { shape: [...shape], data };
    case "linear":
      return { shape: [shape[1], shape[0]], data: transpose2d(data, shape[0], shape[1]) };
    case "patch": {
      // ours [ppc, D] -> conv [D, C, p, p]
      const D = shape[1], p = g.patchSize, C = g.channels, n = p * p * C;
      const { ours, theirs } = patchOrder(g);
      const out = new Float32Array(data.length);
      for (let d = 0; d < D; d++) {
        for (let i = 0; i < n; i++) out[d * n + theirs[i]] = data[ours[i] * D + d];
      }
      return { shape: [D, C, p, p], data: out };
    }
    case "pixel-shuffle": {
      const { ours, theirs } = patchOrder(g);
      const n = ours.length;
      if (shape.length === 1) {
        // bias [ppc]
        const out = new Float32Array(n);
        for (let i = 0; i < n; i++) out[theirs[i]] = data[ours[i]];
        return { shape: [n], data: out };
      }
      // head [D, ppc] -> 1x1 conv [ppc, D, 1, 1]
      const D = shape[0];
      const out = new Float32Array(data.length);
      for (let d = 0; d < D; d++) {
        for (let i = 0; i < n; i++) out[theirs[i] * D + d] = data[d * n + ours[i]];
      }
      return { shape: [n, D, 1, 1], data: out };
    }
  }
}

/** The file shape our parameter of shape `shape` has in their layout (for shape checks). */
export function theirShape(layout: Layout, shape: readonly number[], g: PatchGeometry): number[] {
  switch (layout) {
    case "same":
      return [...shape];
    case "linear":
      return [shape[1], shape[0]];
    case "patch":
      return [shape[1], g.channels, g.patchSize, g.patchSize];
    case "pixel-shuffle":
      return shape.length === 1 ? [shape[0]] : [shape[1], shape[0], 1, 1];
  }
}

/**
 * Their values (already checked to have {@linkcode theirShape}) in our layout, shape `shape`.
 */
export function toOurs(
  layout: Layout,
  data: Float32Array,
  shape: readonly number[],
  g: PatchGeometry,
): Float32Array {
  switch (layout) {
    case "same":
      return data;
    case "linear":
      // theirs [out, in] = [shape[1], shape[0]]
      return transpose2d(data, shape[1], shape[0]);
    case "patch": {
      const D = shape[1];
      const { ours, theirs } = patchOrder(g);
      const n = ours.length;
      const out = new Float32Array(data.length);
      for (let d = 0; d < D; d++) {
        for (let i = 0; i < n; i++) out[ours[i] * D + d] = data[d * n + theirs[i]];
      }
      return out;
    }
    case "pixel-shuffle": {
      const { ours, theirs } = patchOrder(g);
      const n = ours.length;
      const out = new Float32Array(data.length);
      if (shape.length === 1) {
        for (let i = 0; i < n; i++) out[ours[i]] = data[theirs[i]];
        return out;
      }
      const D = shape[0];
      for (let d = 0; d < D; d++) {
        for (let i = 0; i < n; i++) out[d * n + ours[i]] = data[theirs[i] * D + d];
      }
      return out;
    }
  }
}

/** A sin-cos table `[L, D]` as a `[1, 1+L, D]` position embedding with a zero CLS row. */
export function withClsRow(table: Float32Array, L: number, D: number): Float32Array {
  const out = new Float32Array((1 + L) * D);
  out.set(table.subarray(0, L * D), D);
  return out;
}
