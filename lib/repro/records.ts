/**
 * Record files of `deno task repro`: one small JSON file per finished
 * (run, seed), `<results>/records/<id>-s<seed>.json`, holding every number the
 * tables read and where it came from (no checkpoints). Parts of a budget run
 * on different machines merge by copying these files into one folder.
 *
 * A record is made from a finished run folder (`<run.dir>/runs/<id>-s<seed>/`:
 * `summary.json`, `run.json`, `config.json`, `metrics.jsonl`,
 * `linprobe/result.json`, `finetune/result.json`,
 * `eval/attention_on_object.json`; `random_init.json` for the random-init
 * baseline), so the same folder always gives the same record.
 *
 * @module
 */
import { type Config, loadSavedConfig } from "../config/mod.ts";
import { saliencyFlops } from "../mim/flops.ts";
import { mimTrainFlops } from "../mim/methods.ts";
import { readMetrics } from "../run/metrics.ts";
import { readJsonOrNull, writeFileAtomic } from "../util/fs.ts";
import type { VitShape } from "../vit/presets.ts";
import { resolveShape } from "../vit/vit.ts";
import type { ReproBudget, ReproRun } from "./plan.ts";

/** One finished (run, seed): its measurements (accuracies in percent) and provenance. */
export interface ReproRecord {
  id: string;
  seed: number;
  label: string;
  method: string;
  /** `amt.strategy`, or "random-init" for the untrained-encoder baseline. */
  strategy: string;
  maskRatio: number;
  throwRatio: number;
  /** Linear-probe top-1 % (last epoch), or null when not probed. */
  linear: number | null;
  /** kNN top-1 % on the probe's features. */
  knn: number | null;
  /** Fine-tune top-1 %, null when the budget does not fine-tune. */
  finetune: number | null;
  /** Share of the CLS-attention saliency on the object, in [0, 1]. */
  attnOnObject: number | null;
  /** Mean object area fraction (what a uniform map scores), in [0, 1]. */
  objectArea: number | null;
  /**
   * The attention monitor over pre-training (`eval.attnEvery`), on the first training images:
   * one point per measured epoch; empty when the run did not monitor (records before it).
   */
  attnCurve: AttnCurvePoint[];
  /** Wall-clock pre-training seconds (sum of epochs, saliency passes included). */
  pretrainSeconds: number;
  saliencySeconds: number;
  /** Counted training FLOPs, saliency passes included. */
  flops: number;
  finalLoss: number | null;
  /** Patches per image masked / thrown / visible in the last pre-training epoch. */
  masked: number | null;
  thrown: number | null;
  visible: number | null;
  /** Test images of the probe (and kNN). */
  testImages: number | null;
  // provenance
  budget: string;
  dataset: string;
  /** The checkout's commit when pre-training started ("-dirty" with local changes). */
  gitCommit: string | null;
  /** When the run finished (ISO 8601). */
  date: string;
  backend: string;
  threads: number;
  /** Matmul precision of pre-training (`fp32` / `bf16`; `fp32` for records made before it existed). */
  precision: string;
  command: string;
}

/** One epoch of {@linkcode ReproRecord.attnCurve} (shares in [0, 1]). */
export interface AttnCurvePoint {
  /** Finished epochs (1-based). */
  epoch: number;
  /** The `cls-last` map's share on the object. */
  attnOnObject: number;
  /** The `rollout` map's, when it was scored. */
  attnOnObjectRollout?: number;
  objectArea: number;
}

/** The attention-monitor points of a run's epoch records. */
export function attnCurveOf(epochs: readonly Record<string, unknown>[]): AttnCurvePoint[] {
  const out: AttnCurvePoint[] = [];
  for (const r of epochs) {
    if (typeof r.attnOnObject !== "number" || typeof r.objectArea !== "number") continue;
    const p: AttnCurvePoint = {
      epoch: Number(r.epoch) + 1,
      attnOnObject: r.attnOnObject,
      objectArea: r.objectArea,
    };
    if (typeof r.attnOnObjectRollout === "number") p.attnOnObjectRollout = r.attnOnObjectRollout;
    out.push(p);
  }
  return out;
}

/** The measured fields: a record and a run folder agree when these do. */
export const MEASURED_KEYS = [
  "linear",
  "knn",
  "finetune",
  "attnOnObject",
  "objectArea",
  "pretrainSeconds",
  "saliencySeconds",
  "flops",
  "finalLoss",
  "masked",
  "thrown",
  "visible",
] as const satisfies readonly (keyof ReproRecord)[];

/** `<id>-s<seed>.json` */
export function recordFileName(id: string, seed: number): string {
  return `${id}-s${seed}.json`;
}

/** Write `<resultsDir>/records/<id>-s<seed>.json`; returns its path. */
export async function writeRecord(resultsDir: string, r: ReproRecord): Promise<string> {
  const path = `${resultsDir}/records/${recordFileName(r.id, r.seed)}`;
  await writeFileAtomic(path, JSON.stringify(r, null, 2) + "\n");
  return path;
}

const NUMBER_OR_NULL: readonly (keyof ReproRecord)[] = [
  "linear",
  "knn",
  "finetune",
  "attnOnObject",
  "objectArea",
  "finalLoss",
  "masked",
  "thrown",
  "visible",
  "testImages",
];

/**
 * Check that a parsed JSON value is a record (missing optional numbers become null).
 * @throws {Error} naming `source` and the bad field.
 */
export function checkRecord(x: unknown, source: string): ReproRecord {
  const bad = (what: string) => new Error(`${source}: not a repro record (${what})`);
  if (typeof x !== "object" || x === null || Array.isArray(x)) throw bad("not an object");
  const r = x as Record<string, unknown>;
  if (typeof r.id !== "string" || r.id === "") throw bad("id must be a string");
  if (!Number.isInteger(r.seed) || (r.seed as number) < 0) throw bad("seed must be an integer");
  for (const k of NUMBER_OR_NULL) {
    if (r[k] === undefined) r[k] = null;
    if (r[k] !== null && typeof r[k] !== "number") throw bad(`${k} must be a number or null`);
  }
  for (const k of ["pretrainSeconds", "saliencySeconds", "flops"]) {
    if (r[k] === undefined || r[k] === null) r[k] = 0;
    if (typeof r[k] !== "number") throw bad(`${k} must be a number`);
  }
  r.maskRatio = typeof r.maskRatio === "number" ? r.maskRatio : 0;
  r.throwRatio = typeof r.throwRatio === "number" ? r.throwRatio : 0;
  for (
    const k of ["label", "method", "strategy", "budget", "dataset", "date", "backend", "command"]
  ) {
    if (r[k] === undefined || r[k] === null) r[k] = k === "label" ? r.id : "";
    if (typeof r[k] !== "string") throw bad(`${k} must be a string`);
  }
  if (r.attnCurve === undefined || r.attnCurve === null) r.attnCurve = [];
  if (
    !Array.isArray(r.attnCurve) ||
    !r.attnCurve.every((p) =>
      typeof p === "object" && p !== null && typeof p.epoch === "number" &&
      typeof p.attnOnObject === "number" && typeof p.objectArea === "number"
    )
  ) throw bad("attnCurve must be a list of {epoch, attnOnObject, objectArea}");
  if (r.gitCommit === undefined) r.gitCommit = null;
  if (typeof r.threads !== "number") r.threads = 0;
  if (r.precision === undefined || r.precision === null) r.precision = "fp32";
  if (typeof r.precision !== "string") throw bad(`precision must be a string`);
  return r as unknown as ReproRecord;
}

/**
 * Every `*.json` record in `dir` (none when the folder is missing), sorted by id then seed.
 * Records of another budget are left out (with a log line) when `budget` is given.
 */
export async function readRecords(
  dir: string,
  budget?: string,
  log: (s: string) => void = () => {},
): Promise<ReproRecord[]> {
  const out: ReproRecord[] = [];
  let entries: Deno.DirEntry[];
  try {
    entries = await Array.fromAsync(Deno.readDir(dir));
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return [];
    throw e;
  }
  for (const e of entries) {
    if (!e.isFile || !e.name.endsWith(".json")) continue;
    const path = `${dir}/${e.name}`;
    let parsed: unknown;
    try {
      parsed = JSON.parse(await Deno.readTextFile(path));
    } catch (err) {
      throw new Error(`${path}: not JSON (${(err as Error).message})`);
    }
    const r = checkRecord(parsed, path);
    if (budget !== undefined && r.budget !== "" && r.budget !== budget) {
      log(`${path}: a record of budget "${r.budget}", not "${budget}"; left out`);
      continue;
    }
    if (e.name !== recordFileName(r.id, r.seed)) {
      log(`${path}: holds ${r.id} seed ${r.seed} (expected ${recordFileName(r.id, r.seed)})`);
    }
    out.push(r);
  }
  return sortRecords(out);
}

/** Sorted by id, then seed (a new array). */
export function sortRecords(rs: readonly ReproRecord[]): ReproRecord[] {
  return [...rs].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : a.seed - b.seed));
}

/** The measured keys on which two records of the same (id, seed) differ. */
export function differingKeys(a: ReproRecord, b: ReproRecord): string[] {
  return MEASURED_KEYS.filter((k) => {
    const x = a[k], y = b[k];
    if (x === null || y === null) return x !== y;
    return Math.abs(x - y) > 1e-9 * Math.max(1, Math.abs(x), Math.abs(y));
  });
}

/** What {@link mergeRecords} decided. */
export interface MergedRecords {
  /** One record per (id, seed), sorted. */
  runs: ReproRecord[];
  /** Folder-made records that had no record file, or whose record file disagreed. */
  fromFolders: ReproRecord[];
  /** (id, seed) pairs where a record file and its run folder disagreed. */
  disagreements: { id: string; seed: number; keys: string[] }[];
}

/**
 * Merge record files with records made from run folders: a run folder's record is used when
 * there is no record file; when both exist the record file is kept if they agree (its
 * provenance, e.g. the command, may be richer), else the run folder wins and it is logged.
 */
export function mergeRecords(
  files: readonly ReproRecord[],
  folders: readonly ReproRecord[],
  log: (s: string) => void = () => {},
): MergedRecords {
  const key = (r: ReproRecord) => `${r.id}\u0000${r.seed}`;
  const byKey = new Map(files.map((r) => [key(r), r]));
  const fromFolders: ReproRecord[] = [];
  const disagreements: MergedRecords["disagreements"] = [];
  for (const f of folders) {
    const rec = byKey.get(key(f));
    if (!rec) {
      byKey.set(key(f), f);
      fromFolders.push(f);
      continue;
    }
    const keys = differingKeys(rec, f);
    if (keys.length === 0) continue;
    const show = (r: ReproRecord) =>
      keys.map((k) => `${k} ${r[k as keyof ReproRecord]}`).join(", ");
    log(
      `${f.id} seed ${f.seed}: the record (${show(rec)}) disagrees with the run folder ` +
        `(${show(f)}); using the run folder`,
    );
    byKey.set(key(f), f);
    fromFolders.push(f);
    disagreements.push({ id: f.id, seed: f.seed, keys });
  }
  return { runs: sortRecords([...byKey.values()]), fromFolders, disagreements };
}

async function mtimeIso(path: string): Promise<string> {
  try {
    const m = (await Deno.stat(path)).mtime;
    return (m ?? new Date()).toISOString();
  } catch {
    return new Date().toISOString();
  }
}

/** Counted FLOPs of a finished run from its metrics (plan sizes per epoch) and shape. */
export async function countedFlops(
  runDir: string,
  read: {
    config?: Readonly<Config>;
    info?: Record<string, unknown>;
    epochs?: readonly Record<string, unknown>[];
  } = {},
): Promise<number> {
  const config = read.config ?? await loadSavedConfig(runDir);
  // deno-lint-ignore no-explicit-any
  const info: any = read.info ?? JSON.parse(await Deno.readTextFile(`${runDir}/run.json`));
  const shape: VitShape = info.shape ?? resolveShape(config.model, info.channels, info.imageSize);
  const epochs = read.epochs ??
    (await readMetrics(`${runDir}/metrics.jsonl`)).filter((r) => r.type === "epoch");
  const imagesPerEpoch = info.stepsPerEpoch * config.train.batchSize;
  let flops = 0;
  for (const e of epochs) {
    const plan = {
      masked: e.masked as number,
      thrown: e.thrown as number,
      visible: e.visible as number,
    };
    flops += imagesPerEpoch *
      mimTrainFlops(config.mim.method, shape, plan, {
        cellSize: config.mim.hogCell,
        bins: config.mim.hogBins,
      });
    if (typeof e.saliencySeconds === "number") flops += info.images * saliencyFlops(shape);
  }
  return flops;
}

/** Options of {@link recordFromRunFolder}. */
export interface FolderRecordOptions {
  /** The command that made the run (default: the one `run.json` recorded). */
  command?: string;
}

/** Whether a budget linear-probes a run. */
export function isProbed(run: ReproRun, budget: ReproBudget): boolean {
  if (run.probe !== undefined) return run.probe;
  // MaskFeat rows are new (no paper numbers): probed at every budget, so each has a linear column
  return run.method === "mae" || run.method === "maskfeat" || run.kind === "random-init" ||
    budget.probeSimmim === true;
}

/** Whether a budget fine-tunes a run (not the random-init baseline, not the study's runs). */
export function isFinetuned(run: ReproRun, budget: ReproBudget): boolean {
  return budget.finetuneEpochs > 0 && run.kind !== "random-init" && !run.optIn;
}

/**
 * The record of a finished run folder, or a sentence saying what is missing.
 * Needs pre-training finished (`summary.json`), the linear probe when the budget probes the
 * run, the fine-tune when it fine-tunes, and the attention-on-object measure.
 */
export async function recordFromRunFolder(
  runDir: string,
  run: ReproRun,
  seed: number,
  budget: ReproBudget,
  opts: FolderRecordOptions = {},
): Promise<ReproRecord | string> {
  const randomInit = run.kind === "random-init";
  const marker = randomInit ? `${runDir}/random_init.json` : `${runDir}/summary.json`;
  const head = await readJsonOrNull(marker);
  if (!head) return randomInit ? "random-init probe not finished" : "pre-training not finished";
  const lp = await readJsonOrNull(`${runDir}/linprobe/result.json`);
  if (isProbed(run, budget) && !lp) return "no linear probe result";
  const ft = isFinetuned(run, budget)
    ? await readJsonOrNull(`${runDir}/finetune/result.json`)
    : null;
  if (isFinetuned(run, budget) && !ft) return "no fine-tune result";
  const obj = await readJsonOrNull(`${runDir}/eval/attention_on_object.json`);
  if (!obj) return "no attention-on-object result";
  // percent, rounded to 1e-6 (an accuracy on N <= 10^8 images is exact; no 28.999999999999996)
  const pct = (v: unknown) => (typeof v === "number" ? Number((100 * v).toFixed(6)) : null);
  const num = (v: unknown) => (typeof v === "number" ? v : null);
  let prov: Record<string, unknown>, dataset: string;
  let counts: { masked: number | null; thrown: number | null; visible: number | null } = {
    masked: null,
    thrown: null,
    visible: null,
  };
  let flops = 0, pretrainSeconds = 0, saliencySeconds = 0, finalLoss: number | null = null;
  let attnCurve: AttnCurvePoint[] = [];
  if (randomInit) {
    prov = head;
    dataset = String(head.dataset ?? "");
  } else {
    const runJson = await readJsonOrNull(`${runDir}/run.json`);
    prov = runJson ?? {};
    const config = await loadSavedConfig(runDir);
    dataset = config.data.name;
    const epochs = (await readMetrics(`${runDir}/metrics.jsonl`)).filter((r) => r.type === "epoch");
    attnCurve = attnCurveOf(epochs);
    const last = epochs.at(-1);
    if (last) {
      counts = { masked: num(last.masked), thrown: num(last.thrown), visible: num(last.visible) };
    }
    flops = await countedFlops(runDir, { config, info: runJson ?? undefined, epochs }); // read once
    pretrainSeconds = num(head.pretrainSeconds) ?? 0;
    saliencySeconds = num(head.saliencySeconds) ?? 0;
    finalLoss = num(head.finalLoss);
  }
  return {
    id: run.id,
    seed,
    label: run.label,
    method: run.method,
    strategy: randomInit ? "random-init" : run.strategy,
    maskRatio: randomInit ? 0 : run.maskRatio,
    throwRatio: randomInit ? 0 : run.throwRatio,
    linear: pct(lp?.top1),
    knn: pct(lp?.knnTop1),
    finetune: pct(ft?.top1),
    attnOnObject: num(obj.mean),
    objectArea: num(obj.areaFraction),
    attnCurve,
    pretrainSeconds,
    saliencySeconds,
    flops,
    finalLoss,
    ...counts,
    testImages: num(lp?.testImages),
    budget: budget.name,
    dataset,
    gitCommit: typeof prov.gitCommit === "string" ? prov.gitCommit : null,
    date: await mtimeIso(marker),
    backend: String(prov.backend ?? ""),
    threads: num(prov.threads) ?? 0,
    precision: typeof prov.precision === "string" ? prov.precision : "fp32",
    command: opts.command ?? String(prov.command ?? ""),
  };
}

/** A finished run folder found under `<run.dir>/runs/`. */
export interface FolderRecord {
  record: ReproRecord;
  runDir: string;
}

/**
 * Records of the finished run folders `<runRoot>/runs/<id>-s<seed>/` of the budget's runs
 * (unfinished ones are logged and left out; a missing folder gives none).
 */
export async function scanRunFolders(
  runRoot: string,
  runs: readonly ReproRun[],
  budget: ReproBudget,
  log: (s: string) => void = () => {},
): Promise<FolderRecord[]> {
  let entries: Deno.DirEntry[];
  try {
    entries = await Array.fromAsync(Deno.readDir(`${runRoot}/runs`));
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return [];
    throw e;
  }
  const out: FolderRecord[] = [];
  for (const e of entries.sort((a, b) => (a.name < b.name ? -1 : 1))) {
    const m = /^(.+)-s(\d+)$/.exec(e.name);
    const run = m && runs.find((r) => r.id === m[1]);
    if (!e.isDirectory || !m || !run) continue;
    const runDir = `${runRoot}/runs/${e.name}`;
    const r = await recordFromRunFolder(runDir, run, Number(m[2]), budget);
    if (typeof r === "string") log(`${runDir}: ${r}; left out`);
    else out.push({ record: r, runDir });
  }
  return out;
}
