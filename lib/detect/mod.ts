/**
 * Object detection and instance segmentation on top of the ViT encoders:
 * COCO-format data and evaluation, an embedded scene generator, a
 * ViTDet-style detector, and the Table 3 experiment (`runDetectExperiment`).
 *
 * @module
 */

// COCO types.
export {
  type CocoAnnotation,
  type CocoCategory,
  type CocoDataset,
  type CocoDetection,
  type CocoImage,
} from "./types.ts";

// Run-length masks, polygons and IoU, as in pycocotools.
export {
  boxIou,
  type CompressedRle,
  compressRle,
  countsFromString,
  countsToString,
  decodeMask,
  encodeMask,
  mergeRles,
  type Polygons,
  polygonsToMask,
  type Rle,
  rleArea,
  rleIou,
  rleToBbox,
  type Segmentation,
  segmentationToRle,
  toUncompressed,
} from "./rle.ts";

// COCO evaluation (box and mask AP).
export {
  type CocoEvalOptions,
  type CocoMetrics,
  evaluateCoco,
  IOU_THRESHOLDS,
  RECALL_THRESHOLDS,
} from "./coco_eval.ts";

// Reading a COCO dataset and fitting it to the model input.
export {
  boxToInput,
  boxToOriginal,
  CocoDetectionDataset,
  type CocoSample,
  type FitTransform,
  fitTransform,
  maskToInput,
  maskToOriginal,
  openCocoDataset,
  readCocoJson,
} from "./coco.ts";

// The embedded scene generator (Fashion-MNIST items on a canvas).
export {
  type ItemSource,
  makeScene,
  maskToSegmentation,
  type Scene,
  type SceneOptions,
  sceneSource,
  writeCocoScenes,
  type WriteScenesOptions,
} from "./scenes.ts";

// Training targets.
export { assignLevel, buildTargets, type DetTargets } from "./targets.ts";

// The ViTDet backbone, head and decoding.
export { VitBackbone, type WindowOptions, windowOrder } from "./backbone.ts";
export {
  Detector,
  DETECTOR_DEFAULTS,
  type DetectorConfig,
  type DetectorOutput,
  disposeOutput,
} from "./model.ts";
export { decodeDetections, type DecodeOptions, type Detection, nms } from "./decode.ts";
export { drawDetections, type DrawOptions } from "./draw.ts";

// Fine-tuning a detector from a pre-trained encoder, and scoring it.
export {
  buildDetector,
  type DetectRunResult,
  type DetectTrainConfig,
  evaluateDetector,
  fineTuneDetector,
  type FineTuneDetectorOptions,
  vitDetLrScales,
} from "./train.ts";

// The Table 3 experiment: budgets, tables, the whole run.
export {
  DETECT_BUDGETS,
  type DetectBudget,
  parseBackbones,
  TABLE3_BACKBONES,
  type Table3Backbone,
} from "./budgets.ts";
export { renderTable3Csv, renderTable3Markdown, type Table3Row } from "./table3.ts";
export {
  type DetectExperimentOptions,
  type DetectExperimentResult,
  effectiveBudget,
  resolveDetectConfig,
  runDetectExperiment,
} from "./experiment.ts";
