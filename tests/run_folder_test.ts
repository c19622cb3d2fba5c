import assert from "node:assert/strict";
import { tf } from "./_tf.ts";
import { resolveConfig } from "../lib/config/mod.ts";
import {
  configHash,
  defaultRunDir,
  evalPaths,
  isFinished,
  MetricsLog,
  NonFiniteLossError,
  type Progress,
  readMetrics,
  readRunInfo,
  readRunSummary,
  type RunInfo,
  runPaths,
  type RunSummary,
  type StepInfo,
  writeRunInfo,
  writeRunSummary,
} from "../lib/run/mod.ts";

Deno.test("runPaths() spells every file and folder of a run folder once", () => {
  const p = runPaths("runs/mae/1a2b3c4d");
  assert.deepEqual(
    {
      lock: p.lock,
      config: p.config,
      run: p.run,
      metrics: p.metrics,
      summary: p.summary,
      diagnostic: p.diagnostic,
      checkpoints: p.checkpoints,
      checkpoint: p.checkpoint,
      checkpointPrev: p.checkpointPrev,
      plots: p.plots,
      eval: p.eval,
      linprobe: p.linprobe,
      finetune: p.finetune,
      finetuneRandom: p.finetuneRandom,
      knn: p.knn,
      plot: p.plot("loss.png"),
    },
    {
      lock: "runs/mae/1a2b3c4d/.lock",
      config: "runs/mae/1a2b3c4d/config.json",
      run: "runs/mae/1a2b3c4d/run.json",
      metrics: "runs/mae/1a2b3c4d/metrics.jsonl",
      summary: "runs/mae/1a2b3c4d/summary.json",
      diagnostic: "runs/mae/1a2b3c4d/diagnostic.json",
      checkpoints: "runs/mae/1a2b3c4d/checkpoints",
      checkpoint: "runs/mae/1a2b3c4d/checkpoints/checkpoint.ckpt",
      checkpointPrev: "runs/mae/1a2b3c4d/checkpoints/checkpoint.ckpt.prev",
      plots: "runs/mae/1a2b3c4d/plots",
      eval: "runs/mae/1a2b3c4d/eval",
      linprobe: "runs/mae/1a2b3c4d/linprobe",
      finetune: "runs/mae/1a2b3c4d/finetune",
      finetuneRandom: "runs/mae/1a2b3c4d/finetune-random",
      knn: "runs/mae/1a2b3c4d/knn",
      plot: "runs/mae/1a2b3c4d/plots/loss.png",
    },
  );
  assert.ok(Object.isFrozen(p));
  const e = evalPaths(p.linprobe);
  assert.equal(e.metrics, "runs/mae/1a2b3c4d/linprobe/metrics.jsonl");
  assert.equal(e.result, "runs/mae/1a2b3c4d/linprobe/result.json");
  assert.equal(e.file("confusion.png"), "runs/mae/1a2b3c4d/linprobe/confusion.png");
});

Deno.test("defaultRunDir() is runs/<run.name>/<configHash()>", () => {
  const { config } = resolveConfig({ argv: ["--config", "configs/mae.yaml"] });
  assert.match(configHash(config), /^[0-9a-f]{8}$/);
  assert.equal(defaultRunDir(config), `runs/${config.run.name}/${configHash(config)}`);
});

const INFO: RunInfo = {
  backend: "cpu",
  threads: 1,
  simd: false,
  backendNote: "",
  matmul: null,
  dataset: "synthetic",
  images: 64,
  channels: 3,
  mean: [0.5, 0.5, 0.5],
  std: [0.25, 0.25, 0.25],
  imageSize: 16,
  parameters: 1234,
  stepsPerEpoch: 4,
  totalSteps: 8,
  deno: "2.0.0",
  tfjs: "4.22.0",
  gitCommit: null,
  command: "deno run -A tasks/pretrain.ts",
};

Deno.test("writeRunInfo()/readRunInfo() round-trip run.json; a missing one names the folder", async () => {
  const dir = await Deno.makeTempDir();
  await writeRunInfo(dir, INFO);
  assert.deepEqual(await readRunInfo(dir), INFO);
  const text = await Deno.readTextFile(runPaths(dir).run);
  assert.equal(text, JSON.stringify(INFO, null, 2) + "\n");
  await assert.rejects(
    () => readRunInfo(`${dir}/none`),
    /none\/run\.json: cannot read it .*is .*none a pre-training run folder\?/,
  );
  for await (const e of Deno.readDir(dir)) assert.ok(!e.name.endsWith(".tmp"), e.name);
});

Deno.test("writeRunSummary()/readRunSummary() round-trip summary.json; isFinished() follows it", async () => {
  const dir = await Deno.makeTempDir();
  assert.equal(await readRunSummary(dir), null);
  assert.equal(await isFinished(dir), false);
  const summary: RunSummary = {
    steps: 8,
    epochs: 2,
    firstLoss: 1.25,
    finalLoss: 0.75,
    pretrainSeconds: 3,
    saliencySeconds: 1,
    saliencyShare: 1 / 3,
    seconds: 3,
  };
  await writeRunSummary(dir, summary);
  assert.deepEqual(await readRunSummary(dir), summary);
  assert.equal(await isFinished(dir), true);
});

type Info = StepInfo & { lr: number };

/** A Progress stand-in that records its updates. */
function fakeBar(): { bar: Progress; updates: [number, string][]; finished: number } {
  const rec = { updates: [] as [number, string][], finished: 0, bar: null as unknown as Progress };
  rec.bar = {
    update: (done: number, status: string) => rec.updates.push([done, status]),
    finish: () => rec.finished++,
  } as unknown as Progress;
  return rec;
}

Deno.test("MetricsLog reads pending losses once per `every` steps and writes one record per window", async () => {
  const dir = await Deno.makeTempDir();
  const path = `${dir}/metrics.jsonl`;
  const before = tf.memory().numTensors;
  const reads = { n: 0 };
  const data = tf.Tensor.prototype.data;
  tf.Tensor.prototype.data = function (this: tf.Tensor) {
    reads.n++;
    return data.call(this);
  } as typeof data;
  const bar = fakeBar();
  const seen: number[] = [];
  const log = new MetricsLog<Info>({
    every: 3,
    path,
    records: (w) => [{ type: "step", step: w.last.info.step, loss: w.mean, lr: w.last.info.lr }],
    onStep: (s) => seen.push(s.info.step),
    progress: { bar: bar.bar, total: 7, status: (w) => `loss ${w.last.loss.toFixed(2)}` },
  });
  const losses = [4, 3, 2, 1, 0.5, 0.25, 0.125];
  const flushedAt: number[] = [];
  try {
    for (const [i, l] of losses.entries()) {
      const w = await log.push(tf.scalar(l), { step: i + 1, lr: 0.1 * (i + 1), images: 2 });
      if (w) flushedAt.push(i + 1);
      // the host reads nothing between flushes
      assert.equal(reads.n, flushedAt.length, `after step ${i + 1}`);
    }
    const tail = await log.flush();
    assert.equal(tail?.steps.length, 1);
    assert.equal(await log.flush(), null);
  } finally {
    tf.Tensor.prototype.data = data;
  }
  assert.deepEqual(flushedAt, [3, 6]);
  assert.equal(reads.n, 3); // one read per window
  assert.deepEqual(seen, [1, 2, 3, 4, 5, 6, 7]);
  const records = await readMetrics(path);
  assert.deepEqual(records.map((r) => r.step), [3, 6, 7]);
  assert.deepEqual(records.map((r) => r.loss), [3, (1 + 0.5 + 0.25) / 3, 0.125]);
  assert.ok(Math.abs((records[1].lr as number) - 0.6) < 1e-12);
  assert.deepEqual(bar.updates, [[3, "loss 2.00"], [6, "loss 0.25"], [7, "loss 0.13"]]);
  assert.equal(log.first, 4);
  assert.equal(log.last, 0.125);
  assert.equal(log.count, 7);
  assert.equal(log.mean, losses.reduce((a, b) => a + b, 0) / 7);
  assert.equal(log.pushed, 7);
  log.resetMean();
  assert.equal(log.count, 0);
  log.dispose();
  assert.equal(bar.finished, 1);
  assert.equal(tf.memory().numTensors, before, "the log disposes every loss it took");
});

Deno.test("MetricsLog keeps every part of a 1-D loss and takes earlier first/last losses", async () => {
  const log = new MetricsLog<Info>({
    every: 2,
    first: 9,
    last: 8,
    records: (w) => w.steps.map((s) => ({ step: s.info.step, loss: s.loss, box: s.values[1] })),
  });
  assert.equal(log.first, 9);
  assert.equal(log.last, 8);
  await log.push(tf.tensor1d([1, 0.5, 0.25]), { step: 1, lr: 0 });
  const w = await log.push(tf.tensor1d([2, 1.5, 0.75]), { step: 2, lr: 0 });
  assert.deepEqual(w?.steps.map((s) => s.values), [[1, 0.5, 0.25], [2, 1.5, 0.75]]);
  assert.equal(w?.sum, 3);
  assert.equal(log.first, 9, "the first loss of the run stays the resumed one");
  assert.equal(log.last, 2);
  log.dispose();
});

Deno.test("MetricsLog stops at a non-finite loss: diagnostic.json, the given message, no records", async () => {
  const dir = await Deno.makeTempDir();
  const paths = runPaths(dir);
  const before = tf.memory().numTensors;
  const log = new MetricsLog<Info>({
    every: 4,
    path: paths.metrics,
    diagnosticPath: paths.diagnostic,
    nonFinite: (bad) => ({
      message: `loss is ${bad.loss} at step ${bad.info.step}; window mean ${bad.windowMean}, ` +
        `last step ${bad.windowLast.step}`,
      diagnostic: { loss: String(bad.loss), step: bad.info.step, lr: bad.info.lr },
    }),
  });
  await log.push(tf.scalar(1), { step: 1, lr: 0.5 });
  await log.push(tf.scalar(NaN), { step: 2, lr: 0.5 });
  await log.push(tf.scalar(2), { step: 3, lr: 0.5 });
  await assert.rejects(
    () => log.push(tf.scalar(Infinity), { step: 4, lr: 0.5 }),
    (e: Error) => {
      assert.ok(e instanceof NonFiniteLossError);
      assert.equal(e.step, 2);
      assert.match(e.message, /^loss is NaN at step 2; window mean NaN, last step 4$/);
      return true;
    },
  );
  assert.deepEqual(JSON.parse(await Deno.readTextFile(paths.diagnostic)), {
    loss: "NaN",
    step: 2,
    lr: 0.5,
  });
  assert.deepEqual(await readMetrics(paths.metrics), []);
  assert.equal(log.first, 1, "steps before the bad one are read");
  log.dispose();
  assert.equal(tf.memory().numTensors, before);

  // without a report: the default message, and no diagnostic file
  const plain = new MetricsLog({ every: 1 });
  await assert.rejects(
    () => plain.push(tf.scalar(-Infinity), { step: 7 }),
    /^.*-Infinity at step 7/,
  );
});
