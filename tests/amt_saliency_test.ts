import assert from "node:assert/strict";
import { tf } from "./_tf.ts";
import { saliencyFromAttention, SaliencyStore } from "../lib/amt/saliency.ts";
import { amtPhase, isSaliencyUpdate, saliencyUpdates } from "../lib/amt/schedule.ts";
import { AmtPlanner } from "../lib/amt/planner.ts";
import { MaskedAutoencoder } from "../lib/mim/mae.ts";
import { RandomMaskPlanner } from "../lib/mim/random.ts";
import { SyntheticDataset } from "../lib/data/synthetic.ts";
import { makeRng } from "../lib/util/rng.ts";
import type { CropBox } from "../lib/data/types.ts";

Deno.test("saliencyFromAttention() is the head-mean of per-head min-max CLS rows without the CLS column", () => {
  // B=1, H=2, T=1+4. Rows other than CLS are noise that must not matter.
  const T = 5;
  const a = new Float32Array(2 * T * T).fill(0.2);
  const head0 = [0.5, 0.1, 0.2, 0.15, 0.05]; // CLS column 0.5 must be ignored
  const head1 = [0.0, 0.4, 0.3, 0.2, 0.1];
  a.set(head0, 0);
  a.set(head1, T * T);
  const s = tf.tidy(() => saliencyFromAttention(tf.tensor4d(a, [1, 2, T, T])).dataSync());
  const mm = (r: number[]) => {
    const v = r.slice(1), lo = Math.min(...v), hi = Math.max(...v);
    return v.map((x) => (x - lo) / (hi - lo));
  };
  const e0 = mm(head0), e1 = mm(head1);
  for (let i = 0; i < 4; i++) assert.ok(Math.abs(s[i] - (e0[i] + e1[i]) / 2) < 1e-6, `patch ${i}`);
  assert.ok(Math.min(...s) >= 0 && Math.max(...s) <= 1);
});

Deno.test("AMT schedule: warm-up phase, updates after epoch `warmup` and every `interval`, never after the last", () => {
  const s = { warmup: 4, interval: 3, epochs: 12 };
  assert.deepEqual(saliencyUpdates(s), [4, 7, 10]);
  assert.equal(isSaliencyUpdate(12, s), false);
  assert.deepEqual(saliencyUpdates({ warmup: 40, interval: 40, epochs: 400 }).slice(0, 3), [
    40,
    80,
    120,
  ]);
  assert.equal(saliencyUpdates({ warmup: 40, interval: 40, epochs: 400 }).at(-1), 360);
  assert.deepEqual([0, 3, 4, 11].map((e) => amtPhase(e, s)), ["warmup", "warmup", "amt", "amt"]);
});

/** A 16 px MAE (4x4 patches) with an AMT planner at mask 0.25 / throw `throwRatio`. */
function tinyPlanner(count: number, seed: number, throwRatio: number) {
  const ds = new SyntheticDataset({ count, size: 16, channels: 1, seed });
  const shape = {
    imageSize: 16,
    patchSize: 4,
    channels: 1,
    dim: 16,
    depth: 1,
    heads: 2,
    mlpRatio: 2,
    decoderDim: 8,
    decoderDepth: 1,
    decoderHeads: 2,
  };
  const mae = new MaskedAutoencoder({ shape, normPixLoss: true, seed: 0 });
  const options = {
    strategy: "amt" as const,
    maskRatio: 0.25,
    throwRatio,
    counting: "floor" as const,
    warmup: 1,
    interval: 1,
    epochs: 3,
    maskUnit: 4,
    batchSize: 4,
    seed: 0,
  };
  const warmup = new RandomMaskPlanner(0.75);
  const planner = new AmtPlanner(options, mae, ds, 16, warmup, () => {});
  return { mae, planner };
}

Deno.test("AmtPlanner weights follow a map through crops and flips", () => {
  const { mae, planner } = tinyPlanner(4, 1, 0.25);
  // map of image 0: only grid cell (0, 3) (top-right) is hot
  const maps = new Float32Array(4 * 16);
  maps[3] = 1;
  planner.store.update(maps, 1);
  const full: CropBox = { y0: 0, x0: 0, y1: 1, x1: 1, flip: false };
  const flipped: CropBox = { ...full, flip: true };
  const rightHalf: CropBox = { y0: 0, x0: 0.5, y1: 0.5, x1: 1, flip: false };
  const argmax = (w: Float32Array) => w.indexOf(Math.max(...w));
  assert.equal(argmax(planner.weights(Int32Array.of(0), [full])), 3); // top-right
  assert.equal(argmax(planner.weights(Int32Array.of(0), [flipped])), 0); // mirrored: top-left
  // cropping the top-right quadrant blows the hot cell up over the right side of the crop
  const w = planner.weights(Int32Array.of(0), [rightHalf]);
  assert.ok(w[3] + w[7] + w[11] + w[15] > w[0] + w[4] + w[8] + w[12]);
  mae.dispose();
});

Deno.test("AmtPlanner: warm-up plans are random with the method's ratio; AMT plans mask the most attended", () => {
  const { mae, planner } = tinyPlanner(8, 2, 0.5);
  const ctx = (epoch: number) => ({
    epoch,
    step: 0,
    rng: makeRng(0, "t", epoch),
    indices: Int32Array.of(0),
    boxes: [{ y0: 0, x0: 0, y1: 1, x1: 1, flip: false }],
    imageSize: 16,
    patchSize: 4,
  });
  const warm = planner.plan(1, 16, ctx(0));
  assert.equal(warm.numMasked, 12);
  assert.equal(warm.numThrown, 0);
  // four hot cells with all other weight zero: they are always the 4 masked ones
  const maps = new Float32Array(8 * 16);
  for (const i of [0, 5, 10, 15]) maps[i] = 1;
  planner.store.update(maps, 1);
  // bilinear upsampling spreads some weight to neighbours, so hot cells are likely, not certain
  const freq = new Float64Array(16);
  const draws = 400;
  for (let e = 1; e <= draws; e++) {
    const p = planner.plan(1, 16, ctx(e));
    assert.equal(p.numMasked, 4);
    assert.equal(p.numThrown, 8);
    for (const i of p.masked) freq[i] += 1 / draws;
  }
  for (const i of [0, 5, 10, 15]) assert.ok(freq[i] > 0.5, `hot cell ${i} masked ${freq[i]}`);
  const cold = freq.reduce((a, f, i) => ([0, 5, 10, 15].includes(i) ? a : a + f), 0) / 12;
  assert.ok(cold < 0.15, `cold cells masked ${cold} on average`);
  // state round trip
  const saved = planner.saveState();
  const other = new SaliencyStore(8, 4);
  assert.equal(other.maps[0], 1); // starts uniform
  planner.store.update(new Float32Array(8 * 16), 2);
  planner.loadState(saved as never);
  assert.equal(planner.store.updatedAfterEpoch, 1);
  assert.equal(planner.store.maps[5], 1);
  mae.dispose();
});

Deno.test("AmtPlanner.afterEpoch() returns the pass's statistics and keeps the maps; it draws nothing", async () => {
  const { mae, planner } = tinyPlanner(4, 3, 0.25);
  try {
    const before = planner.imageMaps(4);
    assert.equal(before.length, 4);
    assert.deepEqual([before[0].height, before[0].width, before[0].channels], [16, 16, 1]);
    assert.ok(before[0].data.every((v) => v === before[0].data[0]), "uniform before any pass");
    // warmup 1, interval 1, 3 epochs: passes after epochs 1 and 2, none after the last
    const stats = await planner.afterEpoch(0);
    assert.ok(stats && typeof stats.saliencySeconds === "number" && stats.saliencySeconds >= 0);
    assert.equal(stats.saliencyUpdatedAfter, 1);
    assert.equal(planner.store.updatedAfterEpoch, 1);
    const after = planner.imageMaps(2, 8);
    assert.deepEqual([after[1].height, after[1].width], [8, 8]);
    assert.deepEqual(after[1].data, planner.store.imageMap(1, 8).data);
    assert.equal(await planner.afterEpoch(2), undefined);
    assert.equal(planner.store.updatedAfterEpoch, 1);
  } finally {
    mae.dispose();
  }
});
