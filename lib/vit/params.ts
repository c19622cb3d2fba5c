/**
 * Parameter ownership: every trainable weight is a named `tf.Variable` in a
 * `ParamStore`, created from a seeded host-side initialiser so that the same
 * seed gives the same weights on every backend.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { makeRng, normalFrom } from "../util/rng.ts";

/** How a weight is initialised. */
export type Init =
  | { kind: "zeros" }
  | { kind: "ones" }
  | { kind: "normal"; std: number }
  | { kind: "xavier"; fanIn: number; fanOut: number };

/**
 * What a parameter is, for weight-decay groups: a `weight` matrix (decayed), a `bias`
 * of a linear layer, a LayerNorm's `norm` scale or shift, or a learned `tokens` table (CLS,
 * mask token, registers, a learned position table).
 */
export type ParamGroup = "weight" | "bias" | "norm" | "tokens";

/** The groups `train.noDecay` may exclude from weight decay (matrices always decay). */
export const NO_DECAY_GROUPS: readonly Exclude<ParamGroup, "weight">[] = Object.freeze([
  "bias" as const,
  "norm" as const,
  "tokens" as const,
]);

/** One parameter, its group and whether weight decay applies to it. */
export interface Param {
  name: string;
  variable: tf.Variable;
  decay: boolean;
  group: ParamGroup;
}

/**
 * The group of a parameter created without one: a name ending in `token`, `registers` or
 * `pos_embed` (a learned position table) is `tokens`; other 1-D parameters are `norm` under a
 * `norm*` module and `bias` otherwise; the rest are `weight`.
 */
export function inferGroup(name: string, shape: readonly number[]): ParamGroup {
  const parts = name.split(".");
  const leaf = parts[parts.length - 1];
  if (/token$|registers$|pos_embed$/.test(leaf)) return "tokens";
  if (shape.length === 1) {
    return parts.length > 1 && /^norm/.test(parts[parts.length - 2]) ? "norm" : "bias";
  }
  return "weight";
}

/**
 * Parses `train.noDecay`: `"auto"` (null: keep the method's own choice), `"none"` (an empty
 * set: decay every parameter) or a comma-separated subset of {@linkcode NO_DECAY_GROUPS}.
 *
 * @throws {RangeError} naming the bad entry and the valid ones.
 * @example
 * ```ts
 * import { parseNoDecay } from "./params.ts";
 * if (parseNoDecay("auto") !== null) throw new Error();
 * if ([...parseNoDecay("bias, norm")!].join() !== "bias,norm") throw new Error();
 * if (parseNoDecay("none")!.size !== 0) throw new Error();
 * ```
 */
export function parseNoDecay(spec: string): ReadonlySet<ParamGroup> | null {
  const text = spec.trim();
  if (text === "auto") return null;
  if (text === "none") return new Set();
  const out = new Set<ParamGroup>();
  for (const raw of text.split(",")) {
    const g = raw.trim();
    if (!(NO_DECAY_GROUPS as readonly string[]).includes(g)) {
      const valid = NO_DECAY_GROUPS.join(", ");
      throw new RangeError(
        `train.noDecay: ${JSON.stringify(g)} is not a parameter group; use "auto" (the ` +
          `method's), "none" (decay everything) or a comma-separated list of ${valid}`,
      );
    }
    out.add(g as ParamGroup);
  }
  return out;
}

/** A named collection of variables owned by one model. */
export class ParamStore {
  readonly params = new Map<string, Param>();
  constructor(readonly seed: number) {}

  /**
   * Create a variable. `decay: false` for norms and biases (every 1-D parameter, as MAE's
   * `add_weight_decay`); whether learned tokens decay is the method's choice (MAE decays its
   * CLS and mask tokens, SimMIM's `no_weight_decay` skips them): see {@linkcode setDecay}.
   * `group` defaults to {@linkcode inferGroup}'s reading of the name and shape.
   */
  create(
    name: string,
    shape: number[],
    init: Init,
    decay: boolean,
    group: ParamGroup = inferGroup(name, shape),
  ): tf.Variable {
    if (this.params.has(name)) throw new Error(`parameter "${name}" defined twice`);
    const size = shape.reduce((a, b) => a * b, 1);
    const values = new Float32Array(size);
    const rng = makeRng(this.seed, "init", name);
    switch (init.kind) {
      case "zeros":
        break;
      case "ones":
        values.fill(1);
        break;
      case "normal": {
        // MAE's normal_(std): untruncated (timm's trunc_normal_(std=.02) cuts at +-2 absolute,
        // i.e. at 100 std, which is the same distribution)
        const normal = normalFrom(rng);
        for (let i = 0; i < size; i++) values[i] = normal() * init.std;
        break;
      }
      case "xavier": {
        const a = Math.sqrt(6 / (init.fanIn + init.fanOut));
        for (let i = 0; i < size; i++) values[i] = (2 * rng() - 1) * a;
        break;
      }
    }
    const initial = tf.tensor(values, shape, "float32");
    const variable = tf.variable(initial, true);
    initial.dispose(); // the variable keeps its own reference to the data
    this.params.set(name, { name, variable, decay, group });
    return variable;
  }

  /** Sets whether AdamW's weight decay applies to parameter `name`. */
  setDecay(name: string, decay: boolean): void {
    const p = this.params.get(name);
    if (!p) throw new Error(`no parameter "${name}" (have ${[...this.params.keys()].join(", ")})`);
    p.decay = decay;
  }

  /**
   * Weight decay by group (`train.noDecay`): biases, norms and tokens decay unless their group
   * is in `noDecay`; `weight` matrices keep the decay they were created with (all of them
   * decay). Returns the names left undecayed.
   */
  setNoDecay(noDecay: ReadonlySet<ParamGroup>): string[] {
    const off: string[] = [];
    for (const p of this.params.values()) {
      if (p.group !== "weight") p.decay = !noDecay.has(p.group);
      if (!p.decay) off.push(p.name);
    }
    return off;
  }

  /** Trainable variables in creation order. */
  variables(): tf.Variable[] {
    return [...this.params.values()].map((p) => p.variable);
  }

  /** Number of scalar parameters. */
  count(): number {
    let n = 0;
    for (const p of this.params.values()) n += p.variable.size;
    return n;
  }

  dispose(): void {
    for (const p of this.params.values()) p.variable.dispose();
    this.params.clear();
  }
}
