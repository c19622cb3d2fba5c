/**
 * The MIM methods, one registry entry each: how to build the model, the
 * method's own random masking (MAE per patch, SimMIM and MaskFeat per mask unit), its
 * mask unit, its counting rule, and the config values that are its
 * conventions. Everything that builds or masks for `mim.method` reads this
 * table (`buildModel` in `lib/run/model.ts`, the planner factory in
 * `lib/pretrain/factory.ts`, {@linkcode methodCounting} and
 * {@linkcode methodMaskUnit} in `counts.ts`), so a new method is one entry.
 *
 * @example
 * ```ts
 * import { METHOD_NAMES, mimMethod } from "./methods.ts";
 * import { makeRng } from "../util/rng.ts";
 * import { FULL_BOX } from "../data/types.ts";
 * if (METHOD_NAMES.join() !== "mae,simmim,maskfeat") throw new Error();
 * // SimMIM's random masking of a 7 x 7 grid at its 0.6: ceil(49 * 0.6) = 30 masked
 * const simmim = mimMethod("simmim");
 * const planner = simmim.randomPlanner({
 *   maskRatio: simmim.conventions.maskRatio,
 *   counting: simmim.counting,
 *   maskUnit: 4,
 *   patchSize: 4,
 * });
 * const ctx = {
 *   epoch: 0, step: 0, rng: makeRng(0), indices: Int32Array.of(0), boxes: [FULL_BOX],
 *   imageSize: 28, patchSize: 4,
 * };
 * if (planner.plan(1, 49, ctx).numMasked !== 30) throw new Error();
 * ```
 *
 * @module
 */
import type { VitShape } from "../vit/presets.ts";
import {
  blockFlops,
  embedFlops,
  hogFlops,
  type HogFlopsOptions,
  type PlanSizes,
  type StepFlops,
} from "./flops.ts";
import type { Counting } from "./_count_rule.ts";
import type { HogOptions } from "./hog.ts";
import { MaskedAutoencoder } from "./mae.ts";
import { MaskFeat } from "./maskfeat.ts";
import type { MaskPlanner } from "./plan.ts";
import { RandomMaskPlanner, UnitRandomMaskPlanner } from "./random.ts";
import { SimMim } from "./simmim.ts";
import type { MimModel } from "./types.ts";

/** What {@linkcode MimMethod.build} takes besides the shape. */
export interface MethodBuildOptions {
  /** Seed of the parameter initialisers. */
  seed: number;
  /**
   * Per-patch normalised pixel targets (`mim.normPixLoss`); default the
   * method's convention. A method whose loss has no such option ignores it
   * (SimMIM regresses raw pixels).
   */
  normPixLoss?: boolean;
  /**
   * HOG target settings (`mim.hogCell`, `mim.hogBins`, `mim.hogWindow`,
   * `mim.hogNorm`); only MaskFeat reads them.
   */
  hog?: Partial<HogOptions>;
}

/** What {@linkcode MimMethod.randomPlanner} takes. */
export interface RandomPlannerOptions {
  /** Fraction masked (`mim.maskRatio`). */
  maskRatio: number;
  /** The run's counting rule (`amt.counting`, resolved; the method's for `auto`). */
  counting: Counting;
  /** Mask unit side in pixels ({@linkcode methodMaskUnit}), a multiple of `patchSize`. */
  maskUnit: number;
  /** Model patch side in pixels. */
  patchSize: number;
}

/** The config values a method's paper and release fix; its YAML in `configs/` sets them. */
export interface MethodConventions {
  /** `mim.maskRatio` of its random masking (MAE 0.75, SimMIM 0.6, MaskFeat 0.4). */
  maskRatio: number;
  /**
   * `mim.normPixLoss`: per-patch normalised targets (MAE's best setting; SimMIM has none, nor
   * MaskFeat, whose HOG targets are L2-normalised by construction).
   */
  normPixLoss: boolean;
}

/** One MIM method: everything that differs between methods outside the model's own file. */
export interface MimMethod {
  /** The `mim.method` value. */
  readonly name: string;
  /** How its authors turn ratios into counts (`amt.counting: auto`; see `counts.ts`). */
  readonly counting: Counting;
  /** Config values that are the method's conventions. */
  readonly conventions: Readonly<MethodConventions>;
  /**
   * Its mask unit side in pixels when `mim.maskUnit` is 0, before
   * {@linkcode methodMaskUnit} asserts it against patch and image.
   */
  defaultMaskUnit(patchSize: number, imageSize: number): number;
  /** The model, owning its parameters (caller disposes). */
  build(shape: VitShape, options: MethodBuildOptions): MimModel;
  /** Its own random masking: the plan of `amt.strategy: none` and of AMT's warm-up. */
  randomPlanner(options: RandomPlannerOptions): MaskPlanner;
  /** Counted forward FLOPs per image of one step with `plan`'s group sizes (`flops.ts`). */
  stepFlops(s: VitShape, plan: PlanSizes, hog: HogFlopsOptions): StepFlops;
}

/** The mask-token methods' step: encoder on CLS + visible + masked, a head of `out` per masked. */
function maskTokenStep(s: VitShape, plan: PlanSizes, out: number): number {
  const T = 1 + plan.visible + plan.masked;
  return embedFlops(s, plan.visible) + s.depth * blockFlops(T, s.dim, s.mlpRatio) +
    2 * plan.masked * s.dim * out;
}

const pixelsPerPatch = (s: VitShape) => s.patchSize * s.patchSize * s.channels;

const MAE_CONVENTIONS: Readonly<MethodConventions> = Object.freeze({
  maskRatio: 0.75,
  normPixLoss: true,
});

// SimMIM's 32 px unit over 16 px patches: 2 x 2 patches where they tile the image
const twoByTwoUnit = (patchSize: number, imageSize: number): number =>
  imageSize % (2 * patchSize) === 0 ? 2 * patchSize : patchSize;

const ENTRIES = {
  mae: {
    name: "mae",
    counting: "floor",
    conventions: MAE_CONVENTIONS,
    // MAE masks patches
    defaultMaskUnit: (patchSize) => patchSize,
    build: (shape, o) =>
      new MaskedAutoencoder({
        shape,
        normPixLoss: o.normPixLoss ?? MAE_CONVENTIONS.normPixLoss,
        seed: o.seed,
      }),
    // per patch: a `mim.maskUnit` above the patch is AMT's weighting unit only
    randomPlanner: (o) => new RandomMaskPlanner(o.maskRatio, o.counting),
    // encoder on CLS + visible; decoder on CLS + visible + masked; pixels of the masked
    stepFlops: (s, plan) => ({
      network: embedFlops(s, plan.visible) +
        s.depth * blockFlops(1 + plan.visible, s.dim, s.mlpRatio) +
        2 * (1 + plan.visible) * s.dim * s.decoderDim +
        s.decoderDepth * blockFlops(1 + plan.visible + plan.masked, s.decoderDim, s.mlpRatio) +
        2 * plan.masked * s.decoderDim * pixelsPerPatch(s),
      targets: 0,
    }),
  },
  simmim: {
    name: "simmim",
    counting: "ceil",
    conventions: Object.freeze({ maskRatio: 0.6, normPixLoss: false }),
    defaultMaskUnit: twoByTwoUnit,
    build: (shape, o) => new SimMim({ shape, seed: o.seed }),
    randomPlanner: (o) =>
      new UnitRandomMaskPlanner(o.maskRatio, o.maskUnit / o.patchSize, o.counting),
    // a linear head predicting each masked patch's pixels
    stepFlops: (s, plan) => ({ network: maskTokenStep(s, plan, pixelsPerPatch(s)), targets: 0 }),
  },
  maskfeat: {
    name: "maskfeat",
    // a mask-token method in SimMIM's line: SimMIM's ceil count of mask units, so its random and
    // AMT plans have the counts of SimMIM's at the same ratios
    counting: "ceil",
    // MaskFeat's default ratio, 0.4; its targets are L2-normalised HOG, no pixel normalisation
    conventions: Object.freeze({ maskRatio: 0.4, normPixLoss: false }),
    // MaskFeat masks BEiT-style blocks; here SimMIM's random 2 x 2-patch units stand in for them
    // (single patches where those do not tile the image)
    defaultMaskUnit: twoByTwoUnit,
    build: (shape, o) => new MaskFeat({ shape, seed: o.seed, hog: o.hog }),
    randomPlanner: (o) =>
      new UnitRandomMaskPlanner(o.maskRatio, o.maskUnit / o.patchSize, o.counting),
    // a linear head predicting F = (p / cell)^2 * C * bins HOG values per masked patch, and the
    // HOG targets (no backward)
    stepFlops: (s, plan, hog) => {
      const cells = s.patchSize / (hog.cellSize ?? 2);
      const F = cells * cells * s.channels * (hog.bins ?? 9);
      return { network: maskTokenStep(s, plan, F), targets: hogFlops(s) };
    },
  },
} satisfies Record<string, MimMethod>;

/** A registered `mim.method`. */
export type MimMethodName = keyof typeof ENTRIES;

/** The registry: one {@linkcode MimMethod} per `mim.method`. */
export const MIM_METHODS: Readonly<Record<MimMethodName, MimMethod>> = Object.freeze(ENTRIES);

/** Every valid `mim.method`, in registry order (the config check takes this list). */
export const METHOD_NAMES: readonly MimMethodName[] = Object.freeze(
  Object.keys(ENTRIES) as MimMethodName[],
);

/** The entry of `name`, or undefined when it is not a registered method. */
export function findMethod(name: string): MimMethod | undefined {
  return Object.hasOwn(MIM_METHODS, name) ? MIM_METHODS[name as MimMethodName] : undefined;
}

/** `"mae", "simmim" or "maskfeat"`: the registered names for messages. */
export function methodList(): string {
  const quoted = METHOD_NAMES.map((n) => JSON.stringify(n));
  return quoted.length < 2
    ? quoted.join("")
    : `${quoted.slice(0, -1).join(", ")} or ${quoted[quoted.length - 1]}`;
}

/**
 * The entry of `mim.method` `name`.
 *
 * @throws {RangeError} naming the registered methods when `name` is not one.
 */
export function mimMethod(name: string): MimMethod {
  const m = findMethod(name);
  if (!m) throw new RangeError(`mim.method "${name}" is not available; use ${methodList()}`);
  return m;
}

/**
 * Forward FLOPs per image of one MIM step: the method's {@linkcode MimMethod.stepFlops}.
 *
 * @throws {RangeError} for an unregistered method.
 */
export function mimForwardFlops(
  method: string,
  s: VitShape,
  plan: PlanSizes,
  hog: HogFlopsOptions = {},
): number {
  const f = stepFlopsOf(method, s, plan, hog);
  return f.network + f.targets;
}

/**
 * Training FLOPs per image: forward + backward ~ 3x the network's forward; targets computed
 * without gradients (MaskFeat's HOG) once.
 */
export function mimTrainFlops(
  method: string,
  s: VitShape,
  plan: PlanSizes,
  hog: HogFlopsOptions = {},
): number {
  const f = stepFlopsOf(method, s, plan, hog);
  return 3 * f.network + f.targets;
}

function stepFlopsOf(method: string, s: VitShape, plan: PlanSizes, hog: HogFlopsOptions) {
  const m = findMethod(method);
  if (!m) throw new RangeError(`mimForwardFlops: unknown method "${method}"`);
  return m.stepFlops(s, plan, hog);
}
