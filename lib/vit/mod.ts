/**
 * Vision Transformer: layers, position embeddings, patches, presets, encoder.
 *
 * @module
 */

// Layers (the textbook math beside the fast path, behind `setTextbookLayers`).
export {
  Attention,
  Block,
  denseOp,
  gelu,
  LayerNorm,
  Linear,
  Mlp,
  repeatToken,
  setTextbookLayers,
  textbookLayers,
} from "./layers.ts";

// Parameters owned by a model.
export { type Init, type Param, ParamStore } from "./params.ts";

// Patches and the fixed 2-D sin-cos position table.
export { patchify, unpatchify } from "./patch.ts";
export { sincosPosEmbed2d } from "./pos_embed.ts";

// Presets and the encoder.
export { type PosEmbedKind, PRESET_NAMES, PRESETS, type VitShape } from "./presets.ts";
export { flatIndices, resolveShape, type ShapeOverrides, VisionTransformer } from "./vit.ts";
