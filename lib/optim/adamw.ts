/**
 * AdamW (Loshchilov & Hutter) with decoupled weight decay, as torch.optim.AdamW:
 * `p -= lr * wd * p`, then the Adam step with bias correction.
 *
 * Parameters without decay (norms, biases, tokens, embeddings) are marked in
 * the model's `ParamStore`. State lives in variables owned by the optimiser. On the wasm backend
 * a step is one pass over each parameter, written in place (`adamWInPlace`); elsewhere, or when
 * another tensor shares a parameter's memory, one fused kernel per parameter (cpu) or tfjs ops.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import type { Param } from "../vit/params.ts";
import { adamWInPlace, fusedAdamW, fusedAvailable, fusedSumSquares } from "../backend/fused.ts";

/** AdamW hyper-parameters (lr is passed per step). */
export interface AdamWOptions {
  beta1: number;
  beta2: number;
  eps: number;
  weightDecay: number;
  /** Clip the global gradient norm to this value (0 = off). */
  clipGrad: number;
  /** Per-parameter lr multipliers, same order as the params (layer-wise lr decay). */
  lrScales?: number[];
}

/** AdamW over a fixed list of parameters. */
export class AdamW {
  readonly m: tf.Variable[];
  readonly v: tf.Variable[];
  /** Completed update steps (bias correction uses step + 1). */
  step = 0;

  constructor(readonly params: Param[], readonly options: AdamWOptions) {
    // zeros built inside tidy: the variables keep the data, the temporaries are released
    this.m = tf.tidy(() => params.map((p) => tf.variable(tf.zerosLike(p.variable), false)));
    this.v = tf.tidy(() => params.map((p) => tf.variable(tf.zerosLike(p.variable), false)));
  }

  /**
   * Compute gradients of `lossFn` and apply one update. Returns the loss
   * (kept; the caller disposes it) and the pre-clip gradient norm.
   * No host sync happens here.
   */
  minimize(lossFn: () => tf.Scalar, lr: number): { loss: tf.Scalar; gradNorm: tf.Scalar } {
    const vars = this.params.map((p) => p.variable);
    const { value, grads } = tf.variableGrads(lossFn, vars);
    const t = this.step + 1;
    const { beta1: b1, beta2: b2, eps, weightDecay: wd, clipGrad } = this.options;
    const fused = fusedAvailable();
    const c1 = 1 / (1 - Math.pow(b1, t));
    const c2 = 1 / (1 - Math.pow(b2, t));
    if (fused) {
      // the whole step in one pass over each parameter, in its own memory (wasm)
      const norm = adamWInPlace(
        this.params.map((p, i) => ({
          p: p.variable,
          g: grads[p.variable.name],
          m: this.m[i],
          v: this.v[i],
          lr: lr * (this.options.lrScales?.[i] ?? 1),
          weightDecay: p.decay ? wd : 0,
        })),
        { beta1: b1, beta2: b2, eps, c1, c2, clipGrad },
      );
      if (norm !== null) {
        tf.dispose(Object.values(grads));
        this.step = t;
        return { loss: value, gradNorm: tf.scalar(norm) };
      }
    }
    const gradNorm = tf.tidy(() => {
      if (fused) return tf.sqrt(fusedSumSquares(this.params.map((p) => grads[p.variable.name])));
      const sq = this.params.map((p) => tf.sum(tf.square(grads[p.variable.name])));
      return tf.sqrt(tf.addN(sq)) as tf.Scalar;
    });
    tf.tidy(() => {
      const scale = clipGrad > 0 ? tf.minimum(1, tf.div(clipGrad, tf.add(gradNorm, 1e-6))) : null;
      if (fused) {
        const k = (scale ?? tf.scalar(1)) as tf.Scalar;
        this.params.forEach((p, i) => {
          const lr_ = lr * (this.options.lrScales?.[i] ?? 1);
          const [np, nm, nv] = fusedAdamW(
            p.variable,
            grads[p.variable.name],
            this.m[i],
            this.v[i],
            k,
            {
              lr: lr_,
              beta1: b1,
              beta2: b2,
              eps,
              weightDecay: p.decay ? wd : 0,
              c1,
              c2,
            },
          );
          this.m[i].assign(nm);
          this.v[i].assign(nv);
          p.variable.assign(np);
        });
        return;
      }
      this.params.forEach((p, i) => {
        let g: tf.Tensor = grads[p.variable.name];
        if (scale) g = tf.mul(g, scale);
        const m = tf.add(tf.mul(this.m[i], b1), tf.mul(g, 1 - b1));
        const v = tf.add(tf.mul(this.v[i], b2), tf.mul(tf.square(g), 1 - b2));
        this.m[i].assign(m);
        this.v[i].assign(v);
        const plr = lr * (this.options.lrScales?.[i] ?? 1);
        const denom = tf.add(tf.sqrt(tf.mul(v, c2)), eps);
        let next = tf.sub(p.variable, tf.mul(tf.div(tf.mul(m, c1), denom), plr));
        if (p.decay && wd > 0) next = tf.sub(next, tf.mul(p.variable, plr * wd));
        p.variable.assign(next);
      });
    });
    tf.dispose(Object.values(grads));
    this.step = t;
    return { loss: value, gradNorm };
  }

  dispose(): void {
    tf.dispose([...this.m, ...this.v]);
  }
}
