/**
 * Weights in and out: a run's encoder as timm-compatible safetensors (`export`), timm or
 * Hugging Face ViTMAE weights as a run folder (`import`), and a run's CLS features as `.npy`
 * (`features`). The safetensors and `.npy` formats themselves live in `lib/run`.
 *
 * @module
 */

// The name and layout mapping (ours <-> timm / MAE / SimMIM).
export {
  type Counterpart,
  counterpartOf,
  type Layout,
  type PatchGeometry,
  theirShape,
  toOurs,
  toTheirs,
  transpose2d,
  withClsRow,
} from "./layout.ts";
export { type CanonicalTensors, canonicalTensors, type NamedTensor } from "./names.ts";
export { configBeside, readWeightsConfig, type WeightsConfig } from "./weights_config.ts";

// Export, import, features.
export {
  defaultExportDir,
  exportConfig,
  type ExportResult,
  exportRun,
  timmArchitecture,
} from "./export.ts";
export {
  IMAGENET_MEAN,
  IMAGENET_STD,
  importBase,
  type ImportOptions,
  type ImportResult,
  importWeights,
} from "./import.ts";
export {
  featureSplit,
  writeFeatures,
  type WriteFeaturesOptions,
  type WrittenFeatures,
} from "./features.ts";

// The tasks.
export {
  exportTask,
  featuresTask,
  type ImportSource,
  importSource,
  importTask,
  type InteropTaskArgs,
  takeConfigFlag,
} from "./cli.ts";
