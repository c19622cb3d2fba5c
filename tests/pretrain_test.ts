import assert from "node:assert/strict";
import { resolveConfig } from "../lib/config/mod.ts";
import { TINY_MODEL_ARGS } from "./_tiny.ts";
import { pretrain } from "../lib/pretrain/mod.ts";
import { defaultRunDir, readMetrics } from "../lib/run/mod.ts";
import type { Dataset, Item } from "../lib/data/types.ts";

/** A tiny, fast experiment on the synthetic set (cpu backend, deterministic). */
function tinyArgs(dir: string, extra: string[] = []): string[] {
  return [
    ...TINY_MODEL_ARGS,
    "--data.limit=64",
    "--train.epochs=2",
    "--train.baseLr=1e-3",
    "--train.logEvery=1",
    "--train.ckptEvery=0",
    "--run.vizImages=2",
    `--run.dir=${dir}`,
    ...extra,
  ];
}

async function exists(p: string): Promise<boolean> {
  try {
    await Deno.stat(p);
    return true;
  } catch {
    return false;
  }
}

Deno.test("pretrain() writes a complete run folder with a falling loss", async () => {
  const dir = await Deno.makeTempDir();
  const { config } = resolveConfig({
    argv: tinyArgs(dir, ["--train.epochs=4", "--eval.knnEvery=2"]),
  });
  const r = await pretrain(config, { quiet: true });
  const epochs = (await readMetrics(`${dir}/metrics.jsonl`)).filter((m) => m.type === "epoch");
  assert.deepEqual(epochs.map((e) => typeof e.knnTop1), [
    "undefined",
    "number",
    "undefined",
    "number",
  ]);
  const share = epochs[1].attnOnObject as number;
  assert.ok(share > 0 && share < 1, `attention on object ${share}`);
  assert.ok(await exists(`${dir}/plots/knn.png`));
  assert.equal(r.steps, 16);
  for (
    const f of [
      "config.json",
      "run.json",
      "metrics.jsonl",
      "summary.json",
      "checkpoints/checkpoint.ckpt",
      "plots/loss.png",
      "plots/reconstruction.png",
      "plots/reconstruction_epoch04.png",
    ]
  ) {
    assert.ok(await exists(`${dir}/${f}`), `missing ${f}`);
  }
  const steps = (await readMetrics(`${dir}/metrics.jsonl`)).filter((m) => m.type === "step");
  assert.equal(steps.length, 16);
  for (const key of ["epoch", "step", "loss", "lr", "imagesPerSec"]) {
    assert.ok(key in steps[0], key);
  }
  const first = (steps[0].loss as number + (steps[1].loss as number)) / 2;
  const last = (steps[14].loss as number + (steps[15].loss as number)) / 2;
  assert.ok(last < first, `loss did not fall: ${first} -> ${last}`);
  const run = JSON.parse(await Deno.readTextFile(`${dir}/run.json`));
  assert.equal(run.backend, "cpu");
  assert.ok(run.threads >= 1);
  assert.equal(run.matmul, null, "the cpu backend has no native matmul to record");
});

Deno.test("pretrain() resumed after a stop ends exactly where an uninterrupted run ends", async () => {
  const straightDir = await Deno.makeTempDir();
  const straight: number[] = [];
  const cfgA = resolveConfig({ argv: tinyArgs(straightDir) }).config;
  await pretrain(cfgA, { quiet: true, figures: false, onStep: (_s, l) => straight.push(l) });

  const dir = await Deno.makeTempDir();
  const resumed: number[] = [];
  const cfgB = resolveConfig({ argv: tinyArgs(dir) }).config;
  const half = await pretrain(cfgB, {
    quiet: true,
    figures: false,
    stopAfterSteps: 3,
    onStep: (_s, l) => resumed.push(l),
  });
  assert.equal(half.interrupted, true);
  assert.equal(half.steps, 3);
  const rest = await pretrain(cfgB, {
    quiet: true,
    figures: false,
    onStep: (_s, l) => resumed.push(l),
  });
  assert.equal(rest.interrupted, false);
  assert.equal(resumed.length, straight.length);
  for (let i = 0; i < straight.length; i++) {
    assert.ok(
      Math.abs(resumed[i] - straight[i]) <= 1e-5 * Math.abs(straight[i]),
      `step ${i + 1}: ${resumed[i]} vs ${straight[i]}`,
    );
  }
  // metrics.jsonl holds each step once
  const steps = (await readMetrics(`${dir}/metrics.jsonl`)).filter((m) => m.type === "step").map((
    m,
  ) => m.step);
  assert.deepEqual(steps, Array.from({ length: straight.length }, (_, i) => i + 1));
});

Deno.test("pretrain() with AMT: warm-up then AMT phases, saliency figure, and exact resume inside the AMT phase", async () => {
  const amt = [
    "--amt.strategy=amt",
    "--amt.maskRatio=0.45",
    "--amt.throwRatio=0.4",
    "--amt.warmup=1",
    "--amt.interval=1",
    "--amt.batchSize=32",
    "--train.epochs=3",
  ];
  const straightDir = await Deno.makeTempDir();
  const straight: number[] = [];
  await pretrain(resolveConfig({ argv: tinyArgs(straightDir, amt) }).config, {
    quiet: true,
    onStep: (_s, l) => straight.push(l),
  });
  const epochs = (await readMetrics(`${straightDir}/metrics.jsonl`)).filter((m) =>
    m.type === "epoch"
  );
  assert.deepEqual(epochs.map((e) => e.phase), ["warmup", "amt", "amt"]);
  assert.deepEqual(epochs.map((e) => e.thrown), [0, 6, 6]); // 16 patches: floor(7.2) masked, floor(13.6) - 7 thrown
  assert.deepEqual(epochs.map((e) => e.masked), [12, 7, 7]);
  assert.ok(typeof epochs[0].saliencySeconds === "number");
  assert.ok(await exists(`${straightDir}/plots/saliency_epoch01.png`));
  const summary = JSON.parse(await Deno.readTextFile(`${straightDir}/summary.json`));
  assert.ok(summary.saliencySeconds > 0);
  assert.ok(summary.saliencyShare > 0 && summary.saliencyShare < 1);

  const dir = await Deno.makeTempDir();
  const cfg = resolveConfig({ argv: tinyArgs(dir, amt) }).config;
  const resumed: number[] = [];
  await pretrain(cfg, {
    quiet: true,
    figures: false,
    stopAfterSteps: 6,
    onStep: (_s, l) => resumed.push(l),
  });
  await pretrain(cfg, { quiet: true, figures: false, onStep: (_s, l) => resumed.push(l) });
  assert.equal(resumed.length, straight.length);
  for (let i = 0; i < straight.length; i++) {
    assert.ok(
      Math.abs(resumed[i] - straight[i]) <= 1e-5 * Math.abs(straight[i]),
      `step ${i + 1}: ${resumed[i]} vs ${straight[i]}`,
    );
  }
  const phases = (await readMetrics(`${dir}/metrics.jsonl`)).filter((m) => m.type === "epoch").map((
    m,
  ) => m.phase);
  assert.deepEqual(phases.slice(-1), ["amt"]);
});

Deno.test("pretrain() stops on a non-finite loss with a clear message and keeps the last good checkpoint", async () => {
  const dir = await Deno.makeTempDir();
  let calls = 0;
  const ds: Dataset = {
    name: "nan-after-two-batches",
    length: 64,
    channels: 3,
    numClasses: 0,
    mean: [0, 0, 0],
    std: [1, 1, 1],
    get(i: number): Promise<Item> {
      const v = calls++ < 32 ? (i % 7) / 7 : NaN; // batches 1-2 finite, then NaN
      const data = new Float32Array(16 * 16 * 3).map((_, k) => (k % 5) * v);
      return Promise.resolve({
        image: { data, height: 16, width: 16, channels: 3 },
        label: 0,
        index: i,
      });
    },
  };
  const { config } = resolveConfig({
    argv: tinyArgs(dir, ["--train.epochs=4", "--train.ckptEvery=1"]),
  });
  await assert.rejects(
    () => pretrain(config, { quiet: true, dataset: ds, figures: false }),
    /loss is NaN at step 3 .*last good checkpoint/s,
  );
  const diag = JSON.parse(await Deno.readTextFile(`${dir}/diagnostic.json`));
  assert.equal(diag.step, 3);
  assert.equal(diag.loss, "NaN");
  assert.ok(Array.isArray(diag.nonFiniteParams) && diag.nonFiniteParams.length > 0);
  const { loadCheckpoint } = await import("../lib/run/mod.ts");
  const kept = await loadCheckpoint(`${dir}/checkpoints/checkpoint.ckpt`);
  assert.equal(kept?.ckpt.meta.globalStep, 2);
});

Deno.test("defaultRunDir() is stable for the same settings and differs when the computation differs", () => {
  const dir = (argv: string[]) => defaultRunDir(resolveConfig({ argv }).config);
  const base = ["--config", "configs/mae_amt.yaml"];
  assert.equal(dir(base), dir(base));
  assert.match(dir(base), /^runs\/mae-amt\/[0-9a-f]{8}$/);
  assert.equal(dir([...base, "--train.logEvery=3", "--run.backend=cpu"]), dir(base));
  assert.notEqual(dir([...base, "--amt.maskRatio=0.5"]), dir(base));
  assert.notEqual(dir([...base, "--train.epochs=3"]), dir(base));
});
