/**
 * Shared plumbing of the evaluation run folders: where they go, whether a
 * finished result can be reused (same checkpoint step and same recipe),
 * `result.json`, and the accuracy and confusion figures.
 *
 * @module
 */
import { type BackendChoice, initBackend, usePrecision } from "../backend/mod.ts";
import { evalPaths } from "../run/mod.ts";
import { writeFileAtomic } from "../util/fs.ts";
import { confusionMatrixSvg, lineChart, type LineSeries, svgToPng } from "../viz/mod.ts";

/** Read `<dir>/result.json`, or null when it is missing or unreadable. */
export async function readResult(dir: string): Promise<Record<string, unknown> | null> {
  try {
    return JSON.parse(await Deno.readTextFile(evalPaths(dir).result));
  } catch {
    return null;
  }
}

/** Write pretty JSON atomically. */
export async function writeJson(path: string, value: unknown): Promise<void> {
  await writeFileAtomic(path, JSON.stringify(value, null, 2) + "\n");
}

/** Empty (or create) a run folder's `metrics.jsonl`. */
export async function resetMetrics(dir: string): Promise<string> {
  await Deno.mkdir(dir, { recursive: true });
  const path = evalPaths(dir).metrics;
  await writeFileAtomic(path, "");
  return path;
}

/** `accuracy.png`: accuracy in % per epoch, one line per named series. */
export async function writeAccuracyFigure(
  path: string,
  title: string,
  series: { name: string; epochs: number[]; values: (number | null)[] }[],
): Promise<void> {
  const lines: LineSeries[] = series.map((s) => ({
    name: s.name,
    x: s.epochs,
    y: s.values.map((v) => (v === null ? null : 100 * v)),
  }));
  if (lines.every((l) => l.y.every((v) => v === null))) return;
  await svgToPng(
    await lineChart({ title, xLabel: "epoch", yLabel: "top-1 (%)", series: lines }),
    path,
  );
}

/** `loss.png`: training loss per epoch. */
export async function writeLossFigure(
  path: string,
  title: string,
  epochs: number[],
  losses: number[],
): Promise<void> {
  if (epochs.length === 0) return;
  await svgToPng(
    await lineChart({
      title,
      xLabel: "epoch",
      yLabel: "loss",
      series: [{ name: "train", x: epochs, y: losses }],
    }),
    path,
  );
}

/** `confusion.png`: the row-normalised confusion matrix. */
export async function writeConfusionFigure(
  path: string,
  title: string,
  confusion: number[][],
  classNames: readonly string[] | undefined,
): Promise<void> {
  const K = confusion.length;
  const names = classNames && classNames.length === K
    ? classNames
    : Array.from({ length: K }, (_, i) => String(i));
  await svgToPng(await confusionMatrixSvg(confusion, names, { title }), path);
}

/** Percent with one decimal, for progress lines. */
export function pct(v: number | null | undefined): string {
  return v === null || v === undefined || !Number.isFinite(v) ? "-" : `${(100 * v).toFixed(1)}%`;
}

/** Backend choice of an evaluation, falling back to what the pre-training run used. */
export interface EvalBackendOptions {
  backend?: string;
  threads?: number;
  quiet?: boolean;
  /** Matmul precision (`auto` | `fp32` | `bf16`; default: the run's `train.precision`). */
  precision?: string;
}

/** Starts the backend an evaluation of `runDir` asks for (or the run's own). */
export async function initEvalBackend(
  opts: EvalBackendOptions,
  saved: { run: { backend: string; threads: number }; train?: { precision?: string } },
): Promise<"fp32" | "bf16"> {
  await initBackend({
    backend: (opts.backend ?? saved.run.backend) as BackendChoice,
    threads: opts.threads ?? saved.run.threads,
    quiet: opts.quiet,
  });
  // the evaluation's matmuls run at the precision asked for, else the pre-training run's
  const p = usePrecision(opts.precision ?? saved.train?.precision ?? "auto");
  if (!opts.quiet) console.log(`precision: ${p.precision} (${p.reason})`);
  return p.precision;
}

/**
 * Adds the matmul precision to an evaluation recipe when it is bf16, so a bf16 result is never
 * reused for an fp32 request (or back); fp32 recipes stay as they were before precision existed.
 */
export function withPrecision<R extends Recipe>(
  recipe: R,
  precision: "fp32" | "bf16",
): R & { precision?: "bf16" } {
  return precision === "bf16" ? { ...recipe, precision } : recipe;
}

/** One setting of a {@link Recipe}: a JSON scalar or a list of them. */
export type RecipeValue =
  | string
  | number
  | boolean
  | null
  | readonly (string | number | boolean | null)[];

/**
 * Every setting that changes an evaluation's number, with defaults resolved
 * (so asking for a default explicitly gives the same record as omitting it).
 * Stored in `result.json` under `recipe`; a result is reused only for an equal one.
 */
export type Recipe = Readonly<Record<string, RecipeValue>>;

function recipeText(v: unknown): string {
  if (v === undefined) return "unset";
  return typeof v === "string" ? v : JSON.stringify(v);
}

/**
 * The settings that differ between a stored recipe and a new one, each as
 * `"key old -> new"` (`unset` for a key only one side has), in the new
 * recipe's key order then the stored-only keys; empty when they are equal.
 */
export function recipeChanges(stored: Readonly<Record<string, unknown>>, recipe: Recipe): string[] {
  const keys = [...Object.keys(recipe), ...Object.keys(stored).filter((k) => !(k in recipe))];
  const changes: string[] = [];
  for (const k of keys) {
    const was = Object.hasOwn(stored, k) ? stored[k] : undefined;
    const now = Object.hasOwn(recipe, k) ? recipe[k] : undefined;
    // JSON text compares numbers exactly (they round-trip), lists element by element, and
    // tells a missing key (no text) from null
    if (JSON.stringify(was) !== JSON.stringify(now)) {
      changes.push(`${k} ${recipeText(was)} -> ${recipeText(now)}`);
    }
  }
  return changes;
}

/**
 * The finished result in `outDir` when it is for checkpoint `step` and was
 * computed with an equal `recipe` (see {@link Recipe}), and `force` is off;
 * logs that it is reused. Otherwise null, logging one line with why it is
 * recomputed: another checkpoint, a `result.json` without a recipe (older
 * format), or the recipe keys that changed (`epochs 20 -> 30`).
 */
export async function reusableResult(
  outDir: string,
  step: number,
  force: boolean | undefined,
  log: (s: string) => void,
  recipe: Recipe,
): Promise<Record<string, unknown> | null> {
  const existing = await readResult(outDir);
  if (!existing || force) return null;
  if (existing.ckptStep !== step) {
    log(
      `${outDir}: result.json is for checkpoint step ${
        recipeText(existing.ckptStep)
      }, the run is at step ${step}; running again`,
    );
    return null;
  }
  const stored = existing.recipe;
  if (typeof stored !== "object" || stored === null || Array.isArray(stored)) {
    log(`${outDir}: result.json records no recipe (older format); running again`);
    return null;
  }
  const changes = recipeChanges(stored as Record<string, unknown>, recipe);
  if (changes.length > 0) {
    log(`${outDir}: recipe changed (${changes.join(", ")}); running again`);
    return null;
  }
  log(
    `${evalPaths(outDir).result} exists for checkpoint step ${step} and the same recipe (top-1 ${
      pct(existing.top1 as number)
    }); pass --force to recompute`,
  );
  return existing;
}

/** `accuracy.png`, `loss.png` and `confusion.png` of a classifier trained over epochs. */
export async function writeTrainingFigures(
  outDir: string,
  title: string,
  history: { epoch: number; loss: number; testTop1: number | null }[],
  confusion: { title: string; matrix: number[][]; classNames: readonly string[] | undefined },
): Promise<void> {
  const paths = evalPaths(outDir);
  await writeAccuracyFigure(paths.file("accuracy.png"), title, [{
    name: "test top-1",
    epochs: history.map((e) => e.epoch),
    values: history.map((e) => e.testTop1),
  }]);
  await writeLossFigure(
    paths.file("loss.png"),
    title,
    history.map((e) => e.epoch),
    history.map((e) => e.loss),
  );
  await writeConfusionFigure(
    paths.file("confusion.png"),
    confusion.title,
    confusion.matrix,
    confusion.classNames,
  );
}
