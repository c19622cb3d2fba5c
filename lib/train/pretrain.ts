/**
 * The pre-training loop: data → mask plan → MIM loss → AdamW, with run folders,
 * logging, figures, atomic checkpoints and exact resume.
 *
 * Randomness is counter-based (`makeRng(seed, kind, epoch, step)`), so a resumed
 * run draws the same data order, crops and masks as an uninterrupted one.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { initBackend } from "../backend/mod.ts";
import { createHash } from "node:crypto";
import {
  checkResumable,
  flattenConfig,
  loadSavedConfig,
  RESUMABLE_KEYS,
  saveConfig,
} from "../config/mod.ts";
import type { Config } from "../config/schema.ts";
import { type Batch, type Dataset, loadBatch, openDataset } from "../data/mod.ts";
import type { MaskPlanner } from "../mim/plan.ts";
import type { MimModel } from "../mim/types.ts";
import { patchify } from "../vit/patch.ts";
import { hashKeys, makeRng, permutation } from "../util/rng.ts";
import { writeFileAtomic } from "../util/fs.ts";
import { AdamW } from "./adamw.ts";
import { type CheckpointData, loadCheckpoint, saveCheckpoint } from "./checkpoint.ts";
import { appendMetrics, type MetricRecord, readMetrics, truncateMetrics } from "./metrics.ts";
import { formatDuration, Progress } from "./progress.ts";
import { lrAt, peakLr } from "./schedule.ts";
import { buildModel, buildPlanner, modelImageSize } from "./factory.ts";
import { makeKnnMonitor } from "../eval/knn.ts";
import { attentionOnObject } from "../eval/attention.ts";
import { writeRunFigures } from "./figures.ts";

/** Options of {@link pretrain} besides the config. */
export interface PretrainOptions {
  /** Print nothing but errors. */
  quiet?: boolean;
  /** Called with each step's loss when `train.logEvery` is 1 (tests). */
  onStep?: (step: number, loss: number) => void;
  /** Stop cleanly after this many steps in this invocation (tests of resume). */
  stopAfterSteps?: number;
  /** Skip figures (tests). */
  figures?: boolean;
  /** Already-open dataset (tests, notebooks). */
  dataset?: Dataset;
}

/** What a finished (or stopped) run reports. */
export interface PretrainResult {
  runDir: string;
  epochsDone: number;
  steps: number;
  finalLoss: number;
  firstLoss: number;
  seconds: number;
  /** True when the run stopped before its last epoch (signal or stopAfterSteps). */
  interrupted: boolean;
}

/**
 * Default run folder: `runs/<run.name>/<hash>`, where the hash covers every
 * key that changes what the run computes. The same command therefore lands in
 * the same folder (and resumes it); different settings get their own folder.
 */
export function defaultRunDir(config: Readonly<Config>): string {
  const flat = flattenConfig(config);
  // train.epochs shapes the lr schedule, so it names a different run even though an
  // explicit --run.dir may extend a run with it
  const keyed = Object.keys(flat).filter((k) => k === "train.epochs" || !RESUMABLE_KEYS.includes(k))
    .sort()
    .map((k) => `${k}=${JSON.stringify(flat[k])}`).join("\n");
  const hash = createHash("sha256").update(keyed).digest("hex").slice(0, 8);
  return `runs/${config.run.name}/${hash}`;
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return false;
    throw e;
  }
}

function gatherState(
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

/** Restore model, optimiser and planner state; a shape mismatch names the parameter. */
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
  if (planner?.loadState) {
    const sub = new Map<
      string,
      { shape: number[]; data: Float32Array | Int32Array | Uint8Array }
    >();
    for (const [k, v] of ckpt.arrays) if (k.startsWith("planner/")) sub.set(k.slice(8), v);
    planner.loadState(sub);
  }
}

/** The checkout's commit (with "-dirty" when it has changes), or null outside a git checkout. */
async function gitCommit(): Promise<string | null> {
  try {
    const run = (args: string[]) =>
      new Deno.Command("git", { args, stdout: "piped", stderr: "null" }).output();
    const head = await run(["rev-parse", "HEAD"]);
    if (!head.success) return null;
    const dirty = await run(["status", "--porcelain", "--untracked-files=no"]);
    const id = new TextDecoder().decode(head.stdout).trim();
    return dirty.stdout.length > 0 ? `${id}-dirty` : id;
  } catch {
    return null;
  }
}

/** Names of parameters holding NaN or infinite values. */
async function nonFiniteParams(model: MimModel): Promise<string[]> {
  const out: string[] = [];
  for (const p of model.store.params.values()) {
    const bad = tf.tidy(() => tf.any(tf.logicalNot(tf.isFinite(p.variable))));
    if ((await bad.data())[0]) out.push(p.name);
    bad.dispose();
  }
  return out;
}

/**
 * Pre-train a MIM model as the config says; resumes when `run.dir` holds an
 * unfinished run of the same config.
 */
export async function pretrain(
  config: Readonly<Config>,
  options: PretrainOptions = {},
): Promise<PretrainResult> {
  const log = options.quiet ? () => {} : (s: string) => console.log(s);
  const t0 = performance.now();
  const backend = await initBackend({
    backend: config.run.backend as "auto",
    threads: config.run.threads,
    quiet: options.quiet,
  });
  const ds = options.dataset ?? await openDataset({
    name: config.data.name,
    root: config.data.root,
    split: config.data.split,
    limit: config.data.limit,
    imageSize: config.data.imageSize,
    onBadImage: config.data.onBadImage,
  });
  const imageSize = modelImageSize(config);
  const { train } = config;
  const N = ds.length;
  if (N < train.batchSize) {
    throw new RangeError(
      `train.batchSize ${train.batchSize} is larger than the ${N} training images of ${ds.name}; lower train.batchSize or raise data.limit`,
    );
  }
  const stepsPerEpoch = Math.floor(N / train.batchSize);
  const totalSteps = train.maxSteps > 0
    ? Math.min(train.maxSteps, stepsPerEpoch * train.epochs)
    : stepsPerEpoch * train.epochs;

  // ---- run folder ------------------------------------------------------------------------
  const runDir = config.run.dir || defaultRunDir(config);
  await Deno.mkdir(`${runDir}/checkpoints`, { recursive: true });
  await Deno.mkdir(`${runDir}/plots`, { recursive: true });
  const ckptPath = `${runDir}/checkpoints/checkpoint.ckpt`;
  const metricsPath = `${runDir}/metrics.jsonl`;
  if (await exists(`${runDir}/config.json`)) {
    checkResumable(await loadSavedConfig(runDir), config, runDir);
  }
  await saveConfig(runDir, config);

  // ---- model, optimiser, planner ------------------------------------------------------
  const model = buildModel(config, ds.channels, imageSize);
  const shape = model.encoder.shape;
  const L = model.encoder.numPatches;
  const opt = new AdamW([...model.store.params.values()], {
    beta1: train.beta1,
    beta2: train.beta2,
    eps: 1e-8,
    weightDecay: train.weightDecay,
    clipGrad: train.clipGrad,
  });
  const planner = buildPlanner(config, { model, dataset: ds, imageSize, runDir, log });
  // kNN accuracy and attention on the object over pre-training (eval.knnEvery epochs)
  const monitor = config.eval.knnEvery > 0 && !options.dataset
    ? makeKnnMonitor(config.data, { every: config.eval.knnEvery, k: config.eval.knnK, imageSize })
    : null;
  const lr = peakLr(train.baseLr, train.batchSize, train.lrBatch);

  let globalStep = 0;
  const loaded = await loadCheckpoint(ckptPath);
  if (loaded) {
    restoreState(loaded.ckpt, model, opt, planner, loaded.file);
    globalStep = loaded.ckpt.meta.globalStep as number;
    opt.step = loaded.ckpt.meta.optimizerStep as number;
    if (loaded.warning) console.warn(`warning: ${loaded.warning}`);
    await truncateMetrics(metricsPath, globalStep);
    log(`resuming ${runDir} at step ${globalStep}/${totalSteps}`);
  } else {
    await truncateMetrics(metricsPath, 0);
  }
  if (globalStep >= totalSteps && await exists(`${runDir}/summary.json`)) {
    const summary = JSON.parse(await Deno.readTextFile(`${runDir}/summary.json`));
    log(`${runDir} already finished (${globalStep} steps); nothing to do`);
    opt.dispose();
    model.dispose();
    return {
      runDir,
      epochsDone: Math.floor(globalStep / stepsPerEpoch),
      steps: globalStep,
      finalLoss: summary.finalLoss,
      firstLoss: summary.firstLoss,
      seconds: summary.seconds,
      interrupted: false,
    };
  }
  await Deno.writeTextFile(
    `${runDir}/run.json`,
    JSON.stringify(
      {
        backend: backend.backend,
        threads: backend.threads,
        simd: backend.simd,
        backendNote: backend.note,
        // the native BLAS behind wasm's matmul, or why there is none (wasm only)
        matmul: backend.matmul ?? null,
        dataset: ds.name,
        images: N,
        channels: ds.channels,
        mean: ds.mean,
        std: ds.std,
        imageSize,
        shape,
        parameters: model.store.count(),
        stepsPerEpoch,
        totalSteps,
        deno: Deno.version.deno,
        tfjs: tf.version.tfjs,
        gitCommit: await gitCommit(),
        command: ["deno", ...Deno.args].join(" "),
      },
      null,
      2,
    ) + "\n",
  );
  log(
    `run ${runDir}: ${ds.name} (${N} images, ${imageSize}px), ${config.mim.method} ` +
      `${shape.dim}x${shape.depth} patch ${shape.patchSize}, planner ${planner.name}, ` +
      `${model.store.count().toLocaleString()} params, ${stepsPerEpoch} steps/epoch, ${totalSteps} steps`,
  );

  // ---- signals: finish the step, checkpoint, exit cleanly --------------------------------
  let stopRequested = false;
  const onSignal = () => {
    if (stopRequested) Deno.exit(130);
    stopRequested = true;
    console.error("\nstop requested: finishing the current step and writing a checkpoint...");
  };
  const signals: Deno.Signal[] = Deno.build.os === "windows" ? ["SIGINT"] : ["SIGINT", "SIGTERM"];
  for (const s of signals) Deno.addSignalListener(s, onSignal);

  const progress = new Progress(totalSteps, "pretrain", undefined, options.quiet);
  let pending: { step: number; epoch: number; loss: tf.Scalar; lr: number; phase: string }[] = [];
  let windowStart = performance.now();
  let windowImages = 0;
  let firstLoss = NaN, lastLoss = NaN;
  let epochLossSum = 0, epochLossCount = 0;
  let stepsThisRun = 0;
  let interrupted = false;
  const history = (await readMetrics(metricsPath)).filter((r) => r.type === "step");
  if (history.length > 0) {
    firstLoss = history[0].loss as number;
    lastLoss = history[history.length - 1].loss as number;
  }

  /** Read pending losses (one host sync per log window) and write metrics. */
  const flush = async (planCounts: { masked: number; thrown: number; visible: number }) => {
    if (pending.length === 0) return;
    const values = await Promise.all(pending.map((p) => p.loss.data()));
    const elapsed = (performance.now() - windowStart) / 1000;
    const ips = windowImages / Math.max(elapsed, 1e-9);
    const records: MetricRecord[] = [];
    for (let i = 0; i < pending.length; i++) {
      const p = pending[i];
      const loss = values[i][0];
      p.loss.dispose();
      if (!Number.isFinite(loss)) {
        pending.slice(i + 1).forEach((q) => q.loss.dispose());
        pending = [];
        const nonFinite = await nonFiniteParams(model);
        await writeFileAtomic(
          `${runDir}/diagnostic.json`,
          JSON.stringify(
            {
              loss: String(loss),
              step: p.step,
              epoch: p.epoch,
              lr: p.lr,
              nonFiniteParams: nonFinite,
            },
            null,
            2,
          ) + "\n",
        );
        throw new Error(
          `loss is ${loss} at step ${p.step} (epoch ${p.epoch + 1}, lr ${
            p.lr.toExponential(2)
          }); ` +
            `stopping. ${nonFinite.length} parameter tensor(s) are non-finite now` +
            `${
              nonFinite.length
                ? ` (${nonFinite.slice(0, 3).join(", ")}${nonFinite.length > 3 ? ", ..." : ""})`
                : ""
            }; ` +
            `details in ${runDir}/diagnostic.json. The last good checkpoint is kept in ${ckptPath}. ` +
            `Lower train.baseLr or set train.clipGrad (e.g. 1.0) and resume.`,
        );
      }
      if (Number.isNaN(firstLoss)) firstLoss = loss;
      lastLoss = loss;
      epochLossSum += loss; // the epoch mean comes from the losses read here
      epochLossCount++;
      options.onStep?.(p.step, loss);
      if (train.logEvery === 1 || i === pending.length - 1) {
        const mean = values.slice(0, i + 1).reduce((a, v) => a + v[0], 0) / (i + 1);
        records.push({
          type: "step",
          epoch: p.epoch,
          step: p.step,
          loss: train.logEvery === 1 ? loss : mean,
          lr: p.lr,
          imagesPerSec: ips,
          phase: p.phase,
          ...planCounts,
        });
      }
    }
    await appendMetrics(metricsPath, records);
    const done = pending[pending.length - 1].step;
    const rate = stepsThisRun / ((performance.now() - t0) / 1000);
    progress.update(
      done,
      `epoch ${pending[pending.length - 1].epoch + 1}/${train.epochs} loss ${
        lastLoss.toFixed(4)
      } · ${ips.toFixed(0)} img/s`,
      (totalSteps - done) / Math.max(rate, 1e-9),
    );
    pending = [];
    windowStart = performance.now();
    windowImages = 0;
  };

  const checkpoint = async (
    epoch: number,
    counts: { masked: number; thrown: number; visible: number },
  ) => {
    await flush(counts); // never checkpoint past a non-finite loss
    try {
      await saveCheckpoint(
        ckptPath,
        gatherState(model, opt, planner, {
          globalStep,
          optimizerStep: opt.step,
          epoch,
          stepsPerEpoch,
          seed: config.run.seed,
          method: config.mim.method,
          planner: planner.name,
        }),
      );
    } catch (e) {
      throw new Error(
        `cannot write checkpoint ${ckptPath}: ${(e as Error).message}. Free disk space or fix ` +
          `the folder's permissions, then run the same command again: the previous checkpoint is kept.`,
      );
    }
  };

  let counts = { masked: 0, thrown: 0, visible: 0 };
  let stopNow = false;
  let epoch = Math.floor(globalStep / stepsPerEpoch);
  try {
    for (; epoch < train.epochs && globalStep < totalSteps; epoch++) {
      const epochStart = performance.now();
      const order = permutation(N, makeRng(config.run.seed, "order", epoch));
      const phase = planner.phase(epoch);
      epochLossSum = 0;
      epochLossCount = 0;
      for (
        let s = globalStep - epoch * stepsPerEpoch;
        s < stepsPerEpoch && globalStep < totalSteps;
        s++
      ) {
        const indices = order.subarray(s * train.batchSize, (s + 1) * train.batchSize);
        const batch: Batch = await loadBatch(ds, indices, {
          imageSize,
          augment: true,
          rng: makeRng(config.run.seed, "augment", epoch, s),
          scale: config.data.cropScale,
          ratio: config.data.cropRatio,
          flip: config.data.flip,
        });
        const plan = planner.plan(train.batchSize, L, {
          epoch,
          step: globalStep,
          rng: makeRng(config.run.seed, "mask", epoch, s),
          indices: batch.indices,
          boxes: batch.boxes,
          imageSize,
          patchSize: shape.patchSize,
        });
        counts = { masked: plan.numMasked, thrown: plan.numThrown, visible: plan.numVisible };
        const patchData = patchify(
          batch.images,
          train.batchSize,
          imageSize,
          ds.channels,
          shape.patchSize,
        );
        const patches = tf.tensor2d(patchData, [train.batchSize * L, model.encoder.patchDim]);
        const stepLr = lrAt(epoch + s / stepsPerEpoch, {
          lr,
          minLr: train.minLr,
          warmupEpochs: train.warmupEpochs,
          epochs: train.epochs,
        });
        // stochastic depth (model.dropPath), its draws keyed by (seed, step) so a resume repeats them
        const dp = config.model.dropPath > 0
          ? {
            dropPath: config.model.dropPath,
            seed: hashKeys(config.run.seed, "droppath", globalStep),
          }
          : undefined;
        const { loss, gradNorm } = opt.minimize(() => model.lossFn(patches, plan, dp), stepLr);
        patches.dispose();
        gradNorm.dispose();
        globalStep++;
        stepsThisRun++;
        windowImages += train.batchSize;
        pending.push({ step: globalStep, epoch, loss, lr: stepLr, phase });
        if (pending.length >= train.logEvery) await flush(counts);
        stopNow = stopRequested ||
          (options.stopAfterSteps !== undefined && stepsThisRun >= options.stopAfterSteps);
        // The last step of an epoch is checkpointed after the epoch-end work (saliency
        // updates), so a resume never skips it.
        const lastOfEpoch = s === stepsPerEpoch - 1;
        if (
          !lastOfEpoch && ((train.ckptEvery > 0 && globalStep % train.ckptEvery === 0) || stopNow)
        ) {
          await checkpoint(epoch, counts);
        }
        if (stopNow && !lastOfEpoch) {
          interrupted = true;
          break;
        }
      }
      if (interrupted) break;
      await flush(counts);
      progress.finish();
      const epochDone = globalStep % stepsPerEpoch === 0;
      const extra: Record<string, number | string> = epochDone
        ? { ...(await planner.afterEpoch?.(epoch)) }
        : {};
      if (epochDone && monitor?.due(epoch + 1, train.epochs)) {
        Object.assign(extra, await monitor.measure(model.encoder));
        const object = await attentionOnObject(model.encoder, ds, { imageSize, limit: 256 });
        extra.attnOnObject = object.mean;
        extra.objectArea = object.areaFraction;
        log(
          `  kNN top-1 ${(100 * (extra.knnTop1 as number)).toFixed(1)}%, attention on object ${
            (100 * object.mean).toFixed(1)
          }% (object area ${(100 * object.areaFraction).toFixed(1)}%)`,
        );
      }
      const seconds = (performance.now() - epochStart) / 1000;
      await appendMetrics(metricsPath, [{
        type: "epoch",
        epoch,
        step: globalStep,
        loss: epochLossCount > 0 ? epochLossSum / epochLossCount : null,
        lr: lrAt(epoch + 1, {
          lr,
          minLr: train.minLr,
          warmupEpochs: train.warmupEpochs,
          epochs: train.epochs,
        }),
        seconds,
        imagesPerSec: epochLossCount * train.batchSize / seconds,
        phase,
        ...counts,
        ...extra,
      }]);
      log(
        `epoch ${epoch + 1}/${train.epochs} loss ${
          (epochLossSum / Math.max(epochLossCount, 1)).toFixed(4)
        } ` +
          `(${
            formatDuration(seconds)
          }, phase ${phase}, masked/thrown/visible ${counts.masked}/${counts.thrown}/${counts.visible})`,
      );
      await checkpoint(epoch + 1, counts);
      if (options.figures !== false) {
        await writeRunFigures({ runDir, model, dataset: ds, planner, config, imageSize, epoch });
      }
      if (stopNow && globalStep < totalSteps) {
        interrupted = true;
        break;
      }
    }
  } finally {
    progress.finish();
    for (const s of signals) Deno.removeSignalListener(s, onSignal);
    pending.forEach((p) => p.loss.dispose());
    monitor?.close();
    opt.dispose();
    model.dispose();
  }
  const seconds = (performance.now() - t0) / 1000;
  if (interrupted) {
    log(
      `stopped at step ${globalStep}/${totalSteps}; run the same command again to resume ${runDir}`,
    );
  } else {
    const epochRecords = (await readMetrics(metricsPath)).filter((r) => r.type === "epoch");
    const pretrainSeconds = epochRecords.reduce((a, r) => a + ((r.seconds as number) ?? 0), 0);
    const saliencySeconds = epochRecords.reduce(
      (a, r) => a + ((r.saliencySeconds as number | undefined) ?? 0),
      0,
    );
    await writeFileAtomic(
      `${runDir}/summary.json`,
      JSON.stringify(
        {
          steps: globalStep,
          epochs: epochRecords.length,
          firstLoss,
          finalLoss: lastLoss,
          pretrainSeconds,
          saliencySeconds,
          saliencyShare: pretrainSeconds > 0 ? saliencySeconds / pretrainSeconds : 0,
          seconds: pretrainSeconds,
        },
        null,
        2,
      ) + "\n",
    );
    log(
      `done: ${runDir} (loss ${firstLoss.toFixed(4)} → ${lastLoss.toFixed(4)}, ${
        formatDuration(seconds)
      })`,
    );
  }
  return {
    runDir,
    epochsDone: Math.floor(globalStep / stepsPerEpoch),
    steps: globalStep,
    finalLoss: lastLoss,
    firstLoss,
    seconds,
    interrupted,
  };
}
