/**
 * What a training checkpoint holds, by name: `param/<name>`, `adam_m/<name>`,
 * `adam_v/<name>` for every model parameter, and `planner/<key>` for the mask
 * planner's state (AMT's saliency store).
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import type { MaskPlanner } from "../mim/plan.ts";
import type { MimModel } from "../mim/types.ts";
import type { AdamW } from "../optim/adamw.ts";
import type { CheckpointData } from "./checkpoint.ts";

/** Model, optimiser and planner state as checkpoint arrays, with `meta`. Reads the host copies. */
export function gatherState(
  model: MimModel,
  opt: AdamW,
  planner: MaskPlanner,
  meta: Record<string, unknown>,
): CheckpointData {
  const arrays = new Map<string, { shape: number[]; data: Float32Array }>();
  const params = [...model.store.params.values()];
  params.forEach((p, i) => {
    arrays.set(`param/${p.name}`, {
      shape: p.variable.shape,
      data: p.variable.dataSync() as Float32Array,
    });
    arrays.set(`adam_m/${p.name}`, {
      shape: p.variable.shape,
      data: opt.m[i].dataSync() as Float32Array,
    });
    arrays.set(`adam_v/${p.name}`, {
      shape: p.variable.shape,
      data: opt.v[i].dataSync() as Float32Array,
    });
  });
  const all: CheckpointData["arrays"] = new Map(arrays);
  for (const [k, v] of planner.saveState?.() ?? []) all.set(`planner/${k}`, v);
  return { meta, arrays: all };
}

/**
 * Restore model, optimiser and planner state; a shape mismatch names the parameter. A
 * checkpoint at optimiser step 0 (`meta.optimizerStep`, e.g. imported weights) may leave the
 * AdamW moments out: they are zero then, as a new optimiser's are.
 */
export function restoreState(
  ckpt: CheckpointData,
  model: MimModel,
  opt: AdamW | null,
  planner: MaskPlanner | null,
  file: string,
): void {
  const params = [...model.store.params.values()];
  for (const [i, p] of params.entries()) {
    const kinds: [string, tf.Variable | undefined][] = [["param", p.variable]];
    if (opt) kinds.push(["adam_m", opt.m[i]], ["adam_v", opt.v[i]]);
    for (const [kind, v] of kinds) {
      const a = ckpt.arrays.get(`${kind}/${p.name}`);
      if (!a && kind !== "param" && ckpt.meta.optimizerStep === 0) continue; // zero moments
      if (!a) {
        throw new Error(
          `${file}: parameter "${p.name}" is missing (${kind}); this checkpoint is from another model. Use another run.dir.`,
        );
      }
      if (a.shape.join(",") !== p.variable.shape.join(",")) {
        throw new Error(
          `${file}: parameter "${p.name}" has shape [${a.shape}] in the checkpoint but [${p.variable.shape}] in the model; ` +
            `the checkpoint comes from another model/config. Use the same model.* keys or another run.dir.`,
        );
      }
      tf.tidy(() => v!.assign(tf.tensor(a.data as Float32Array, a.shape)));
    }
  }
  if (planner?.loadState) planner.loadState(plannerState(ckpt));
}

/** The planner's arrays of a checkpoint (`planner/<key>`), keyed without the prefix. */
export function plannerState(
  ckpt: CheckpointData,
): Map<string, { shape: number[]; data: Float32Array | Int32Array | Uint8Array }> {
  const sub = new Map<string, { shape: number[]; data: Float32Array | Int32Array | Uint8Array }>();
  for (const [k, v] of ckpt.arrays) if (k.startsWith("planner/")) sub.set(k.slice(8), v);
  return sub;
}
