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

/** One parameter and whether weight decay applies to it. */
export interface Param {
  name: string;
  variable: tf.Variable;
  decay: boolean;
}

/** A named collection of variables owned by one model. */
export class ParamStore {
  readonly params = new Map<string, Param>();
  constructor(readonly seed: number) {}

  /**
   * Create a variable. `decay: false` for norms and biases (every 1-D parameter, as MAE's
   * `add_weight_decay`); whether learned tokens decay is the method's choice (MAE decays its
   * CLS and mask tokens, SimMIM's `no_weight_decay` skips them): see {@linkcode setDecay}.
   */
  create(name: string, shape: number[], init: Init, decay: boolean): tf.Variable {
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
    this.params.set(name, { name, variable, decay });
    return variable;
  }

  /** Sets whether AdamW's weight decay applies to parameter `name`. */
  setDecay(name: string, decay: boolean): void {
    const p = this.params.get(name);
    if (!p) throw new Error(`no parameter "${name}" (have ${[...this.params.keys()].join(", ")})`);
    p.decay = decay;
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
