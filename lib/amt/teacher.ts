/**
 * An exponential-moving-average copy of the encoder (a mean teacher, as in
 * BYOL / DINO), the model of `amt.saliency: ema-teacher`: after every AdamW
 * step each of its weights moves towards the student's,
 *
 *     θ_teacher ← m θ_teacher + (1 − m) θ_student,   m = `amt.emaMomentum`,
 *
 * and its last-block CLS attention gives the maps. Its weights are the
 * planner's checkpoint state (`planner/ema/<name>`), so a resume continues the
 * same average.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { ParamStore } from "../vit/params.ts";
import { VisionTransformer } from "../vit/vit.ts";

/** An EMA copy of a ViT encoder; owns its weights (call {@linkcode dispose}). */
export class EmaTeacher {
  readonly store: ParamStore;
  /** The teacher encoder: same shape and parameter names as the student's. */
  readonly encoder: VisionTransformer;
  /** [teacher, student] variable pairs, in the teacher's creation order. */
  private readonly pairs: { name: string; teacher: tf.Variable; student: tf.Variable }[];
  /** EMA updates applied (this process and, after {@linkcode loadState}, before it). */
  updates = 0;

  /**
   * A copy of `student` (same weights now) that follows it with momentum `momentum`.
   *
   * @throws {RangeError} when `momentum` is not in [0, 1).
   */
  constructor(readonly student: VisionTransformer, readonly momentum: number) {
    if (!(momentum >= 0 && momentum < 1)) {
      throw new RangeError(`amt.emaMomentum ${momentum} must be in [0, 1) (e.g. 0.996)`);
    }
    this.store = new ParamStore(student.store.seed);
    this.encoder = new VisionTransformer(this.store, student.shape, student.prefix);
    this.pairs = [...this.store.params.values()].map((p) => {
      const s = student.store.params.get(p.name);
      if (!s) {
        throw new Error(`EmaTeacher: the student has no parameter "${p.name}" to follow`);
      }
      return { name: p.name, teacher: p.variable, student: s.variable };
    });
    this.copyStudent();
  }

  /** Set every teacher weight to the student's (the start of the average). */
  copyStudent(): void {
    tf.tidy(() => {
      for (const { teacher, student } of this.pairs) teacher.assign(student.clone());
    });
  }

  /** One EMA step, `θ_t ← m θ_t + (1 − m) θ_s`; device work only, no host read. */
  update(): void {
    const m = this.momentum;
    tf.tidy(() => {
      for (const { teacher, student } of this.pairs) {
        teacher.assign(tf.add(tf.mul(teacher, m), tf.mul(student, 1 - m)));
      }
    });
    this.updates++;
  }

  /** The teacher's weights as checkpoint arrays (`ema/<name>`) and its update count. */
  saveState(): Map<string, { shape: number[]; data: Float32Array | Int32Array }> {
    const out = new Map<string, { shape: number[]; data: Float32Array | Int32Array }>();
    for (const { name, teacher } of this.pairs) {
      out.set(`ema/${name}`, { shape: teacher.shape, data: teacher.dataSync() as Float32Array });
    }
    out.set("ema_updates", { shape: [1], data: Int32Array.of(this.updates) });
    return out;
  }

  /**
   * Restore {@linkcode saveState}'s arrays; returns false (teacher left as is) when the
   * checkpoint holds no teacher, e.g. one written before `ema-teacher` was chosen.
   *
   * @throws {Error} when a weight is missing or has another shape (another model).
   */
  loadState(
    arrays: Map<string, { shape: number[]; data: Float32Array | Int32Array | Uint8Array }>,
  ): boolean {
    if (![...arrays.keys()].some((k) => k.startsWith("ema/"))) return false;
    for (const { name, teacher } of this.pairs) {
      const a = arrays.get(`ema/${name}`);
      if (!a || a.shape.join(",") !== teacher.shape.join(",")) {
        throw new Error(
          `EMA teacher weight "${name}" is ${a ? `[${a.shape}]` : "missing"} in the checkpoint, ` +
            `the model has [${teacher.shape}]; the checkpoint is from another model`,
        );
      }
      tf.tidy(() => teacher.assign(tf.tensor(a.data as Float32Array, a.shape)));
    }
    const n = arrays.get("ema_updates");
    this.updates = n ? (n.data as Int32Array)[0] : 0;
    return true;
  }

  dispose(): void {
    this.encoder.dispose();
    this.store.dispose();
  }
}
