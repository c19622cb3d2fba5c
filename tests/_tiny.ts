/**
 * Test helper: command-line overrides for a tiny, fast pre-training run on the
 * synthetic set (16 px, a 2-block ViT of width 32, cpu backend).
 */

/** The model and data part of a tiny run; add train/run keys as needed. */
export const TINY_MODEL_ARGS: readonly string[] = Object.freeze([
  "--data.name=synthetic",
  "--data.imageSize=16",
  "--model.preset=vit-micro-28",
  "--model.patchSize=4",
  "--model.dim=32",
  "--model.depth=2",
  "--model.heads=2",
  "--model.decoderDim=16",
  "--model.decoderDepth=1",
  "--model.decoderHeads=2",
  "--train.batchSize=16",
  "--train.warmupEpochs=0",
  "--run.backend=cpu",
]);
