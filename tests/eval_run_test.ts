import assert from "node:assert/strict";
import { tf } from "./_tf.ts";
import { resolveConfig } from "../lib/config/mod.ts";
import { pretrain } from "../lib/pretrain/mod.ts";
import { loadRun, readMetrics } from "../lib/run/mod.ts";
import {
  decodeFeatureFile,
  featureCachePath,
  knnClassify,
  runFinetune,
  runKnn,
  runLinearProbe,
} from "../lib/eval/mod.ts";
import { readResult, reusableResult, writeJson } from "../lib/eval/_run.ts";

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

/** kNN top-1 straight from the cached features of the 64 train / 32 test images. */
async function cachedKnnTop1(step: number, k: number, T: number): Promise<number> {
  const read = async (split: string, limit: number) => {
    const file = decodeFeatureFile(await Deno.readFile(featureCachePath(run, split, step, limit)));
    assert.ok(file, `no cached ${split} features`);
    return file.set;
  };
  const train = await read("train", 64), test = await read("test", 32);
  return (await knnClassify(train.features, train.labels, test.features, test.labels, { k, T }))
    .top1;
}

/** Rewrite `<dir>/result.json` without its recipe, as results were stored before recipes. */
async function dropRecipe(dir: string): Promise<void> {
  const old = await readResult(dir);
  assert.ok(old && "recipe" in old);
  delete old.recipe;
  await writeJson(`${dir}/result.json`, old);
}

Deno.test("reusableResult() reuses only for the same checkpoint step and recipe, naming what changed", async () => {
  const dir = await Deno.makeTempDir();
  const lines: string[] = [];
  const log = (s: string) => void lines.push(s);
  // 3 / 10 is 0.30000000000000004: numbers must survive the JSON round trip exactly
  const recipe = { epochs: 20, warmupEpochs: 3 / 10, optimizer: "sgd", crop: [0.2, 1], k: null };
  assert.equal(await reusableResult(dir, 4, false, log, recipe), null);
  assert.deepEqual(lines, [], "nothing to say without a result.json");

  await writeJson(`${dir}/result.json`, { top1: 0.5, ckptStep: 4, recipe });
  const same = await reusableResult(dir, 4, false, log, { ...recipe, crop: [0.2, 1] });
  assert.equal(same?.top1, 0.5);
  assert.match(lines.at(-1)!, /result\.json exists for checkpoint step 4 .*top-1 50\.0%/);
  assert.equal(await reusableResult(dir, 4, true, log, recipe), null, "--force recomputes");

  lines.length = 0;
  assert.equal(await reusableResult(dir, 4, false, log, { ...recipe, epochs: 30 }), null);
  assert.deepEqual(lines, [`${dir}: recipe changed (epochs 20 -> 30); running again`]);
  const { optimizer: _, ...noOptimizer } = recipe;
  assert.equal(
    await reusableResult(dir, 4, false, log, { ...noOptimizer, crop: [0.08, 1], k: 5, T: 0.07 }),
    null,
  );
  assert.equal(
    lines.at(-1),
    `${dir}: recipe changed (crop [0.2,1] -> [0.08,1], k null -> 5, T unset -> 0.07, ` +
      `optimizer sgd -> unset); running again`,
  );
  assert.equal(await reusableResult(dir, 8, false, log, recipe), null);
  assert.equal(
    lines.at(-1),
    `${dir}: result.json is for checkpoint step 4, the run is at step 8; running again`,
  );

  await writeJson(`${dir}/result.json`, { top1: 0.5, ckptStep: 4, epochs: 20 });
  assert.equal(await reusableResult(dir, 4, false, log, recipe), null);
  assert.equal(lines.at(-1), `${dir}: result.json records no recipe (older format); running again`);
  await Deno.remove(dir, { recursive: true });
});

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

Deno.test("runLinearProbe() reruns when its recipe changes, kNN k included, and for an old result.json", async () => {
  const out = `${run}/linprobe-recipe`;
  const opts = {
    runDir: run,
    out,
    epochs: 3,
    batchSize: 16,
    trainLimit: 64,
    testLimit: 32,
    quiet: true,
    figures: false,
  };
  const first = await runLinearProbe(opts);
  assert.equal(first.skipped, false);
  const step = first.result.ckptStep;
  assert.equal(first.result.recipe.epochs, 3);
  assert.equal(first.result.recipe.knnK, 20, "the run's eval.knnK");
  assert.deepEqual((await readResult(out))?.recipe, first.result.recipe);
  assert.equal(first.result.knnTop1, await cachedKnnTop1(step, 20, 0.07));

  // the defaults asked for explicitly (and a trust coefficient SGD never reads) are the same recipe
  const explicit = await runLinearProbe({
    ...opts,
    optimizer: "sgd",
    baseLr: 0.1,
    momentum: 0.9,
    weightDecay: 0,
    minLr: 0,
    warmupEpochs: 3 / 10,
    seed: 0,
    featureBatchSize: 128,
    knn: true,
    knnK: 20,
    trustCoefficient: 0.01,
  });
  assert.equal(explicit.skipped, true);
  assert.equal(explicit.result.top1, first.result.top1);

  const longer = await runLinearProbe({ ...opts, epochs: 4 });
  assert.equal(longer.skipped, false, "another epoch count is not answered from the old result");
  assert.equal(longer.result.recipe.epochs, 4);
  assert.equal(longer.result.recipe.warmupEpochs, 0.4);
  assert.equal((await readMetrics(`${out}/metrics.jsonl`)).length, 4);
  assert.equal(((await readResult(out))?.recipe as { epochs: number }).epochs, 4);
  assert.equal((await runLinearProbe({ ...opts, epochs: 4 })).skipped, true);

  // the cached kNN score follows k
  const k1 = await runLinearProbe({ ...opts, epochs: 4, knnK: 1 });
  assert.equal(k1.skipped, false);
  assert.equal(k1.result.recipe.knnK, 1);
  assert.equal(k1.result.knnTop1, await cachedKnnTop1(step, 1, 0.07));
  assert.equal(((await readResult(out))?.recipe as { knnK: number }).knnK, 1);

  // without the kNN score its k no longer matters
  const noKnn = await runLinearProbe({ ...opts, epochs: 4, knn: false });
  assert.equal(noKnn.skipped, false);
  assert.equal(noKnn.result.knnTop1, null);
  assert.equal(noKnn.result.recipe.knnK, null);
  assert.equal((await runLinearProbe({ ...opts, epochs: 4, knn: false, knnK: 5 })).skipped, true);

  // fewer training images
  const fewer = await runLinearProbe({ ...opts, epochs: 4, knn: false, trainLimit: 48 });
  assert.equal(fewer.skipped, false);
  assert.equal(fewer.result.trainImages, 48);
  assert.equal(fewer.result.recipe.trainImages, 48);

  // a result.json from before recipes were stored is recomputed, and then has one
  await dropRecipe(out);
  const old = await runLinearProbe({ ...opts, epochs: 4, knn: false, trainLimit: 48 });
  assert.equal(old.skipped, false);
  assert.deepEqual((await readResult(out))?.recipe, old.result.recipe);
  assert.equal(
    (await runLinearProbe({ ...opts, epochs: 4, knn: false, trainLimit: 48 })).skipped,
    true,
  );
});

Deno.test("runKnn() reruns when k, T or the images change, and for an old result.json", async () => {
  const out = `${run}/knn-recipe`;
  const opts = { runDir: run, out, trainLimit: 64, testLimit: 32, quiet: true, figures: false };
  const first = await runKnn(opts);
  assert.equal(first.skipped, false);
  const step = first.result.ckptStep;
  assert.deepEqual(first.result.recipe, {
    trainImages: 64,
    testImages: 32,
    featureBatchSize: 128,
    k: 20,
    T: 0.07,
  });
  assert.equal(first.result.top1, await cachedKnnTop1(step, 20, 0.07));
  const explicit = await runKnn({ ...opts, k: 20, T: 0.07, featureBatchSize: 128 });
  assert.equal(explicit.skipped, true, "the defaults asked for explicitly are the same recipe");

  const k3 = await runKnn({ ...opts, k: 3 });
  assert.equal(k3.skipped, false, "another k is not answered from the old result");
  assert.equal(k3.result.k, 3);
  assert.equal(k3.result.top1, await cachedKnnTop1(step, 3, 0.07));
  assert.equal(((await readResult(out))?.recipe as { k: number }).k, 3);
  assert.equal((await runKnn({ ...opts, k: 3 })).skipped, true);

  const hot = await runKnn({ ...opts, k: 3, T: 0.5 });
  assert.equal(hot.skipped, false);
  assert.equal(hot.result.recipe.T, 0.5);
  assert.equal(hot.result.top1, await cachedKnnTop1(step, 3, 0.5));

  const fewer = await runKnn({ ...opts, k: 3, T: 0.5, testLimit: 16 });
  assert.equal(fewer.skipped, false);
  assert.equal(fewer.result.testImages, 16);
  assert.equal(fewer.result.confusion.flat().reduce((a, b) => a + b, 0), 16);

  await dropRecipe(out);
  const old = await runKnn({ ...opts, k: 3, T: 0.5, testLimit: 16 });
  assert.equal(old.skipped, false, "a result.json without a recipe is recomputed");
  assert.deepEqual((await readResult(out))?.recipe, old.result.recipe);
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

  assert.equal(pre.result.recipe.init, "pretrained");
  assert.equal(pre.result.recipe.layerDecay, 0.75);
  assert.equal((await runFinetune(opts)).skipped, true);
  // the defaults asked for explicitly are the same recipe
  assert.equal(
    (await runFinetune({ ...opts, baseLr: 2e-2, dropPath: 0.1, flip: true })).skipped,
    true,
  );
  // a changed recipe (more images, another base lr) is not answered from the old result
  const more = await runFinetune({ ...opts, limit: 48 });
  assert.equal(more.skipped, false);
  assert.equal(more.result.trainImages, 48);
  const lr = await runFinetune({ ...opts, limit: 48, baseLr: 2e-3 });
  assert.equal(lr.skipped, false);
  assert.equal(lr.result.baseLr, 2e-3);
  assert.equal((await runFinetune({ ...opts, limit: 48, baseLr: 2e-3 })).skipped, true);
});
