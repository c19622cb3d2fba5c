import assert from "node:assert/strict";
import { tf } from "./_tf.ts";
import {
  assignLevel,
  buildDetector,
  buildTargets,
  decodeDetections,
  Detector,
  DETECTOR_DEFAULTS,
  disposeOutput,
  fineTuneDetector,
  type ItemSource,
  nms,
  openCocoDataset,
  VitBackbone,
  vitDetLrScales,
  windowOrder,
  writeCocoScenes,
} from "../lib/detect/mod.ts";
import { conv3x3Op, Deconv2x2 } from "../lib/detect/_layers.ts";
import { resolveConfig } from "../lib/config/mod.ts";
import { pretrain } from "../lib/pretrain/mod.ts";
import { loadRun } from "../lib/run/mod.ts";
import { ParamStore } from "../lib/vit/params.ts";
import { resolveShape, VisionTransformer } from "../lib/vit/vit.ts";

function maxAbsDiff(a: tf.Tensor, b: tf.Tensor): number {
  return tf.tidy(() => tf.max(tf.abs(tf.sub(a, b))).dataSync()[0]);
}

Deno.test("conv3x3Op() matches tf.conv2d in value and in all three gradients", () => {
  const x = tf.randomNormal([2, 5, 6, 3], 0, 1, "float32", 1) as tf.Tensor4D;
  const w = tf.randomNormal([27, 4], 0, 1, "float32", 2) as tf.Tensor2D;
  const b = tf.randomNormal([4], 0, 1, "float32", 3) as tf.Tensor1D;
  const up = tf.randomNormal([2, 5, 6, 4], 0, 1, "float32", 4);
  const ref = (xx: tf.Tensor, ww: tf.Tensor, bb: tf.Tensor) =>
    tf.sum(
      tf.mul(
        tf.add(
          tf.conv2d(xx as tf.Tensor4D, ww.reshape([3, 3, 3, 4]) as tf.Tensor4D, 1, "same"),
          bb,
        ),
        up,
      ),
    );
  const ours = (xx: tf.Tensor, ww: tf.Tensor, bb: tf.Tensor) =>
    tf.sum(tf.mul(conv3x3Op(xx as tf.Tensor4D, ww as tf.Tensor2D, bb as tf.Tensor1D), up));
  assert.ok(maxAbsDiff(ref(x, w, b), ours(x, w, b)) < 1e-3);
  const gr = tf.grads(ref)([x, w, b]);
  const go = tf.grads(ours)([x, w, b]);
  for (let i = 0; i < 3; i++) assert.ok(maxAbsDiff(gr[i], go[i]) < 1e-3, `gradient ${i}`);
  tf.dispose([x, w, b, up, ...gr, ...go]);
});

Deno.test("Deconv2x2 is a stride-2 transposed convolution", () => {
  const store = new ParamStore(0);
  const d = new Deconv2x2(store, "d", 3, 2);
  const x = tf.randomNormal([2, 3, 4, 3], 0, 1, "float32", 5) as tf.Tensor4D;
  // the dense weight [in, (dy, dx, out)] as a conv2dTranspose kernel [kh, kw, out, in]
  const k = d.linear.w.reshape([3, 2, 2, 2]).transpose([1, 2, 3, 0]) as tf.Tensor4D;
  const ref = tf.conv2dTranspose(x, k, [2, 6, 8, 2], 2, "valid"); // the bias starts at zero
  const y = d.apply(x);
  assert.deepEqual(y.shape, [2, 6, 8, 2]);
  assert.ok(maxAbsDiff(y, ref) < 1e-4);
  tf.dispose([x, k, ref, y]);
  store.dispose();
});

Deno.test("windowOrder() lists each window's patches together", () => {
  assert.deepEqual(Array.from(windowOrder(4, 2)), [
    0,
    1,
    4,
    5,
    2,
    3,
    6,
    7,
    8,
    9,
    12,
    13,
    10,
    11,
    14,
    15,
  ]);
  const o = windowOrder(6, 3);
  assert.deepEqual([...o].sort((a, b) => a - b), Array.from({ length: 36 }, (_, i) => i));
  assert.deepEqual(Array.from(windowOrder(4, 0)), Array.from({ length: 16 }, (_, i) => i));
  assert.throws(() => windowOrder(6, 4), /does not divide/);
});

Deno.test("VitBackbone.forward() equals the encoder's blocks run per window, in raster order", () => {
  const shape = resolveShape(
    { preset: "vit-micro-28", patchSize: 4, dim: 16, depth: 2, heads: 2 },
    1,
    16,
  );
  const store = new ParamStore(3);
  const vit = new VisionTransformer(store, shape);
  const B = 2, L = vit.numPatches, g = vit.gridSize; // 4x4 grid
  const images = tf.randomNormal([B, 16, 16, 1], 0, 1, "float32", 7).dataSync() as Float32Array;
  for (const [windowSize, globalBlocks] of [[4, [1]], [2, [] as number[]]] as const) {
    const bb = new VitBackbone(vit, { windowSize, globalBlocks: [...globalBlocks] });
    const rows = bb.patches(images, B);
    const feat = tf.tidy(() => bb.forward(tf.tensor2d(rows, [B * L, vit.patchDim]), B));
    // reference: raster-order tokens (no CLS), each window through forwardTokens on its own
    const ref = tf.tidy(() => {
      const raster = new Float32Array(rows.length);
      for (let b = 0; b < B; b++) {
        for (let k = 0; k < L; k++) {
          raster.set(
            rows.subarray((b * L + k) * vit.patchDim, (b * L + k + 1) * vit.patchDim),
            (b * L + bb.order[k]) * vit.patchDim,
          );
        }
      }
      const x = tf.add(
        vit.patchEmbed.apply(tf.tensor2d(raster, [B * L, vit.patchDim])).reshape([B, L, 16]),
        vit.pos,
      ) as tf.Tensor3D;
      if (windowSize === 4) return vit.forwardTokens(x).tokens.reshape([B, g, g, 16]);
      const out = tf.buffer([B, g, g, 16]);
      const xs = x.arraySync() as number[][][];
      for (let wy = 0; wy < 2; wy++) {
        for (let wx = 0; wx < 2; wx++) {
          const cells = [0, 1, 2, 3].map((i) => [wy * 2 + (i >> 1), wx * 2 + (i & 1)]);
          const win = tf.tensor3d(xs.map((t) => cells.map(([y, xx]) => t[y * g + xx])));
          const y = vit.forwardTokens(win).tokens.arraySync() as number[][][];
          for (let b = 0; b < B; b++) {
            cells.forEach(([yy, xx], i) => y[b][i].forEach((v, c) => out.set(v, b, yy, xx, c)));
          }
        }
      }
      return out.toTensor();
    });
    assert.ok(maxAbsDiff(feat, ref) < 1e-4, `window ${windowSize}`);
    tf.dispose([feat, ref]);
    bb.dispose();
  }
  vit.dispose();
  store.dispose();
});

Deno.test("buildTargets() puts one object on its level with the right centre and box terms", () => {
  // 32 px input, strides 2 and 4, objectCells 6: a 10 px object is closest to 6 cells at stride 2.
  assert.equal(assignLevel(10, [2, 4], 6), 0);
  assert.equal(assignLevel(30, [2, 4], 6), 1);
  const mask = new Uint8Array(32 * 32);
  for (let y = 6; y < 14; y++) for (let x = 4; x < 14; x++) mask[y * 32 + x] = 1;
  const t = buildTargets([[], [{ label: 2, bbox: [4, 6, 10, 8], mask }]], {
    imageSize: 32,
    numClasses: 3,
    strides: [2, 4],
    protoStride: 2,
    objectCells: 6,
  });
  assert.equal(t.numPos, 1);
  assert.equal(t.totalCells, 2 * 16 * 16 + 2 * 8 * 8);
  // centre (9, 10) px = (4.5, 5) cells at stride 2 -> cell (x 4, y 5) of image 1
  const cell = (1 * 16 + 5) * 16 + 4;
  assert.equal(t.heat[0][cell * 3 + 2], 1);
  assert.equal(t.regMask[0][cell], 1);
  const r = Array.from(t.reg[0].subarray(cell * 4, cell * 4 + 4));
  assert.deepEqual(r.map((v) => Math.round(v * 1e5) / 1e5), [
    0.5,
    0,
    Math.round(Math.log(5) * 1e5) / 1e5,
    Math.round(Math.log(4) * 1e5) / 1e5,
  ]);
  assert.equal(t.select[cell], 1);
  assert.equal(t.select.reduce((a, b) => a + b, 0), 1);
  // the mask target covers the object's own image only, weights sum to 1
  const P = 16 * 16;
  assert.equal(t.maskWeight.subarray(0, P).reduce((a, b) => a + b, 0), 0);
  assert.ok(Math.abs(t.maskWeight.subarray(P, 2 * P).reduce((a, b) => a + b, 0) - 1) < 1e-5);
  assert.equal(t.maskTarget[P + 4 * 16 + 3], 1); // proto cell (x 3, y 4) = pixels 6..7 x 8..9: inside
  assert.equal(t.heat[1].reduce((a, b) => a + b, 0), 0);
});

Deno.test("nms() keeps the best box per class and cluster", () => {
  const d = [
    { label: 0, bbox: [0, 0, 10, 10], score: 0.9 },
    { label: 0, bbox: [1, 1, 10, 10], score: 0.8 },
    { label: 1, bbox: [1, 1, 10, 10], score: 0.7 },
    { label: 0, bbox: [20, 20, 5, 5], score: 0.6 },
  ];
  assert.deepEqual(nms(d, 0.5).map((x) => x.score), [0.9, 0.7, 0.6]);
});

Deno.test("vitDetLrScales() decays deeper-first like ViTDet", () => {
  const s = vitDetLrScales(
    [
      "encoder.patch_embed.weight",
      "encoder.blocks.0.attn.qkv.weight",
      "encoder.blocks.1.mlp.fc1.bias",
      "encoder.norm.weight",
      "head.tower.weight",
    ],
    2,
    0.5,
  );
  assert.deepEqual(s, [0.125, 0.25, 0.5, 1, 1]);
});

/** Ten 28x28 items: a filled square of side 10..19 px, three classes. */
const squares: ItemSource = {
  length: 10,
  get(i: number) {
    const data = new Uint8Array(28 * 28);
    const s = 10 + i, o = Math.floor((28 - s) / 2);
    for (let y = o; y < o + s; y++) for (let x = o; x < o + s; x++) data[y * 28 + x] = 220;
    return Promise.resolve({ image: { data, height: 28, width: 28, channels: 1 }, label: i % 3 });
  },
};

Deno.test("Detector forward, loss and decode have the documented shapes and leak nothing", async () => {
  const shape = resolveShape(
    { preset: "vit-micro-28", patchSize: 4, dim: 16, depth: 2, heads: 2 },
    1,
    32,
  );
  const det = new Detector(shape, { ...DETECTOR_DEFAULTS, numClasses: 3, width: 8, protos: 4 }, 0);
  assert.deepEqual(det.strides, [2, 4]);
  const before = tf.memory().numTensors;
  const B = 2;
  const patches = tf.randomNormal([B * det.vit.numPatches, det.vit.patchDim]) as tf.Tensor2D;
  const out = det.predictRaw(patches, B);
  assert.deepEqual(out.heat.map((h) => h.shape), [[2, 16, 16, 3], [2, 8, 8, 3]]);
  assert.deepEqual(out.reg[1].shape, [2, 8, 8, 4]);
  assert.deepEqual(out.coef[0].shape, [2, 16, 16, 4]);
  assert.deepEqual(out.protos.shape, [2, 16, 16, 4]);
  const dets = await decodeDetections(out, {
    imageSize: 32,
    strides: det.strides,
    protoStride: 2,
    maxDets: 5,
  });
  assert.equal(dets.length, 2);
  for (const d of dets[0]) {
    assert.ok(d.mask && d.mask.length === 32 * 32);
    assert.ok(d.bbox[0] >= 0 && d.bbox[0] + d.bbox[2] <= 32 + 1e-9);
  }
  assert.ok(dets[0].length <= 5);
  disposeOutput(out);
  const t = buildTargets([[{ label: 1, bbox: [3, 3, 12, 9], mask: null }], []], {
    imageSize: 32,
    numClasses: 3,
    strides: det.strides,
    protoStride: det.protoStride,
    objectCells: 6,
  });
  const loss = tf.tidy(() => det.loss(det.forward(patches, B), t).total);
  assert.ok(Number.isFinite(loss.dataSync()[0]));
  loss.dispose();
  patches.dispose();
  assert.equal(tf.memory().numTensors, before);
  det.dispose();
});

Deno.test("fineTuneDetector() trains, evaluates, writes its run folder and skips it when done", async () => {
  const dir = await Deno.makeTempDir({ prefix: "detect_model_test_" });
  try {
    const d = await writeCocoScenes(`${dir}/data`, {
      count: 8,
      seed: 1,
      split: "train",
      size: 32,
      source: squares,
      maxObjects: 2,
    });
    const ds = await openCocoDataset({
      annotations: d.annotations,
      images: d.images,
      inputSize: 32,
      channels: 1,
    });
    const opts = {
      runDir: `${dir}/run`,
      backbone: {
        kind: "random" as const,
        model: { preset: "vit-micro-28", patchSize: 4, dim: 16, depth: 1, heads: 2 },
      },
      trainSet: ds,
      valSet: ds,
      detector: { width: 8, protos: 4 },
      train: { steps: 12, batchSize: 4, warmupSteps: 2, lr: 3e-3, logEvery: 4 },
      quiet: true,
    };
    const before = tf.memory().numTensors;
    const r = await fineTuneDetector(opts);
    assert.equal(tf.memory().numTensors, before);
    assert.ok(r.finalLoss < r.firstLoss, `loss ${r.firstLoss} -> ${r.finalLoss}`);
    for (const k of ["AP", "AP50", "AP75"] as const) {
      assert.ok(r.box[k] >= 0 && r.box[k] <= 1, `box ${k} = ${r.box[k]}`);
      assert.ok(r.mask[k] >= 0 && r.mask[k] <= 1, `mask ${k} = ${r.mask[k]}`);
    }
    for (
      const f of [
        "config.json",
        "metrics.jsonl",
        "results.json",
        "detections_val.json",
        "checkpoints/detector.ckpt",
        "plots/predictions.png",
        "plots/loss.png",
      ]
    ) {
      await Deno.stat(`${dir}/run/${f}`);
    }
    const again = await fineTuneDetector(opts);
    assert.deepEqual(again.box, r.box);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("buildDetector() loads a pre-training run's encoder at a larger input", async () => {
  const dir = await Deno.makeTempDir({ prefix: "detect_build_test_" });
  try {
    const { config } = resolveConfig({
      argv: [
        "--data.name=synthetic",
        "--data.limit=32",
        "--data.imageSize=16",
        "--model.preset=vit-micro-28",
        "--model.patchSize=4",
        "--model.dim=16",
        "--model.depth=1",
        "--model.heads=2",
        "--model.decoderDim=8",
        "--model.decoderDepth=1",
        "--model.decoderHeads=2",
        "--train.batchSize=16",
        "--train.epochs=1",
        "--train.ckptEvery=0",
        "--run.backend=cpu",
        `--run.dir=${dir}/pre`,
      ],
    });
    await pretrain(config, { quiet: true, figures: false });
    const run = await loadRun(`${dir}/pre`);
    const { det, mean } = await buildDetector({ kind: "run", runDir: `${dir}/pre` }, 32, 3, 5, {
      width: 8,
      protos: 4,
    }, 0);
    assert.equal(det.shape.imageSize, 32);
    assert.equal(det.vit.gridSize, 8);
    assert.deepEqual(mean, run.info.mean);
    let n = 0;
    for (const [name, p] of run.model.store.params) {
      if (!name.startsWith("encoder.")) continue;
      assert.ok(maxAbsDiff(p.variable, det.store.params.get(name)!.variable) === 0, name);
      n++;
    }
    assert.ok(n > 10);
    await assert.rejects(
      () => buildDetector({ kind: "run", runDir: `${dir}/pre` }, 30, 3, 5, {}, 0),
      /not a multiple of the patch size 4/,
    );
    run.model.dispose();
    det.dispose();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
