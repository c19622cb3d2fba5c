/**
 * The charts of a run folder, from its logged records: loss and learning-rate
 * curves (`metrics.jsonl` step / epoch records), accuracy curves (kNN during
 * pre-training, linear probe, fine-tune) and attention on the object over
 * training. Pure functions of the records; `run_plots.ts` reads the files.
 *
 * Epoch fields are 0-based indices in the trainer's records; charts show
 * them 1-based ("epoch 1" is the first epoch).
 *
 * @module
 */

import { lineChart, type LineSeries, type RuleMark } from "./charts.ts";

/** One logged record (the shape of a `metrics.jsonl` line). */
export type LogRecord = Readonly<Record<string, unknown>>;

function num(v: unknown): number | null {
  return typeof v === "number" && Number.isFinite(v) ? v : null;
}

function ofType(records: readonly LogRecord[], type: string): LogRecord[] {
  return records.filter((r) => r.type === type);
}

/** The last record per `step` (a resumed run may log a step twice before truncation). */
function lastPerStep(records: readonly LogRecord[]): LogRecord[] {
  const byStep = new Map<number, LogRecord>();
  for (const r of records) {
    const s = num(r.step);
    if (s !== null) byStep.set(s, r);
  }
  return [...byStep.entries()].sort((a, b) => a[0] - b[0]).map((e) => e[1]);
}

/**
 * Steps at which the masking phase changes (e.g. AMT's warm-up → amt), from
 * epoch records, or step records when there are none.
 */
export function phaseChanges(records: readonly LogRecord[]): RuleMark[] {
  const epochs = lastPerStep(ofType(records, "epoch"));
  const seq = epochs.length > 0 ? epochs : lastPerStep(ofType(records, "step"));
  const rules: RuleMark[] = [];
  for (let i = 1; i < seq.length; i++) {
    const a = seq[i - 1].phase;
    const b = seq[i].phase;
    if (typeof a === "string" && typeof b === "string" && a !== b) {
      rules.push({ x: num(seq[i - 1].step) ?? 0, label: b });
    }
  }
  return rules;
}

/**
 * Pre-training loss against the optimiser step: the logged (window-mean) step
 * losses and the epoch means, with a marker where the masking phase changes.
 * Resolves to null when there are no step records.
 */
export function lossCurveChart(
  records: readonly LogRecord[],
  opts: { title?: string; width?: number; height?: number } = {},
): Promise<string> | null {
  const steps = lastPerStep(ofType(records, "step"));
  if (steps.length === 0) return null;
  const epochs = lastPerStep(ofType(records, "epoch")).filter((r) => num(r.loss) !== null);
  const series: LineSeries[] = [{
    name: "logged steps",
    x: steps.map((r) => num(r.step)!),
    y: steps.map((r) => num(r.loss)),
  }];
  if (epochs.length > 0) {
    series.push({
      name: "epoch mean",
      x: epochs.map((r) => num(r.step)!),
      y: epochs.map((r) => num(r.loss)),
      dashed: true,
    });
  }
  return lineChart({
    title: opts.title ?? "pre-training loss",
    xLabel: "step",
    yLabel: "loss",
    series,
    markers: steps.length <= 40,
    rules: phaseChanges(records),
    width: opts.width,
    height: opts.height,
  });
}

/** Learning rate against the step (warm-up then cosine). Null without step records. */
export function lrCurveChart(
  records: readonly LogRecord[],
  opts: { title?: string; width?: number; height?: number } = {},
): Promise<string> | null {
  const steps = lastPerStep(ofType(records, "step")).filter((r) => num(r.lr) !== null);
  if (steps.length === 0) return null;
  return lineChart({
    title: opts.title ?? "learning rate",
    xLabel: "step",
    yLabel: "lr",
    series: [{ name: "lr", x: steps.map((r) => num(r.step)!), y: steps.map((r) => num(r.lr)) }],
    markers: steps.length <= 40,
    yFormat: ".1e",
    width: opts.width,
    height: opts.height,
  });
}

/** One accuracy curve: top-1 per (1-based) epoch. */
export interface AccuracyCurve {
  name: string;
  epochs: readonly number[];
  /** Top-1 per epoch: fractions in [0, 1] (shown as %) or percentages. */
  top1: readonly (number | null)[];
  /** Dashed (e.g. train accuracy beside test accuracy). */
  dashed?: boolean;
}

/**
 * Per-epoch values of `key` in records that have a numeric `epoch`, 1-based
 * (0-based indices are shifted by one); the last record per epoch wins.
 */
export function epochSeries(
  records: readonly LogRecord[],
  key: string,
): { epochs: number[]; values: number[] } {
  const rows = records.filter((r) => num(r.epoch) !== null && num(r[key]) !== null);
  if (rows.length === 0) return { epochs: [], values: [] };
  const shift = Math.min(...rows.map((r) => num(r.epoch)!)) === 0 ? 1 : 0;
  const byEpoch = new Map<number, number>();
  for (const r of rows) byEpoch.set(num(r.epoch)! + shift, num(r[key])!);
  const epochs = [...byEpoch.keys()].sort((a, b) => a - b);
  return { epochs, values: epochs.map((e) => byEpoch.get(e)!) };
}

/** A d3 percent format precise enough for the spread of `values` (fractions). */
function percentFormat(values: readonly number[]): string {
  const span = Math.max(...values) - Math.min(...values);
  return span >= 0.05 ? ".0%" : span >= 0.005 ? ".1%" : ".2%";
}

/**
 * Accuracy curves (top-1 against epoch). Fractions are drawn as percent;
 * null when no curve has a point.
 */
export function accuracyCurveChart(
  curves: readonly AccuracyCurve[],
  opts: { title?: string; xLabel?: string; width?: number; height?: number } = {},
): Promise<string> | null {
  const shown = curves.filter((c) => c.top1.some((v) => num(v) !== null));
  if (shown.length === 0) return null;
  const all = shown.flatMap((c) => c.top1.filter((v): v is number => num(v) !== null));
  const fraction = Math.max(...all) <= 1;
  return lineChart({
    title: opts.title ?? "accuracy",
    xLabel: opts.xLabel ?? "epoch",
    yLabel: fraction ? "top-1" : "top-1 (%)",
    yFormat: fraction ? percentFormat(all) : undefined,
    series: shown.map((c) => ({ name: c.name, x: c.epochs, y: c.top1, dashed: c.dashed })),
    width: opts.width,
    height: opts.height,
  });
}

/** One run's attention-on-object fraction over training (e.g. random vs AMT masking). */
export interface AttentionCurve {
  name: string;
  epochs: readonly number[];
  /** Share of the saliency mass that falls on the object, in [0, 1]. */
  values: readonly (number | null)[];
}

/**
 * Attention on the object over training, one line per run, with the share
 * of the image the objects cover as a dashed reference when given.
 */
export function attentionOnObjectChart(
  runs: readonly AttentionCurve[],
  opts: { title?: string; objectShare?: number; width?: number; height?: number } = {},
): Promise<string> | null {
  const shown = runs.filter((r) => r.values.some((v) => num(v) !== null));
  if (shown.length === 0) return null;
  const series: LineSeries[] = shown.map((r) => ({ name: r.name, x: r.epochs, y: r.values }));
  if (opts.objectShare !== undefined && shown.length > 0) {
    const xs = shown.flatMap((r) => [...r.epochs]);
    const lo = Math.min(...xs);
    const hi = Math.max(...xs);
    series.push({
      name: "uniform (object area)",
      x: [lo, hi],
      y: [opts.objectShare, opts.objectShare],
      dashed: true,
    });
  }
  return lineChart({
    title: opts.title ?? "attention on the object",
    xLabel: "epoch",
    yLabel: "saliency mass on object",
    yFormat: ".0%",
    series,
    width: opts.width,
    height: opts.height,
  });
}
