/**
 * The AMT mask planner: plugs attention-driven masking and throwing into any
 * MIM method through the mask-plan seam.
 *
 * Per batch: each image's stored map is upsampled, cropped and flipped with
 * the image's own crop box (`applyCrop`), summed per patch (or per mask unit)
 * into weights, and handed to the Plackett-Luce sampler.
 *
 * The maps come from the source `amt.saliency` names (`saliency.ts`): the
 * encoder's attention (`cls-last`, `rollout`, `registers`), an EMA teacher the
 * planner keeps and updates after every step (`ema-teacher`, `teacher.ts`), or
 * the model's reconstruction error (`loss`, `loss_map.ts`); `amt.invert`
 * stores `1 - map`.
 *
 * The planner draws nothing: after a saliency pass it returns the pass's
 * statistics and keeps the maps ({@linkcode AmtPlanner.imageMaps}); the
 * trainer's figures (`lib/pretrain/run_plots.ts`) draw them.
 *
 * @module
 */
import { applyCrop } from "../data/augment.ts";
import type { Dataset, Raster } from "../data/types.ts";
import type { MaskPlan, MaskPlanner, PlanContext } from "../mim/plan.ts";
import type { MimModel } from "../mim/types.ts";
import { planCounts } from "../mim/counts.ts";
import { makeRng } from "../util/rng.ts";
import { computeLossSaliency, coveringPatchPlans } from "./loss_map.ts";
import { type Counting, sampleMaskPlans, type Strategy } from "./sampler.ts";
import {
  computeSaliency,
  type SaliencyPass,
  type SaliencyPassOptions,
  type SaliencySource,
  SaliencyStore,
} from "./saliency.ts";
import { amtPhase, isSaliencyUpdate } from "./schedule.ts";
import { EmaTeacher } from "./teacher.ts";
import { batchPatchWeights } from "./weights.ts";
import { expandUnitPlan } from "../mim/plan.ts";

/** AMT planner settings. */
export interface AmtPlannerOptions {
  strategy: Strategy;
  maskRatio: number;
  throwRatio: number;
  counting: Counting;
  warmup: number;
  interval: number;
  epochs: number;
  /** Mask unit in pixels (patch size for MAE; SimMIM's larger unit). */
  maskUnit: number;
  /** Saliency pass batch size. */
  batchSize: number;
  seed: number;
  /** `amt.saliency`: where the maps come from (default `cls-last`, the paper's). */
  saliency?: SaliencySource;
  /** `amt.invert`: store `1 - map` (default false). */
  invert?: boolean;
  /** `amt.emaMomentum`, the `ema-teacher` source's momentum (default 0.996). */
  emaMomentum?: number;
  /**
   * The `loss` source's masking ratio per covering round (`mim.maskRatio`, the method's random
   * masking; default 0.75), counted with `counting` over mask units.
   */
  lossMaskRatio?: number;
}

/** Attention-driven masking and throwing. */
export class AmtPlanner implements MaskPlanner {
  readonly name: string;
  readonly store: SaliencyStore;
  /** Total seconds spent in saliency passes (this process). */
  saliencySeconds = 0;
  /** `amt.saliency`. */
  readonly source: SaliencySource;
  /** The EMA copy of the encoder (`ema-teacher` only; this planner owns it). */
  readonly teacher: EmaTeacher | null;

  constructor(
    readonly options: AmtPlannerOptions,
    readonly model: MimModel,
    readonly dataset: Dataset,
    readonly imageSize: number,
    /** The method's own random masking, used in the warm-up epochs. */
    readonly warmupPlanner: MaskPlanner,
    readonly log: (s: string) => void = console.log,
  ) {
    this.name = `amt:${options.strategy}`;
    this.store = new SaliencyStore(dataset.length, model.encoder.gridSize);
    this.source = options.saliency ?? "cls-last";
    if (this.source === "registers" && model.encoder.numRegisters === 0) {
      throw new RangeError(
        "amt.saliency = registers reads the CLS map of an encoder with register tokens; " +
          "set model.registers > 0 (or pick another amt.saliency)",
      );
    }
    this.teacher = this.source === "ema-teacher"
      ? new EmaTeacher(model.encoder, options.emaMomentum ?? 0.996)
      : null;
  }

  phase(epoch: number): string {
    return amtPhase(epoch, this.options);
  }

  /** Per-patch (per-unit) weights of a batch from the stored maps and crop boxes. */
  weights(indices: Int32Array, boxes: PlanContext["boxes"]): Float32Array {
    const S = this.imageSize;
    const maps = Array.from(
      indices,
      (index, b) => applyCrop(this.store.imageMap(index, S), boxes[b], S, S),
    );
    return batchPatchWeights(maps, this.options.maskUnit);
  }

  /**
   * The stored maps of dataset images 0..count-1, upsampled to `size` x `size`
   * (what the plans are drawn from; uniform before the first saliency pass,
   * see `store.updatedAfterEpoch`).
   *
   * @returns one [size, size, 1] raster per image
   */
  imageMaps(count: number, size: number = this.imageSize): Raster[] {
    return Array.from({ length: count }, (_, i) => this.store.imageMap(i, size));
  }

  plan(batch: number, numPatches: number, ctx: PlanContext): MaskPlan {
    const o = this.options;
    if (this.phase(ctx.epoch) === "warmup") {
      return this.warmupPlanner.plan(batch, numPatches, ctx);
    }
    const w = this.weights(ctx.indices, ctx.boxes);
    const plan = sampleMaskPlans(w, batch, {
      maskRatio: o.maskRatio,
      throwRatio: o.throwRatio,
      strategy: o.strategy,
      counting: o.counting,
      rng: ctx.rng,
    });
    const k = o.maskUnit / ctx.patchSize;
    return k > 1 ? expandUnitPlan(plan, k) : plan;
  }

  /**
   * After 0-based `epoch`: when the schedule says so, a saliency pass over the
   * dataset replaces the stored maps. Returns the pass's statistics for the
   * epoch record, `{saliencySeconds, saliencyUpdatedAfter}` (nothing when no
   * pass was due); the new maps are {@linkcode AmtPlanner.imageMaps}.
   */
  async afterEpoch(epoch: number): Promise<Record<string, number | string> | void> {
    const done = epoch + 1;
    if (!isSaliencyUpdate(done, this.options)) return;
    const pass = await this.saliencyPass(done);
    this.store.update(pass.maps, done);
    this.saliencySeconds += pass.seconds;
    const what = `${this.options.invert ? "1 - " : ""}${this.source}`;
    this.log(`saliency maps (${what}) updated after epoch ${done} (${pass.seconds.toFixed(1)} s)`);
    return {
      saliencySeconds: pass.seconds,
      saliencyUpdatedAfter: done,
      saliencySource: this.source,
      saliencyInverted: this.options.invert ? 1 : 0,
    };
  }

  /** After every optimiser step: the EMA teacher follows the encoder (`ema-teacher`). */
  afterStep(): void {
    this.teacher?.update();
  }

  /** The saliency pass of `amt.saliency` after `done` finished epochs: one map per image. */
  saliencyPass(done: number): Promise<SaliencyPass> {
    const o = this.options;
    const common: SaliencyPassOptions = {
      imageSize: this.imageSize,
      batchSize: o.batchSize,
      invert: o.invert ?? false,
      onProgress: (d, n) => {
        if (d === n || d % (o.batchSize * 20) === 0) this.log(`  saliency ${d}/${n}`);
      },
    };
    const encoder = this.model.encoder;
    switch (this.source) {
      case "cls-last":
      case "rollout":
      case "registers":
        return computeSaliency(encoder, this.dataset, { ...common, source: this.source });
      case "ema-teacher":
        return computeSaliency(this.teacher!.encoder, this.dataset, common);
      case "loss": {
        const L = encoder.numPatches;
        const k = o.maskUnit / encoder.shape.patchSize; // patches per mask-unit side
        const units = L / (k * k);
        const K = planCounts(units, o.lossMaskRatio ?? 0.75, 0, o.counting).numMasked;
        return computeLossSaliency(this.model, this.dataset, {
          ...common,
          // seeded by (run seed, pass, batch): a resumed run redraws the same masks
          plans: (n, start) =>
            coveringPatchPlans(n, L, k, K, makeRng(o.seed, "saliency-loss", done, start)),
        });
      }
    }
  }

  /** The maps, their epoch, and the EMA teacher's weights (`ema/<name>`) when there is one. */
  saveState(): Map<string, { shape: number[]; data: Float32Array | Int32Array }> {
    return new Map<string, { shape: number[]; data: Float32Array | Int32Array }>([
      ["saliency", {
        shape: [this.store.size, this.store.grid * this.store.grid],
        data: this.store.maps.slice(),
      }],
      ["saliency_updated", { shape: [1], data: Int32Array.of(this.store.updatedAfterEpoch) }],
      ...(this.teacher?.saveState() ?? []),
    ]);
  }

  loadState(
    arrays: Map<string, { shape: number[]; data: Float32Array | Int32Array | Uint8Array }>,
  ): void {
    // a checkpoint without a teacher (written before ema-teacher was chosen): restart the
    // average from the restored encoder
    if (this.teacher && !this.teacher.loadState(arrays)) this.teacher.copyStudent();
    const maps = arrays.get("saliency");
    const updated = arrays.get("saliency_updated");
    if (!maps || !updated) return; // checkpoint from a run without AMT state: keep uniform maps
    this.store.update(maps.data as Float32Array, (updated.data as Int32Array)[0]);
  }

  /** Frees the EMA teacher (the model and dataset are not the planner's). */
  dispose(): void {
    this.teacher?.dispose();
  }
}
