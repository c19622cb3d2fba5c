/**
 * AMT: attention-driven masking and throwing (saliency, sampling, schedule,
 * and the planner that plugs into any MIM method).
 *
 * @module
 */

// The strategies and the Plackett-Luce sampler that cuts an order into masked / thrown / visible.
export {
  AMT_STRATEGIES,
  type AmtStrategy,
  sampleMaskPlan,
  sampleMaskPlans,
  type SampleOptions,
  type SinglePlan,
  STRATEGIES,
  type Strategy,
} from "./sampler.ts";

// Saliency maps aligned with the crop and summed per patch (or mask unit).
export { batchPatchWeights, patchWeights } from "./weights.ts";

// The saliency pass (CLS attention of the last block, or another `amt.saliency` source) and
// the maps kept per image.
export {
  type AttentionSource,
  computeSaliency,
  ENCODER_MAP_SOURCES,
  type EncoderMapSource,
  encoderSaliency,
  minMaxRows,
  SALIENCY_SOURCES,
  saliencyFromAttention,
  saliencyOverDataset,
  type SaliencyPass,
  type SaliencyPassOptions,
  type SaliencySource,
  SaliencyStore,
} from "./saliency.ts";

// The other sources: attention rollout, the EMA teacher, the reconstruction-error map.
export { attentionRollout, rolloutSaliency, rolloutStep } from "./rollout.ts";
export { EmaTeacher } from "./teacher.ts";
export {
  computeLossSaliency,
  coveringPatchPlans,
  coveringPlans,
  lossErrorMap,
  type LossSaliencyOptions,
  minMaxHost,
  patchErrors,
} from "./loss_map.ts";

// When saliency is recomputed: warm-up, then every `interval` epochs.
export { amtPhase, type AmtSchedule, isSaliencyUpdate, saliencyUpdates } from "./schedule.ts";

// The AMT mask planner (a `MaskPlanner` for any MIM method).
export { AmtPlanner, type AmtPlannerOptions } from "./planner.ts";
