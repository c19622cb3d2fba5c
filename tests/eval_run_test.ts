import assert from "node:assert/strict";
import { tf } from "./_tf.ts";
import { resolveConfig } from "../lib/config/mod.ts";
import { pretrain } from "../lib/train/pretrain.ts";
import { loadRun } from "../lib/train/load_run.ts";
import { readMetrics } from "../lib/train/metrics.ts";
import { runFinetune, runKnn, runLinearProbe } from "../lib/eval/mod.ts";

import { TINY_MODEL_ARGS } from "./_tiny.ts";

/** A tiny pre-training run folder on synthetic 16 px images (cpu backend). */
async function tinyRun(): Promise<string> {
  const dir = await Deno.makeTempDir();
  const { config } = resolveConfig({
    argv: [
      ...TINY_MODEL_ARGS,
      "--data.limit=64",
      "--train.epochs=1",
      "--train.baseLr=1e-3",
      "--train.ckptEvery=0",
      `--run.dir=${dir}`,
    ],
  });
  await pretrain(config, { quiet: true, figures: false });
  return dir;
}

async function exists(p: string): Promise<boolean> {
  try {
    await Deno.stat(p);
    return true;
  } catch {
    return false;
  }
}

const run = await tinyRun();

Deno.test("runLinearProbe() writes an evaluation folder, caches features and is idempotent", async () => {
  const opts = {
    runDir: run,
    epochs: 3,
    batchSize: 16,
    trainLimit: 64,
    testLimit: 32,
    quiet: true,
  };
  const first = await runLinearProbe(opts);
  assert.equal(first.skipped, false);
  assert.equal(first.outDir, `${run}/linprobe`);
  const r = first.result;
  assert.ok(r.top1 >= 0 && r.top1 <= 1);
  assert.ok(r.knnTop1 !== null && r.knnTop1 >= 0 && r.knnTop1 <= 1);
  assert.equal(r.ckptStep, 4);
  assert.equal(r.trainImages, 64);
  assert.equal(r.testImages, 32);
  assert.equal(r.numClasses, 3);
  assert.equal(r.featuresCached, false);
  for (const f of ["metrics.jsonl", "result.json", "accuracy.png", "loss.png", "confusion.png"]) {
    assert.ok(await exists(`${run}/linprobe/${f}`), `missing ${f}`);
  }
  assert.ok(await exists(`${run}/eval/features_train_n64_step4.bin`));
  assert.ok(await exists(`${run}/eval/features_test_n32_step4.bin`));
  const epochs = await readMetrics(`${run}/linprobe/metrics.jsonl`);
  assert.deepEqual(epochs.map((m) => m.epoch), [1, 2, 3]);
  assert.ok(epochs.every((m) => typeof m.loss === "number" && typeof m.testTop1 === "number"));

  const again = await runLinearProbe(opts);
  assert.equal(again.skipped, true);
  assert.equal(again.result.top1, r.top1);

  const forced = await runLinearProbe({ ...opts, force: true, figures: false });
  assert.equal(forced.skipped, false);
  assert.equal(forced.result.featuresCached, true);
  assert.equal(forced.result.top1, r.top1, "same seed, same features: same result");
  assert.equal((await readMetrics(`${run}/linprobe/metrics.jsonl`)).length, 3, "metrics restarted");
});

Deno.test("runKnn() scores the cached features into <run>/knn", async () => {
  const r = await runKnn({
    runDir: run,
    k: 5,
    trainLimit: 64,
    testLimit: 32,
    quiet: true,
    figures: false,
  });
  assert.equal(r.outDir, `${run}/knn`);
  assert.ok(r.result.top1 >= 0 && r.result.top1 <= 1);
  assert.equal(r.result.k, 5);
  assert.ok(await exists(`${run}/knn/result.json`));
});

Deno.test("runFinetune() from the checkpoint and from random init, without leaking tensors", async () => {
  const opts = {
    runDir: run,
    epochs: 1,
    batchSize: 16,
    limit: 32,
    testLimit: 16,
    quiet: true,
    figures: false,
  };
  // loading a run may itself leave tensors behind (not this module's): count that first
  let before = tf.memory().numTensors;
  (await loadRun(run)).model.dispose();
  const loadLeak = tf.memory().numTensors - before;
  before = tf.memory().numTensors;
  const pre = await runFinetune(opts);
  assert.equal(tf.memory().numTensors - before, loadLeak, "tensors leaked beyond loadRun's");
  assert.equal(pre.outDir, `${run}/finetune`);
  assert.equal(pre.result.init, "pretrained");
  assert.equal(pre.result.layerDecay, 0.75);
  assert.equal(pre.result.ckptStep, 4);
  assert.equal(pre.result.history.length, 1);
  assert.ok(await exists(`${run}/finetune/result.json`));
  const steps = (await readMetrics(`${run}/finetune/metrics.jsonl`)).filter((m) =>
    m.type === "step"
  );
  assert.equal(steps[steps.length - 1].step, 2);

  const scratch = await runFinetune({ ...opts, init: "random" });
  assert.equal(scratch.outDir, `${run}/finetune-random`);
  assert.equal(scratch.result.init, "random");
  assert.equal(scratch.result.ckptStep, 0);

  assert.equal((await runFinetune(opts)).skipped, true);
  // a changed recipe (more images, another base lr) is not answered from the old result
  const more = await runFinetune({ ...opts, limit: 48 });
  assert.equal(more.skipped, false);
  assert.equal(more.result.trainImages, 48);
  const lr = await runFinetune({ ...opts, limit: 48, baseLr: 2e-3 });
  assert.equal(lr.skipped, false);
  assert.equal(lr.result.baseLr, 2e-3);
  assert.equal((await runFinetune({ ...opts, limit: 48, baseLr: 2e-3 })).skipped, true);
});
