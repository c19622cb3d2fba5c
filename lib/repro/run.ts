/**
 * `deno task repro`: train every run of the paper's Tables 1, 2 and 4 (or the
 * part `--only` / `--seeds` select), evaluate them, write one record file per
 * finished (run, seed) and rebuild the tables from all records.
 *
 * Everything is resumable: finished pre-training runs and evaluations are
 * skipped, an unfinished one resumes from its checkpoint.
 *
 * @module
 */
import { resolveConfig } from "../config/mod.ts";
import { attentionOnObject } from "../eval/attention.ts";
import { labelledSplits, openEvalSplit } from "../eval/data.ts";
import { runFinetune } from "../eval/finetune_run.ts";
import { runLinearProbe } from "../eval/linprobe_run.ts";
import { loadRun } from "../run/load_run.ts";
import { pretrain } from "../pretrain/pretrain.ts";
import { writeFileAtomic } from "../util/fs.ts";
import { probeRandomInit } from "./baseline.ts";
import { budgetOf, planTodo, type ReproBudget, type ReproRun, reproRuns, runArgs } from "./plan.ts";
import { rebuildResults, type RebuildSummary } from "./rebuild.ts";
import {
  isFinetuned,
  isProbed,
  recordFromRunFolder,
  type ReproRecord,
  writeRecord,
} from "./records.ts";

/** Options of {@link runRepro}. */
export interface ReproOptions {
  budget: string;
  /** Run folder root (`runs/<id>-s<seed>/`, this invocation's `results.json`, `tables.md`). */
  dir: string;
  /** Records and tables root (default `results/<budget>`). */
  results?: string;
  data: { name: string; root: string };
  backend: string;
  threads: number;
  /** Matmul precision instead of the budget's (`auto` | `fp32` | `bf16`). */
  precision?: string;
  /** Only these run ids (default all). */
  only?: string[];
  /** These seeds for every selected run instead of each run's own. */
  seeds?: number[];
  /** The command line, for the records' provenance. */
  command?: string;
  /** Write the PNG figures (default true). */
  figures?: boolean;
  quiet?: boolean;
}

/** Everything measured for one run and seed (this invocation's `results.json`). */
export interface RunResult {
  id: string;
  seed: number;
  runDir: string;
  method: string;
  strategy: string;
  maskRatio: number;
  throwRatio: number;
  /** Wall-clock pre-training seconds (epoch times, saliency included). */
  pretrainSeconds: number;
  saliencySeconds: number;
  /** Counted training FLOPs (saliency passes included). */
  flops: number;
  finalLoss: number | null;
  /** Accuracies in [0, 1]. */
  linprobe: number | null;
  knn: number | null;
  finetune: number | null;
  /** Share of CLS attention on the object (Fashion-MNIST: non-background pixels). */
  attentionOnObject: number | null;
  objectArea: number | null;
}

/** What one repro invocation did (`<dir>/results.json`). */
export interface ReproResults {
  budget: ReproBudget;
  data: { name: string; root: string };
  /** This invocation's runs. */
  runs: RunResult[];
  backend: string;
  seconds: number;
  /** True while runs of this invocation are still missing (written after each run). */
  partial: boolean;
  /** Where the records and merged tables went. */
  results: string;
}

function legacyResult(r: ReproRecord, runDir: string): RunResult {
  const frac = (v: number | null) => (v === null ? null : v / 100);
  return {
    id: r.id,
    seed: r.seed,
    runDir,
    method: r.method,
    strategy: r.strategy,
    maskRatio: r.maskRatio,
    throwRatio: r.throwRatio,
    pretrainSeconds: r.pretrainSeconds,
    saliencySeconds: r.saliencySeconds,
    flops: r.flops,
    finalLoss: r.finalLoss,
    linprobe: frac(r.linear),
    knn: frac(r.knn),
    finetune: frac(r.finetune),
    attentionOnObject: r.attnOnObject,
    objectArea: r.objectArea,
  };
}

/** Pre-train (or resume) one run and evaluate it; false when pre-training was interrupted. */
async function trainAndEvaluate(
  run: ReproRun,
  seed: number,
  budget: ReproBudget,
  o: ReproOptions,
  runDir: string,
): Promise<boolean> {
  const { config } = resolveConfig({ argv: runArgs(run, seed, budget, o, runDir) });
  const trained = await pretrain(config, { quiet: o.quiet });
  if (trained.interrupted) return false;
  const common = { runDir, backend: o.backend, threads: o.threads, quiet: o.quiet };
  if (isProbed(run, budget)) {
    await runLinearProbe({
      ...common,
      epochs: budget.probeEpochs,
      trainLimit: budget.probeTrain,
      testLimit: budget.probeTest,
      baseLr: budget.probeBaseLr,
      batchSize: budget.probeBatchSize,
      warmupEpochs: budget.probeWarmup,
    });
  }
  if (isFinetuned(run, budget)) {
    await runFinetune({
      ...common,
      epochs: budget.finetuneEpochs,
      limit: budget.finetuneTrain,
      testLimit: budget.finetuneTest,
      baseLr: budget.finetuneBaseLr,
    });
  }
  const objPath = `${runDir}/eval/attention_on_object.json`;
  if (!(await Deno.stat(objPath).then(() => true, () => false))) {
    const loaded = await loadRun(runDir);
    try {
      const split = labelledSplits(loaded.config.data.name).test;
      // the run's own normalisation when it has one (imported weights), as the probe uses
      const data = { ...loaded.config.data, ...loaded.normalization };
      const test = await openEvalSplit(data, split, budget.objectImages);
      try {
        const a = await attentionOnObject(loaded.model.encoder, test, {
          imageSize: loaded.info.imageSize,
          limit: budget.objectImages,
        });
        await writeFileAtomic(
          objPath,
          JSON.stringify({
            mean: a.mean,
            areaFraction: a.areaFraction,
            images: a.perImage.length,
          }) + "\n",
        );
      } finally {
        test.close?.();
      }
    } finally {
      loaded.model.dispose();
    }
  }
  return true;
}

/** Run (or resume) the selected part of the reproduction; write records and tables. */
export async function runRepro(o: ReproOptions): Promise<ReproResults> {
  const t0 = performance.now();
  const budget = budgetOf(o.budget);
  const log = o.quiet ? () => {} : (s: string) => console.log(s);
  const resultsDir = o.results ?? `results/${budget.name}`;
  const command = o.command ?? ["deno", "task", "repro", ...Deno.args].join(" ");
  const todo = planTodo(reproRuns(budget), { only: o.only, seeds: o.seeds });
  await Deno.mkdir(o.dir, { recursive: true });
  const done: RunResult[] = [];
  let partial = true;
  const write = async (): Promise<RebuildSummary> => {
    const merged = await rebuildResults({
      budget,
      resultsDir,
      runDir: o.dir,
      dataName: o.data.name,
      figures: o.figures,
      log,
      logUnfinished: false,
    });
    let backend = o.backend;
    try {
      const info = JSON.parse(await Deno.readTextFile(`${done[0].runDir}/run.json`));
      backend = `${info.backend} (${info.threads} thread${info.threads === 1 ? "" : "s"})`;
    } catch {
      // keep the requested name
    }
    const out: ReproResults = {
      budget,
      data: o.data,
      runs: done,
      backend,
      seconds: (performance.now() - t0) / 1000,
      partial,
      results: resultsDir,
    };
    await writeFileAtomic(`${o.dir}/results.json`, JSON.stringify(out, null, 2) + "\n");
    await Deno.copyFile(`${resultsDir}/tables.md`, `${o.dir}/tables.md`);
    return merged;
  };
  for (const [i, { run, seed }] of todo.entries()) {
    const runDir = `${o.dir}/runs/${run.id}-s${seed}`;
    log(`\n[${i + 1}/${todo.length}] ${run.id} seed ${seed} → ${runDir}`);
    if (run.kind === "random-init") {
      const { config } = resolveConfig({ argv: runArgs(run, seed, budget, o, runDir) });
      await probeRandomInit({ ...o, runDir, config, budget, command });
    } else if (!(await trainAndEvaluate(run, seed, budget, o, runDir))) {
      log(`interrupted; run the same command again to continue`);
      await write();
      return JSON.parse(await Deno.readTextFile(`${o.dir}/results.json`));
    }
    const rec = await recordFromRunFolder(runDir, run, seed, budget, { command });
    if (typeof rec === "string") throw new Error(`${runDir}: ${rec} after its evaluation`);
    log(`record: ${await writeRecord(resultsDir, rec)}`);
    done.push(legacyResult(rec, runDir));
    partial = i + 1 < todo.length;
    // tables so far, so an interrupted (or still running) repro already shows its numbers
    await write();
  }
  log(`\nrepro done: ${resultsDir}/tables.md (records in ${resultsDir}/records)`);
  return JSON.parse(await Deno.readTextFile(`${o.dir}/results.json`));
}
