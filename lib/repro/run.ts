/**
 * `deno task repro`: train every run of the paper's Tables 1, 2 and 4 once,
 * evaluate them, and write the tables next to the paper's numbers.
 *
 * Everything is resumable: finished pre-training runs and evaluations are
 * skipped, an unfinished one resumes from its checkpoint.
 *
 * @module
 */
import { resolveConfig } from "../config/mod.ts";
import { labelledSplits, openEvalSplit } from "../eval/data.ts";
import { attentionOnObject } from "../eval/attention.ts";
import { runFinetune } from "../eval/finetune_run.ts";
import { runLinearProbe } from "../eval/linprobe_run.ts";
import { mimTrainFlops, saliencyFlops } from "../mim/flops.ts";
import { loadRun } from "../train/load_run.ts";
import { readMetrics } from "../train/metrics.ts";
import { pretrain } from "../train/pretrain.ts";
import { writeFileAtomic } from "../util/fs.ts";
import { BUDGETS, type ReproBudget, type ReproRun, reproRuns } from "./plan.ts";
import { writeReproFigures, writeTables } from "./tables.ts";

/** Options of {@link runRepro}. */
export interface ReproOptions {
  budget: string;
  /** Output folder (tables, figures, runs/). */
  dir: string;
  data: { name: string; root: string };
  backend: string;
  threads: number;
  /** Only these run ids (default all). */
  only?: string[];
  quiet?: boolean;
}

/** Everything measured for one run and seed. */
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
  finalLoss: number;
  linprobe: number | null;
  knn: number | null;
  finetune: number | null;
  /** Share of CLS attention on the object (Fashion-MNIST: non-background pixels). */
  attentionOnObject: number | null;
  objectArea: number | null;
}

/** All results of a repro invocation. */
export interface ReproResults {
  budget: ReproBudget;
  data: { name: string; root: string };
  runs: RunResult[];
  backend: string;
  seconds: number;
  /** True while runs are still missing (tables written after each run). */
  partial: boolean;
}

function runArgs(
  run: ReproRun,
  seed: number,
  b: ReproBudget,
  o: ReproOptions,
  dir: string,
): string[] {
  const base = run.method === "mae" ? "configs/mae.yaml" : "configs/simmim.yaml";
  const args = [
    "--config",
    base,
    `--data.name=${o.data.name}`,
    `--data.root=${o.data.root}`,
    `--data.limit=${b.limit}`,
    `--model.preset=${b.preset}`,
    `--train.epochs=${run.method === "mae" ? b.epochs : b.simmimEpochs}`,
    `--train.batchSize=${b.batchSize}`,
    `--train.warmupEpochs=${Math.min(1, b.epochs / 4)}`,
    `--run.seed=${seed}`,
    `--run.dir=${dir}`,
    `--run.backend=${o.backend}`,
    `--run.threads=${o.threads}`,
    `--run.name=${run.id}`,
    `--train.logEvery=20`,
    "--eval.knnEvery=0", // evaluated after pre-training instead
  ];
  if (run.strategy === "none") {
    args.push(`--mim.maskRatio=${run.maskRatio}`, "--amt.strategy=none");
  } else {
    args.push(
      `--amt.strategy=${run.strategy}`,
      `--amt.maskRatio=${run.maskRatio}`,
      `--amt.throwRatio=${run.throwRatio}`,
      `--amt.warmup=${b.warmup}`,
      `--amt.interval=${b.interval}`,
      `--amt.counting=${run.method === "mae" ? "floor" : "ceil"}`,
    );
  }
  return args;
}

/** Counted FLOPs of a finished run, from its metrics (plan sizes per epoch) and shape. */
async function countedFlops(runDir: string): Promise<number> {
  const loaded = await loadRun(runDir);
  const shape = loaded.model.encoder.shape;
  const method = loaded.config.mim.method;
  loaded.model.dispose();
  const epochs = (await readMetrics(`${runDir}/metrics.jsonl`)).filter((r) => r.type === "epoch");
  const imagesPerEpoch = loaded.info.stepsPerEpoch * loaded.config.train.batchSize;
  let flops = 0;
  for (const e of epochs) {
    const plan = {
      masked: e.masked as number,
      thrown: e.thrown as number,
      visible: e.visible as number,
    };
    flops += imagesPerEpoch * mimTrainFlops(method, shape, plan);
    if (typeof e.saliencySeconds === "number") flops += loaded.info.images * saliencyFlops(shape);
  }
  return flops;
}

/** Run (or resume) the whole reproduction and write its tables and figures. */
export async function runRepro(o: ReproOptions): Promise<ReproResults> {
  const t0 = performance.now();
  const budget = BUDGETS[o.budget];
  if (!budget) {
    throw new RangeError(
      `--budget=${o.budget}: unknown; valid: ${Object.keys(BUDGETS).join(", ")}`,
    );
  }
  const log = o.quiet ? () => {} : (s: string) => console.log(s);
  const runs = reproRuns(budget).filter((r) => !o.only || o.only.includes(r.id));
  if (runs.length === 0) throw new RangeError(`--only=${o.only}: matches no run id`);
  await Deno.mkdir(o.dir, { recursive: true });
  const results: RunResult[] = [];
  const todo = runs.flatMap((r) => r.seeds.map((seed) => ({ run: r, seed })));
  for (const [i, { run, seed }] of todo.entries()) {
    const runDir = `${o.dir}/runs/${run.id}-s${seed}`;
    log(`\n[${i + 1}/${todo.length}] ${run.id} seed ${seed} → ${runDir}`);
    const { config } = resolveConfig({ argv: runArgs(run, seed, budget, o, runDir) });
    await pretrain(config, { quiet: o.quiet });
    const summary = JSON.parse(await Deno.readTextFile(`${runDir}/summary.json`));
    const common = { runDir, backend: o.backend, threads: o.threads, quiet: o.quiet };
    let linprobe: number | null = null, knn: number | null = null;
    if (run.method === "mae") {
      const lp = await runLinearProbe({
        ...common,
        epochs: budget.probeEpochs,
        trainLimit: budget.probeTrain,
        testLimit: budget.probeTest,
      });
      linprobe = lp.result.top1;
      knn = lp.result.knnTop1;
    }
    const ft = await runFinetune({
      ...common,
      epochs: budget.finetuneEpochs,
      limit: budget.finetuneTrain,
      testLimit: budget.finetuneTest,
      baseLr: budget.finetuneBaseLr,
    });
    let attention: number | null = null, area: number | null = null;
    const objPath = `${runDir}/eval/attention_on_object.json`;
    try {
      const saved = JSON.parse(await Deno.readTextFile(objPath));
      attention = saved.mean;
      area = saved.areaFraction;
    } catch {
      const loaded = await loadRun(runDir);
      try {
        const split = labelledSplits(loaded.config.data.name).test;
        const test = await openEvalSplit(loaded.config.data, split, budget.objectImages);
        const a = await attentionOnObject(loaded.model.encoder, test, {
          imageSize: loaded.info.imageSize,
          limit: budget.objectImages,
        });
        attention = a.mean;
        area = a.areaFraction;
        await writeFileAtomic(
          objPath,
          JSON.stringify({
            mean: a.mean,
            areaFraction: a.areaFraction,
            images: a.perImage.length,
          }) + "\n",
        );
      } finally {
        loaded.model.dispose();
      }
    }
    results.push({
      id: run.id,
      seed,
      runDir,
      method: run.method,
      strategy: run.strategy,
      maskRatio: run.maskRatio,
      throwRatio: run.throwRatio,
      pretrainSeconds: summary.pretrainSeconds,
      saliencySeconds: summary.saliencySeconds,
      flops: await countedFlops(runDir),
      finalLoss: summary.finalLoss,
      linprobe,
      knn,
      finetune: ft.result.top1,
      attentionOnObject: attention,
      objectArea: area,
    });
    // tables so far, so an interrupted (or still running) repro already shows its numbers
    await writeOutputs(o, budget, results, (performance.now() - t0) / 1000, i + 1 < todo.length);
  }
  const out = await writeOutputs(o, budget, results, (performance.now() - t0) / 1000, false);
  log(`\nrepro done: ${o.dir}/tables.md`);
  return out;
}

async function writeOutputs(
  o: ReproOptions,
  budget: ReproBudget,
  results: RunResult[],
  seconds: number,
  partial: boolean,
): Promise<ReproResults> {
  let backend = o.backend;
  try {
    const info = JSON.parse(await Deno.readTextFile(`${results[0].runDir}/run.json`));
    backend = `${info.backend} (${info.threads} thread${info.threads === 1 ? "" : "s"})`;
  } catch {
    // keep the requested name
  }
  const out: ReproResults = {
    budget,
    data: o.data,
    runs: results,
    backend,
    seconds,
    partial,
  };
  await writeFileAtomic(`${o.dir}/results.json`, JSON.stringify(out, null, 2) + "\n");
  await writeTables(o.dir, out);
  await writeReproFigures(o.dir, out);
  return out;
}
