/**
 * MaskFeat: HOG targets against hand-computed gradients and histograms, the
 * loss over masked patches only, a short run that lowers the loss, and leaks.
 */
import assert from "node:assert/strict";
import { tf } from "./_tf.ts";
import { initBackend } from "../lib/backend/mod.ts";
import { resolveConfig } from "../lib/config/mod.ts";
import { ConfigError } from "../lib/config/errors.ts";
import { mimForwardFlops, mimTrainFlops } from "../lib/mim/methods.ts";
import { gaussianWindow, hogCellHistograms, HogTargets } from "../lib/mim/hog.ts";
import { MaskFeat } from "../lib/mim/maskfeat.ts";
import type { MaskPlan } from "../lib/mim/plan.ts";
import { unitRandomMaskPlan } from "../lib/mim/random.ts";
import { pretrain } from "../lib/pretrain/mod.ts";
import { writeAllRunFigures } from "../lib/pretrain/run_plots.ts";
import { readMetrics } from "../lib/run/mod.ts";
import { makeRng } from "../lib/util/rng.ts";
import { patchify } from "../lib/vit/patch.ts";
import { readPng } from "../lib/viz/png.ts";
import { TINY_MODEL_ARGS } from "./_tiny.ts";

const close = (a: number, b: number, tol = 1e-5) => Math.abs(a - b) <= tol;

/** An S x S single-channel image from f(x, y). */
function image(S: number, f: (x: number, y: number) => number): Float32Array {
  const out = new Float32Array(S * S);
  for (let y = 0; y < S; y++) for (let x = 0; x < S; x++) out[y * S + x] = f(x, y);
  return out;
}

/** Un-normalised cell histograms [Hc][Hc][C][bins] of one image [S, S, C]. */
function cells(img: Float32Array, S: number, C = 1, opts = {}): number[][][][] {
  return tf.tidy(() =>
    (hogCellHistograms(tf.tensor4d(img, [1, S, S, C]), opts).arraySync() as number[][][][][])[0]
  );
}

Deno.test("hogCellHistograms(): a ramp at a known angle puts its whole Sobel magnitude in the angle's bin", () => {
  // I = a (x cos t + y sin t): Sobel gives (gx, gy) = 8a (cos t, sin t) at every interior pixel,
  // so the interior cell (1, 1) of an 8 px image (pixels 2..3, Sobel reaching 1..4) gets
  // 4 pixels x 8a = 32a in bin floor((t mod 180) / 20)
  const a = 0.1;
  for (
    const [deg, bin] of [[0, 0], [30, 1], [45 + 5, 2], [90, 4], [130, 6], [-50, 6], [175, 8]]
  ) {
    const t = deg * Math.PI / 180;
    const h = cells(image(8, (x, y) => a * (x * Math.cos(t) + y * Math.sin(t))), 8)[1][1][0];
    for (let b = 0; b < 9; b++) {
      assert.ok(close(h[b], b === bin ? 32 * a : 0, 1e-4), `${deg} deg: bin ${b} = ${h[b]}`);
    }
  }
});

Deno.test("hogCellHistograms(): a step edge votes 4 per edge pixel; the image border is reflect-padded", () => {
  // vertical step between columns 3 and 4: pixels x = 3 and x = 4 have gx = [1,2,1] . [1,1,1] = 4,
  // gy = 0 (theta 0, bin 0); cells cover 2 px, so cells of columns 2..3 and 4..5 get 2 x 4 = 8
  const vertical = cells(image(8, (x) => (x >= 4 ? 1 : 0)), 8);
  for (let r = 0; r < 4; r++) {
    for (let c = 0; c < 4; c++) {
      const h = vertical[r][c][0];
      const want = c === 1 || c === 2 ? 8 : 0;
      assert.ok(close(h[0], want), `cell (${r}, ${c}) bin 0 = ${h[0]}`);
      assert.ok(h.slice(1).every((v) => v === 0), `cell (${r}, ${c}) other bins ${h}`);
    }
  }
  // the same edge turned horizontal: theta 90 deg, bin 4 (80..100 deg)
  const horizontal = cells(image(8, (_x, y) => (y >= 4 ? 2 : 0)), 8);
  assert.ok(close(horizontal[1][0][0][4], 16) && close(horizontal[2][3][0][4], 16));
  assert.equal(horizontal[1][0][0].reduce((s, v) => s + v), horizontal[1][0][0][4]);
  // reflect padding (pixel -1 = pixel 1): on a ramp along x the border column has no x gradient,
  // so corner cell (0, 0) holds only its column x = 1: 2 pixels x 8a
  const ramp = cells(image(8, (x) => 0.1 * x), 8);
  assert.ok(close(ramp[0][0][0][0], 2 * 0.8), String(ramp[0][0][0][0]));
  assert.ok(close(ramp[0][1][0][0], 4 * 0.8), String(ramp[0][1][0][0]));
});

Deno.test("gaussianWindow() and mim.hogWindow: the reference kernel, tiled, weighting the magnitudes", () => {
  const w = gaussianWindow(4); // std floor(4 / 2) = 2, sum 1
  assert.ok(close(w.reduce((s, v) => s + v), 1));
  assert.ok(close(w[0], w[15]) && close(w[5], w[10]) && w[5] > w[0]);
  const g1 = [-1.5, -0.5, 0.5, 1.5].map((n) => Math.exp(-0.5 * (n / 2) ** 2));
  const z = g1.reduce((s, v) => s + v) ** 2;
  assert.ok(close(w[1 * 4 + 2], g1[1] * g1[2] / z));
  // a ramp along x with a 4 px window tiled over 8 px: cell (1, 1) covers window rows/cols 2..3
  const a = 0.1;
  const h = cells(image(8, (x) => a * x), 8, 1, { window: 4 })[1][1][0];
  const want = 8 * a * (w[2 * 4 + 2] + w[2 * 4 + 3] + w[3 * 4 + 2] + w[3 * 4 + 3]);
  assert.ok(close(h[0], want), `${h[0]} vs ${want}`);
});

Deno.test("HogTargets.compute(): zeros for a constant image; unit L2 norm per patch or per cell", () => {
  for (const C of [1, 3]) {
    const hog = new HogTargets({ imageSize: 8, patchSize: 4, channels: C });
    try {
      assert.equal(hog.dim, 2 * 2 * C * 9);
      for (const v of [0, 0.37, -1.234]) {
        const f = tf.tidy(() =>
          hog.compute(tf.fill([2 * 4, 16 * C], v) as tf.Tensor2D).arraySync() as number[][]
        );
        assert.deepEqual([f.length, f[0].length], [8, hog.dim]);
        assert.ok(f.flat().every((x) => x === 0), `constant ${v}, ${C} channel(s)`);
      }
    } finally {
      hog.dispose();
    }
  }
  const rng = makeRng(3, "hog");
  const img = Float32Array.from({ length: 2 * 64 * 3 }, () => rng() * 2 - 1);
  const patches = patchify(img, 2, 8, 3, 4);
  for (const norm of ["patch", "cell"] as const) {
    const hog = new HogTargets({ imageSize: 8, patchSize: 4, channels: 3 }, { norm });
    const f = tf.tidy(() => hog.compute(tf.tensor2d(patches, [8, 48])).arraySync() as number[][]);
    hog.dispose();
    for (const row of f) {
      const groups = norm === "patch"
        ? [row]
        : Array.from({ length: 12 }, (_, i) => row.slice(i * 9, i * 9 + 9));
      for (const g of groups) assert.ok(close(Math.hypot(...g), 1, 1e-5), `${norm} norm`);
      assert.ok(row.every((x) => x >= 0));
    }
  }
});

Deno.test("HogTargets.compute() is the image's cell histograms per patch, (cell row, cell col, channel, bin), normalised", () => {
  const S = 8, p = 4, C = 3, B = 2;
  const rng = makeRng(4, "hog");
  const img = Float32Array.from({ length: B * S * S * C }, () => rng());
  const hist = tf.tidy(() =>
    hogCellHistograms(tf.tensor4d(img, [B, S, S, C])).arraySync() as number[][][][][]
  );
  const hog = new HogTargets({ imageSize: S, patchSize: p, channels: C });
  const f = tf.tidy(() =>
    hog.compute(tf.tensor2d(patchify(img, B, S, C, p), [B * 4, p * p * C]))
      .arraySync() as number[][]
  );
  hog.dispose();
  for (let b = 0; b < B; b++) {
    for (let k = 0; k < 4; k++) {
      const gy = Math.floor(k / 2), gx = k % 2;
      const want: number[] = [];
      for (let i = 0; i < 2; i++) {
        for (let j = 0; j < 2; j++) {
          for (let c = 0; c < C; c++) want.push(...hist[b][gy * 2 + i][gx * 2 + j][c]);
        }
      }
      const n = Math.hypot(...want);
      const got = f[b * 4 + k];
      for (let q = 0; q < want.length; q++) {
        assert.ok(close(got[q], want[q] / n), `image ${b} patch ${k} value ${q}`);
      }
    }
  }
});

Deno.test("HogTargets: a patch's HOG sees a one-pixel halo of its neighbours, nothing further", () => {
  const S = 8, p = 4;
  const hog = new HogTargets({ imageSize: S, patchSize: p, channels: 1 });
  const rng = makeRng(5, "halo");
  const base = Float32Array.from({ length: S * S }, () => rng());
  const hogOf = (img: Float32Array) =>
    tf.tidy(() => hog.compute(tf.tensor2d(patchify(img, 1, S, 1, p), [4, 16])).arraySync());
  const ref = hogOf(base) as number[][];
  const poke = (x: number, y: number) => {
    const img = base.slice();
    img[y * S + x] += 3;
    return hogOf(img) as number[][];
  };
  // patch 1 (columns 4..7): its column 4 is next to patch 0's column 3
  assert.notDeepEqual(poke(4, 1)[0], ref[0]);
  // its column 5 is two pixels away from patch 0: no effect on patch 0
  assert.deepEqual(poke(5, 1)[0], ref[0]);
  assert.deepEqual(poke(6, 2)[0], ref[0]);
  hog.dispose();
});

Deno.test("HogTargets.compute() on the wasm backend (training's) matches cpu", async () => {
  const S = 16, p = 4, C = 3, B = 2;
  const rng = makeRng(6, "wasm");
  const img = Float32Array.from({ length: B * S * S * C }, () => rng() * 2 - 1);
  const patches = patchify(img, B, S, C, p);
  const run = async (backend: "wasm" | "cpu") => {
    await initBackend({ backend, threads: 1, quiet: true });
    const hog = new HogTargets({ imageSize: S, patchSize: p, channels: C }, { window: 8 });
    try {
      const t = tf.tensor2d(patches, [B * 16, p * p * C]);
      const f = hog.compute(t);
      const out = (await f.data()) as Float32Array;
      tf.dispose([t, f]);
      return out;
    } finally {
      hog.dispose();
    }
  };
  try {
    const wasm = await run("wasm");
    const cpu = await run("cpu");
    let worst = 0;
    for (let i = 0; i < cpu.length; i++) worst = Math.max(worst, Math.abs(wasm[i] - cpu[i]));
    assert.ok(cpu.some((v) => v > 0.1), "cpu HOG is not empty");
    // hard bins: a pixel within float rounding of a bin edge may land in the other bin
    assert.ok(worst < 1e-4, `wasm and cpu HOG differ by ${worst}`);
  } finally {
    await tf.setBackend("cpu");
  }
});

// --- the model -----------------------------------------------------------------------------

const shape = {
  imageSize: 16,
  patchSize: 4,
  channels: 1,
  dim: 16,
  depth: 2,
  heads: 2,
  mlpRatio: 2,
  decoderDim: 8,
  decoderDepth: 1,
  decoderHeads: 2,
};
const B = 2, L = 16, P = 16;

function data(seed: number): Float32Array {
  const rng = makeRng(seed, "mf");
  return Float32Array.from({ length: B * L * P }, () => rng() * 2 - 1);
}
/** Adds to every pixel of patch i of image b. */
function perturb(d: Float32Array, b: number, i: number): Float32Array {
  const out = d.slice();
  for (let q = 0; q < P; q++) out[(b * L + i) * P + q] += 2 + q;
  return out;
}

/**
 * On the 4 x 4 grid: masked {0, 1, 4, 5} (top-left block), thrown {3, 12, 15} (corners, none
 * touching a masked patch, so not even the Sobel halo of a masked target reaches them), the
 * other 9 visible.
 */
function throwPlan(): MaskPlan {
  const rows = (ids: number[]) =>
    Int32Array.from({ length: B * ids.length }, (_, j) => ids[j % ids.length]);
  const visible = [2, 6, 7, 8, 9, 10, 11, 13, 14];
  return {
    batch: B,
    numPatches: L,
    numMasked: 4,
    numThrown: 3,
    numVisible: 9,
    masked: rows([0, 1, 4, 5]),
    thrown: rows([3, 12, 15]),
    visible: rows(visible),
  };
}

Deno.test("MaskFeat: MSE on masked patches' HOG only; masked inputs are mask tokens; thrown patches are absent", () => {
  const model = new MaskFeat({ shape, seed: 1 });
  try {
    const plan = throwPlan();
    const x = data(1);
    const F = model.features.dim;
    assert.equal(F, 36);
    const loss = (d: Float32Array) =>
      tf.tidy(() => model.lossFn(tf.tensor2d(d, [B * L, P]), plan).dataSync()[0]);
    const pred = (d: Float32Array) =>
      tf.tidy(() => Array.from(model.predict(tf.tensor2d(d, [B * L, P]), plan).dataSync()));
    const grads = (d: Float32Array) =>
      tf.tidy(() => {
        const t = tf.tensor2d(d, [B * L, P]);
        const { grads } = tf.variableGrads(() => model.lossFn(t, plan), model.variables());
        return Object.values(grads).map((g) => Array.from(g.dataSync()));
      });
    assert.equal(pred(x).length, B * 4 * F); // predict: the masked patches' HOG
    // thrown patches' pixels: no effect on loss, gradients or predictions
    for (const i of [3, 12, 15]) {
      assert.equal(loss(perturb(x, 0, i)), loss(x), `thrown ${i}`);
      assert.deepEqual(pred(perturb(x, 1, i)), pred(x));
    }
    assert.deepEqual(grads(perturb(perturb(x, 0, 3), 1, 15)), grads(x));
    // a masked patch's pixels never reach the encoder, but its target counts
    assert.deepEqual(pred(perturb(x, 1, 5)), pred(x));
    assert.notEqual(loss(perturb(x, 1, 5)), loss(x));
    // a visible patch changes predictions
    assert.notDeepEqual(pred(perturb(x, 0, 9)), pred(x));

    // the loss stage reads only the masked rows of the targets
    tf.tidy(() => {
      const patches = tf.tensor2d(x, [B * L, P]);
      const targets = model.targets(patches).arraySync() as number[][];
      const p = tf.tensor2d(pred(x), [B * 4, F]);
      const idx = { maskedFlat: tf.tensor1d([0, 1, 4, 5, 16, 17, 20, 21], "int32") };
      const lossWith = (t: number[][]) =>
        model.loss(p, tf.tensor2d(t), idx as Parameters<MaskFeat["loss"]>[2]).dataSync()[0];
      const base = lossWith(targets);
      const changed = targets.map((row) => row.slice());
      for (const r of [2, 3, 9, 12, 15, 16 + 6, 16 + 13, 16 + 15]) changed[r] = row(F, r); // visible, thrown
      assert.equal(lossWith(changed), base);
      changed[16 + 4] = row(F, 99); // a masked patch of image 1
      assert.notEqual(lossWith(changed), base);
      // and it is the mean squared error over masked HOG values, by hand
      const pv = pred(x);
      let s = 0;
      [0, 1, 4, 5, 16, 17, 20, 21].forEach((r, m) => {
        for (let q = 0; q < F; q++) s += (pv[m * F + q] - targets[r][q]) ** 2;
      });
      assert.ok(close(base, s / (8 * F)), `${base} vs ${s / (8 * F)}`);
      assert.ok(close(loss(x), base));
    });
  } finally {
    model.dispose();
  }
});

function row(F: number, seed: number): number[] {
  const rng = makeRng(seed, "row");
  return Array.from({ length: F }, () => rng());
}

Deno.test("MaskFeat.lossFn() under tf.variableGrads(): loss and gradients are all that survive; dispose() frees all", async () => {
  const baseline = tf.memory().numTensors;
  const model = new MaskFeat({ shape, seed: 2, hog: { window: 4 } });
  const patches = tf.tensor2d(data(3), [B * L, P]);
  const vars = model.variables();
  const step = async (i: number) => {
    // MaskFeat's random masking: 2x2-patch units with ceil counting, at 0.4
    const plan = unitRandomMaskPlan(B, L, 2, 0.4, makeRng(6, "plan", i));
    const { value, grads } = tf.variableGrads(() => model.lossFn(patches, plan), vars);
    try {
      assert.equal(Object.keys(grads).length, vars.length);
      assert.ok(Number.isFinite((await value.data())[0]), "non-finite loss");
    } finally {
      tf.dispose([value, ...Object.values(grads)]);
    }
  };
  await step(0);
  const before = tf.memory().numTensors;
  for (let i = 1; i <= 2; i++) await step(i);
  assert.equal(tf.memory().numTensors, before, "loss + grads left tensors behind");
  const p = model.predict(patches, unitRandomMaskPlan(B, L, 2, 0.4, makeRng(7, "plan")));
  p.dispose();
  assert.equal(tf.memory().numTensors, before, "predict left tensors behind");
  patches.dispose();
  model.dispose();
  assert.equal(tf.memory().numTensors, baseline, "dispose() left tensors behind");
});

Deno.test("configs/maskfeat*.yaml: method maskfeat, 0.4 random / 0.30 + 0.26 AMT, ceil counting, HOG keys; checks", () => {
  const { config: random } = resolveConfig({ argv: ["--config", "configs/maskfeat.yaml"] });
  assert.deepEqual(
    [random.mim.method, random.mim.maskRatio, random.amt.strategy, random.amt.counting],
    ["maskfeat", 0.4, "none", "ceil"],
  );
  assert.deepEqual(
    [random.mim.hogCell, random.mim.hogBins, random.mim.hogWindow, random.mim.hogNorm],
    [2, 9, 0, "patch"],
  );
  const { config: amt } = resolveConfig({ argv: ["--config", "configs/maskfeat_amt.yaml"] });
  assert.deepEqual(
    [amt.amt.strategy, amt.amt.maskRatio, amt.amt.throwRatio, amt.run.name],
    ["amt", 0.3, 0.26, "maskfeat-amt"],
  );
  const bad = (argv: string[], re: RegExp) =>
    assert.throws(
      () => resolveConfig({ argv }),
      (e) => e instanceof ConfigError && re.test(e.message),
    );
  bad(
    ["--mim.method=maskfeat", "--mim.hogCell=3"],
    /mim.hogCell = 3 does not divide the 4 px patch/,
  );
  bad(["--mim.method=maskfeat", "--mim.hogBins=1"], /mim.hogBins = 1 must be >= 2/);
  bad(
    ["--mim.method=maskfeat", "--data.imageSize=28", "--mim.hogWindow=8"],
    /hogWindow = 8 does not divide/,
  );
  bad(["--mim.hogNorm=block"], /mim.hogNorm = "block" is not one of: patch, cell/);
  // MAE ignores the HOG geometry
  resolveConfig({ argv: ["--mim.hogCell=3"] });
});

Deno.test("mimForwardFlops(maskfeat): SimMIM's encoder, a HOG head, plus the HOG targets once", () => {
  const s = { ...shape, imageSize: 28 };
  const plan = { masked: 15, thrown: 13, visible: 21 };
  const simmim = mimForwardFlops("simmim", s, plan);
  const mf = mimForwardFlops("maskfeat", s, plan);
  const hog = 28 * 28 * (24 + 3 + 1);
  // head: 2 * Km * D * (F = 36) instead of 2 * Km * D * (p*p*C = 16)
  assert.equal(mf - simmim, 2 * 15 * 16 * (36 - 16) + hog);
  assert.equal(mimTrainFlops("maskfeat", s, plan), 3 * (mf - hog) + hog);
  assert.equal(
    mimForwardFlops("maskfeat", s, plan, { cellSize: 1 }) - mf,
    2 * 15 * 16 * (144 - 36),
  );
});

Deno.test("pretrain() with MaskFeat + AMT on the synthetic set: the loss falls; HOG figures are written", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const { config } = resolveConfig({
      argv: [
        "--config",
        "configs/maskfeat_amt.yaml",
        ...TINY_MODEL_ARGS,
        "--data.limit=64",
        "--train.epochs=4",
        "--train.baseLr=1e-3",
        "--train.logEvery=1",
        "--train.ckptEvery=0",
        "--eval.knnEvery=0",
        "--amt.warmup=1",
        "--amt.interval=1",
        "--mim.maskUnit=4", // 2x2-patch units would leave 4 units on a 16 px image: too few
        "--run.vizImages=2",
        `--run.dir=${dir}`,
      ],
    });
    const r = await pretrain(config, { quiet: true });
    assert.equal(r.steps, 16);
    const metrics = await readMetrics(`${dir}/metrics.jsonl`);
    const steps = metrics.filter((m) => m.type === "step").map((m) => m.loss as number);
    const first = (steps[0] + steps[1]) / 2, last = (steps[14] + steps[15]) / 2;
    assert.ok(last < first, `loss did not fall: ${first} -> ${last}`);
    // 16 px, 4 px patches: 16 patches, ceil(16 * 0.30) = 5 masked, ceil(16 * 0.26) = 5 thrown
    const epochs = metrics.filter((m) => m.type === "epoch");
    assert.deepEqual(
      [epochs[3].masked, epochs[3].thrown, epochs[3].visible, epochs[3].phase],
      [5, 5, 6, "amt"],
    );
    for (const f of ["plots/reconstruction.png", "plots/saliency_epoch01.png"]) {
      await Deno.stat(`${dir}/${f}`);
    }
    // image | saliency | plan | predicted HOG | target HOG, 16 px at 4x (2 px cells -> 8 px)
    const grid = await readPng(`${dir}/plots/reconstruction.png`);
    assert.ok(grid.width >= 5 * 64 + 6 * 2, String(grid.width));
    // the rebuild from the folder takes the same branch
    const again = await writeAllRunFigures(dir, { log: () => {} });
    assert.deepEqual(again.skipped, []);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
