/**
 * amt-mim: masked image modeling with Attention-driven Masking and Throwing
 * (AMT) on Deno + TensorFlow.js.
 *
 * The public API, chosen: what the tasks, notebooks, benchmarks and README
 * examples use, and the documented entry points of each area. Each area's full
 * surface is its `lib/<area>/mod.ts`; internals are reached only by file path
 * (tests do that). `tests/mod_exports_test.ts` pins this list against
 * `tests/mod_exports.snapshot.txt`, so adding or removing a name here is a
 * conscious change (`deno test -A tests/mod_exports_test.ts -- --update`).
 *
 * @example
 * ```ts ignore
 * import { pretrain, resolveConfig } from "./mod.ts";
 * const { config } = resolveConfig({ argv: ["--config", "configs/mae.yaml", "--train.epochs=1"] });
 * await pretrain(config);
 * ```
 *
 * @module
 */

// Backend: start tfjs once (`initBackend`), report it, and pick the matmul precision.
export {
  type BackendInfo,
  type BackendOptions,
  backendSummary,
  initBackend,
  matmulPrecision,
  type PrecisionChoice,
  resolvePrecision,
  setMatmulPrecision,
  usePrecision,
} from "./lib/backend/mod.ts";

// Utilities: the seeded RNG that drives every random choice, atomic file writes.
export { makeRng, type Rng, writeFileAtomic } from "./lib/util/mod.ts";

// Config: the typed experiment tree, defaults -> YAML -> CLI, validation, the saved copy, task command lines.
export {
  type AmtConfig,
  type Config,
  ConfigError,
  type DataConfig,
  defaultConfig,
  type EvalConfig,
  EXPERIMENT_SECTIONS,
  formatHelp,
  loadSavedConfig,
  type MimConfig,
  type ModelConfig,
  parseTask,
  resolveConfig,
  type ResolvedConfig,
  type ResolveOptions,
  type RunConfig,
  runTask,
  saveConfig,
  switchOn,
  taskHelp,
  type TaskSpec,
  type TrainConfig,
  validateConfig,
} from "./lib/config/mod.ts";

// Data: datasets by name, RandomResizedCrop as a box (`applyCrop`), batches.
export {
  applyCrop,
  type Batch,
  type BatchOptions,
  type CropBox,
  DataError,
  type Dataset,
  DATASET_NAMES,
  denormalize,
  FULL_BOX,
  limitDataset,
  loadBatch,
  makeSynthetic,
  type Normalization,
  NORMALIZATIONS,
  normalizedDataset,
  openDataset,
  type OpenOptions,
  type Raster,
  SyntheticDataset,
} from "./lib/data/mod.ts";

// ViT: the encoder, its presets, patches, parameters, and the textbook-layer switch.
export {
  ParamStore,
  patchify,
  PRESET_NAMES,
  PRESETS,
  setTextbookLayers,
  unpatchify,
  VisionTransformer,
  type VitShape,
} from "./lib/vit/mod.ts";

// MIM: the mask plan (the one seam), the count rule, random masking, MAE, SimMIM, MaskFeat (HOG
// targets), the method registry.
export {
  type Counting,
  expandUnitPlan,
  HogTargets,
  type ImagePlan,
  MaskedAutoencoder,
  MaskFeat,
  type MaskPlan,
  type MaskPlanner,
  METHOD_NAMES,
  MIM_METHODS,
  type MimMethod,
  mimMethod,
  type MimMethodName,
  type MimModel,
  type PlanCounts,
  planCounts,
  planForImage,
  randomMaskPlan,
  reconstructImages,
  SimMim,
  unitRandomMaskPlan,
} from "./lib/mim/mod.ts";

// AMT: saliency (its sources), the planner, the Plackett-Luce sampler and its strategies.
export {
  AMT_STRATEGIES,
  AmtPlanner,
  type AmtPlannerOptions,
  batchPatchWeights,
  computeSaliency,
  SALIENCY_SOURCES,
  type SaliencySource,
  SaliencyStore,
  sampleMaskPlan,
  sampleMaskPlans,
  type SampleOptions,
  type Strategy,
} from "./lib/amt/mod.ts";

// Viz: PNG output, charts, image grids, overlays and plan pictures.
export {
  attentionOnObjectChart,
  barChart,
  epochSeries,
  heatmapGridSvg,
  imageGridPng,
  imageGridPngBytes,
  lossCurveChart,
  lrCurveChart,
  overlay,
  PLAN_LEGEND,
  planImage,
  planProbabilities,
  scatterChart,
  svgToPng,
  svgToPngBytes,
  writePng,
} from "./lib/viz/mod.ts";

// Optim: AdamW and the learning-rate schedule.
export { AdamW, type AdamWOptions, lrAt } from "./lib/optim/mod.ts";

// Run folder: paths, lock, metrics, `run.json` / `summary.json`, loading a run back.
export {
  defaultRunDir,
  type LoadedRun,
  loadRun,
  MetricsLog,
  pathExists,
  readMetrics,
  readRunSummary,
  type RunInfo,
  RunLock,
  RunLockedError,
  type RunPaths,
  runPaths,
  type RunSummary,
} from "./lib/run/mod.ts";

// Pre-training: `pretrain()`, one epoch, and a run folder's figures.
export {
  pretrain,
  type PretrainOptions,
  type PretrainResult,
  trainOneEpoch,
  writeAllRunFigures,
} from "./lib/pretrain/mod.ts";

// Eval: the linear-probe, kNN and fine-tune runners, attention on the object, the eval tasks.
export {
  type AttentionOnObject,
  attentionOnObject,
  evalBase,
  type FinetuneRun,
  type FinetuneSummary,
  finetuneTask,
  type KnnSummary,
  knnTask,
  type LinearProbeRun,
  type LinearProbeSummary,
  linearProbeTask,
  runFinetune,
  type RunFinetuneOptions,
  runKnn,
  type RunKnnOptions,
  runLinearProbe,
  type RunLinearProbeOptions,
} from "./lib/eval/mod.ts";

// Interop: weights in and out in timm / Hugging Face names (safetensors), features as `.npy`.
export {
  decodeNpy,
  decodeSafetensors,
  encodeNpy,
  encodeSafetensors,
  type RunNormalization,
  runNormalization,
  SafetensorsError,
  tensorFloat32,
} from "./lib/run/mod.ts";
export {
  exportRun,
  exportTask,
  featuresTask,
  importSource,
  importTask,
  importWeights,
  readWeightsConfig,
  takeConfigFlag,
  type WeightsConfig,
  writeFeatures,
} from "./lib/interop/mod.ts";

// Detect: the Table 3 experiment and COCO evaluation.
export {
  type DetectExperimentOptions,
  type DetectExperimentResult,
  evaluateCoco,
  runDetectExperiment,
} from "./lib/detect/mod.ts";

// Repro: the paper's tables at a budget.
export {
  budgetOf,
  BUDGETS,
  parseSeeds,
  planTodo,
  rebuildTables,
  type ReproBudget,
  type ReproOptions,
  type ReproResults,
  reproRuns,
  runRepro,
} from "./lib/repro/mod.ts";
