/**
 * Masked image modeling: the mask-plan seam, the count rule, random masking,
 * MAE, SimMIM, MaskFeat (HOG targets, `hog.ts`), and the method registry
 * (`methods.ts`).
 *
 * @module
 */

// The mask plan: the one seam between strategies and methods.
export {
  expandUnitPlan,
  type ImagePlan,
  type MaskPlan,
  type MaskPlanner,
  type PlanContext,
  planForImage,
} from "./plan.ts";

// The one count rule, and each method's rule and mask unit.
export {
  type Counting,
  COUNTINGS,
  methodCounting,
  methodMaskUnit,
  type PlanCounts,
  planCounts,
  resolveCounting,
} from "./counts.ts";

// Random masking (per patch, per mask unit).
export {
  randomMaskCounts,
  randomMaskPlan,
  RandomMaskPlanner,
  unitRandomMaskPlan,
  UnitRandomMaskPlanner,
} from "./random.ts";

// The methods: the model interface, MAE, SimMIM, MaskFeat and its HOG targets, and the registry.
export { type FeatureLayout, type FeatureTargets, type MimModel, type TrainCall } from "./types.ts";
export { type MaeOptions, MaskedAutoencoder } from "./mae.ts";
export { SimMim, type SimMimOptions } from "./simmim.ts";
export { MaskFeat, type MaskFeatOptions } from "./maskfeat.ts";
export {
  gaussianWindow,
  HOG_DEFAULTS,
  HOG_EPS,
  HOG_NORMS,
  hogCellHistograms,
  type HogGeometry,
  type HogNorm,
  type HogOptions,
  HogTargets,
} from "./hog.ts";
export {
  METHOD_NAMES,
  type MethodBuildOptions,
  type MethodConventions,
  MIM_METHODS,
  mimForwardFlops,
  type MimMethod,
  mimMethod,
  type MimMethodName,
  mimTrainFlops,
  type RandomPlannerOptions,
} from "./methods.ts";

// Counted FLOPs and reconstructions.
export {
  embedFlops,
  hogFlops,
  type HogFlopsOptions,
  type PlanSizes,
  saliencyFlops,
  type StepFlops,
} from "./flops.ts";
export { reconstructImages, type Reconstruction, type Reconstructions } from "./reconstruct.ts";
