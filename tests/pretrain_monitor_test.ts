import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { ConfigError, resolveConfig } from "../lib/config/mod.ts";
import { TINY_MODEL_ARGS } from "./_tiny.ts";
import { monitorSources, pretrain, readMonitorMaps } from "../lib/pretrain/mod.ts";
import { readMetrics } from "../lib/run/mod.ts";
import { attentionOnObject } from "../lib/eval/attention.ts";
import { encoderSaliency, rolloutSaliency, saliencyFromAttention } from "../lib/amt/mod.ts";
import { makeSynthetic } from "../lib/data/mod.ts";
import { ParamStore, resolveShape, VisionTransformer } from "../lib/vit/mod.ts";
import { attnCurveOf, checkRecord } from "../lib/repro/records.ts";

function args(dir: string, extra: string[] = []): string[] {
  return [
    ...TINY_MODEL_ARGS,
    "--data.limit=48",
    "--train.epochs=2",
    "--train.baseLr=1e-3",
    "--train.logEvery=1",
    "--train.ckptEvery=0",
    "--run.vizImages=2",
    `--run.dir=${dir}`,
    ...extra,
  ];
}

const MONITOR = [
  "--eval.attnEvery=1",
  "--eval.attnImages=12",
  "--eval.attnSources=cls-last,rollout",
];

Deno.test("the attention monitor scores both maps each epoch, keeps maps, and leaves training unchanged", async () => {
  const plainDir = await Deno.makeTempDir();
  const watchedDir = await Deno.makeTempDir();
  await pretrain(resolveConfig({ argv: args(plainDir) }).config, { quiet: true });
  await pretrain(resolveConfig({ argv: args(watchedDir, MONITOR) }).config, { quiet: true });
  const plain = await readMetrics(`${plainDir}/metrics.jsonl`);
  const watched = await readMetrics(`${watchedDir}/metrics.jsonl`);
  // a measurement: the same data order, masks and updates, so the same losses
  assert.deepEqual(
    watched.filter((m) => m.type === "step").map((m) => m.loss),
    plain.filter((m) => m.type === "step").map((m) => m.loss),
  );
  const epochs = watched.filter((m) => m.type === "epoch");
  assert.equal(epochs.length, 2);
  for (const e of epochs) {
    for (const k of ["attnOnObject", "attnOnObjectRollout", "objectArea", "attnSeconds"]) {
      assert.equal(typeof e[k], "number", `epoch ${e.epoch}: ${k}`);
    }
    assert.ok((e.attnOnObject as number) > 0 && (e.attnOnObject as number) < 1);
  }
  assert.ok(!("attnOnObject" in plain.filter((m) => m.type === "epoch")[0]));
  const file = await readMonitorMaps(`${watchedDir}/eval/attention_monitor.json`);
  assert.ok(file);
  assert.equal(file.grid, 4);
  assert.deepEqual(file.entries.map((e) => `${e.epoch}/${e.source}`), [
    "1/cls-last",
    "1/rollout",
    "2/cls-last",
    "2/rollout",
  ]);
  for (const e of file.entries) {
    assert.equal(e.maps.length, 8);
    assert.ok(e.maps.every((m) => m.length === 16 && m.every((v) => v >= 0 && v <= 1)));
  }
  assert.equal(file.entries[2].attnOnObject, epochs[1].attnOnObject);
  // the record's curve: one point per epoch, 1-based
  const curve = attnCurveOf(epochs);
  assert.deepEqual(curve.map((p) => p.epoch), [1, 2]);
  assert.equal(curve[1].attnOnObjectRollout, epochs[1].attnOnObjectRollout);
});

Deno.test("attentionOnObject() scores the chosen map and returns the first maps it scored", async () => {
  const shape = resolveShape(
    { preset: "vit-micro-28", patchSize: 4, dim: 16, depth: 2, heads: 2 },
    3,
    16,
  );
  const encoder = new VisionTransformer(new ParamStore(3), shape);
  const ds = makeSynthetic({ count: 6, size: 16 });
  const cls = await attentionOnObject(encoder, ds, { imageSize: 16, batchSize: 4, keepMaps: 5 });
  const roll = await attentionOnObject(encoder, ds, {
    imageSize: 16,
    batchSize: 4,
    keepMaps: 5,
    source: "rollout",
  });
  assert.equal(cls.maps.length, 5 * 16);
  assert.equal(roll.maps.length, 5 * 16);
  assert.ok(
    cls.maps.some((v, i) => Math.abs(v - roll.maps[i]) > 1e-3),
    "rollout and cls-last gave the same maps",
  );
  // the kept maps are the maps of the images, batch boundary included (batch 4, keep 5)
  const { loadBatch } = await import("../lib/data/mod.ts");
  const { patchify } = await import("../lib/vit/patch.ts");
  const { makeRng } = await import("../lib/util/rng.ts");
  const b = await loadBatch(ds, Int32Array.from([0, 1, 2, 3, 4]), {
    imageSize: 16,
    augment: false,
    rng: makeRng(0, "t"),
  });
  const x = tf.tensor3d(patchify(b.images, 5, 16, 3, 4), [5, 16, encoder.patchDim]);
  const direct = tf.tidy(() => saliencyFromAttention(encoder.lastAttention(x), 1));
  const directRoll = tf.tidy(() => rolloutSaliency(encoder, x));
  const viaSeam = tf.tidy(() => encoderSaliency(encoder, x, "rollout"));
  const d = await direct.data(), dr = await directRoll.data(), s = await viaSeam.data();
  for (let i = 0; i < d.length; i++) {
    assert.ok(Math.abs(d[i] - cls.maps[i]) < 1e-6, `cls map ${i}`);
    assert.ok(Math.abs(dr[i] - roll.maps[i]) < 1e-6, `rollout map ${i}`);
    assert.equal(s[i], dr[i]);
  }
  tf.dispose([x, direct, directRoll, viaSeam]);
  // keepMaps beyond the images scored keeps them all
  const few = await attentionOnObject(encoder, ds, { imageSize: 16, limit: 3, keepMaps: 8 });
  assert.equal(few.maps.length, 3 * 16);
});

Deno.test("eval.attnSources names a bad map and the ones to use; lists are de-duplicated", () => {
  let caught: unknown;
  try {
    resolveConfig({ argv: args("/tmp/x", ["--eval.attnSources=cls-last,rolout"]) });
  } catch (e) {
    caught = e;
  }
  assert.ok(caught instanceof ConfigError, String(caught));
  assert.match(caught.message, /eval\.attnSources/);
  assert.match(caught.message, /"rolout"/);
  assert.match(caught.message, /cls-last, rollout/);
  assert.deepEqual(monitorSources("rollout, cls-last,rollout"), ["rollout", "cls-last"]);
});

Deno.test("checkRecord() defaults a missing attnCurve to [] and rejects a malformed one", () => {
  const base = { id: "mae-random-75", seed: 0 };
  assert.deepEqual(checkRecord({ ...base }, "r.json").attnCurve, []);
  const ok = checkRecord(
    { ...base, attnCurve: [{ epoch: 2, attnOnObject: 0.5, objectArea: 0.45 }] },
    "r.json",
  );
  assert.equal(ok.attnCurve[0].epoch, 2);
  assert.throws(
    () => checkRecord({ ...base, attnCurve: [{ epoch: 2 }] }, "r.json"),
    /r\.json: not a repro record \(attnCurve/,
  );
});
