/**
 * Vision Transformer: layers, position embeddings, patches, presets, encoder.
 *
 * @module
 */
export * from "./layers.ts";
export * from "./params.ts";
export * from "./patch.ts";
export * from "./pos_embed.ts";
export * from "./presets.ts";
export * from "./vit.ts";
