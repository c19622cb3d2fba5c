/**
 * The saliency sources behind `amt.saliency` (rollout, registers, ema-teacher, loss, and
 * `amt.invert`), and the two knobs that change what the attention sees (`data.normalize`,
 * `train.noDecay`), each against a case computed by hand.
 */
import assert from "node:assert/strict";
import { tf } from "./_tf.ts";
import { TINY_MODEL_ARGS } from "./_tiny.ts";
import { attentionRollout, rolloutSaliency } from "../lib/amt/rollout.ts";
import { minMaxRows } from "../lib/amt/_minmax.ts";
import { computeSaliency, saliencyFromAttention } from "../lib/amt/saliency.ts";
import { EmaTeacher } from "../lib/amt/teacher.ts";
import {
  computeLossSaliency,
  coveringPatchPlans,
  coveringPlans,
  lossErrorMap,
  minMaxHost,
} from "../lib/amt/loss_map.ts";
import { AmtPlanner, type AmtPlannerOptions } from "../lib/amt/planner.ts";
import { ConfigError, resolveConfig } from "../lib/config/mod.ts";
import { applyCrop } from "../lib/data/augment.ts";
import { loadBatch } from "../lib/data/batch.ts";
import { normalizedDataset } from "../lib/data/normalize.ts";
import { SyntheticDataset } from "../lib/data/synthetic.ts";
import { FULL_BOX } from "../lib/data/types.ts";
import { openEvalSplit } from "../lib/eval/data.ts";
import { encoderParams, layerId } from "../lib/eval/finetune.ts";
import { MaskedAutoencoder } from "../lib/mim/mae.ts";
import type { MaskPlan } from "../lib/mim/plan.ts";
import { randomMaskPlan, RandomMaskPlanner } from "../lib/mim/random.ts";
import { SimMim } from "../lib/mim/simmim.ts";
import type { MimModel } from "../lib/mim/types.ts";
import { AdamW } from "../lib/optim/adamw.ts";
import { pretrain } from "../lib/pretrain/mod.ts";
import { closeRun, setupPretrain } from "../lib/pretrain/setup.ts";
import { loadCheckpoint, readMetrics } from "../lib/run/mod.ts";
import { makeRng } from "../lib/util/rng.ts";
import { ParamStore } from "../lib/vit/params.ts";
import { patchify } from "../lib/vit/patch.ts";
import type { VitShape } from "../lib/vit/presets.ts";
import { VisionTransformer } from "../lib/vit/vit.ts";

/** 16 px, patch 4 (L = 16), one channel, two blocks. */
const SHAPE: VitShape = {
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
const L = 16, PPC = 16;

function randomPatches3d(B: number, seed: number): tf.Tensor3D {
  const rng = makeRng(seed, "sources");
  return tf.tensor3d(Float32Array.from({ length: B * L * PPC }, () => rng() * 2 - 1), [B, L, PPC]);
}

function close(a: ArrayLike<number>, b: ArrayLike<number>, tol: number, what: string): void {
  assert.equal(a.length, b.length, `${what}: length`);
  for (let i = 0; i < a.length; i++) {
    assert.ok(Math.abs(a[i] - b[i]) <= tol, `${what}[${i}]: ${a[i]} vs ${b[i]}`);
  }
}

/** The un-augmented patches of dataset images 0..n-1, [n*L, ppc] on the host. */
async function datasetPatches(ds: SyntheticDataset, n: number): Promise<Float32Array> {
  const idx = Array.from({ length: n }, (_, i) => i);
  const batch = await loadBatch(ds, idx, { imageSize: 16, augment: false, rng: makeRng(0) });
  return patchify(batch.images, n, 16, 1, 4);
}

function plannerOptions(over: Partial<AmtPlannerOptions> = {}): AmtPlannerOptions {
  return {
    strategy: "amt",
    maskRatio: 0.25,
    throwRatio: 0.25,
    counting: "floor",
    warmup: 1,
    interval: 1,
    epochs: 3,
    maskUnit: 4,
    batchSize: 4,
    seed: 0,
    ...over,
  };
}

// ---- rollout --------------------------------------------------------------------------------

Deno.test("attentionRollout() of a hand-built 2-block attention is the CLS row of Â2 Â1 over the patches", () => {
  // B = 1, H = 2, T = 3 (CLS + 2 patches); rows are post-softmax (sum to 1)
  const a1 = [
    [[.5, .25, .25], [.2, .6, .2], [.1, .1, .8]],
    [[.3, .3, .4], [.4, .4, .2], [0, .5, .5]],
  ];
  const a2 = [
    [[.2, .5, .3], [.3, .3, .4], [.25, .25, .5]],
    [[.6, .2, .2], [.1, .8, .1], [.5, 0, .5]],
  ];
  // by hand: Â = (mean_h A + I) / rowsum, e.g. Â1 row 0 = ([.4, .275, .325] + [1, 0, 0]) / 2
  //   Â1 = [[.7, .1375, .1625], [.15, .75, .1], [.025, .15, .825]]
  //   Â2 = [[.7, .175, .125], [.1, .775, .125], [.1875, .0625, .75]]
  //   (Â2 Â1)[0, 1] = .7 * .1375 + .175 * .75 + .125 * .15 = .24625
  //   (Â2 Â1)[0, 2] = .7 * .1625 + .175 * .1 + .125 * .825 = .234375
  const [r, r2, one] = tf.tidy(() => {
    const A1 = tf.tensor4d([a1]), A2 = tf.tensor4d([a2]);
    return [
      attentionRollout([A1, A2]).dataSync(),
      attentionRollout([A1, A2], 2).dataSync(), // a register at position 1: patch column 2 only
      attentionRollout([A1]).dataSync(), // one block: Â1's CLS row
    ];
  });
  close(r, [0.24625, 0.234375], 1e-6, "rollout");
  close(r2, [0.234375], 1e-6, "rollout after a register");
  close(one, [0.1375, 0.1625], 1e-6, "one block");
});

Deno.test("rolloutSaliency() equals the min-max rollout of every block's attention (with and without registers), leaking nothing", () => {
  for (const registers of [0, 2]) {
    const store = new ParamStore(3);
    const vit = new VisionTransformer(store, { ...SHAPE, registers }, "encoder");
    const x = randomPatches3d(2, registers);
    try {
      const expected = tf.tidy(() => {
        // every block's attention by hand: embed, then each block on the previous one's output
        let h = vit.embed(x.reshape([2 * L, PPC]), null, null, 2);
        const atts: tf.Tensor4D[] = [];
        for (const block of vit.blocks) {
          const out = block.apply(h, { keepAttention: true });
          atts.push(out.attention!);
          h = out.out;
        }
        assert.deepEqual(atts[0].shape, [2, 2, 1 + registers + L, 1 + registers + L]);
        return minMaxRows(attentionRollout(atts, 1 + registers)).dataSync();
      });
      const before = tf.memory().numTensors;
      const got = rolloutSaliency(vit, x);
      const values = got.dataSync();
      got.dispose();
      assert.equal(tf.memory().numTensors, before, "rolloutSaliency() leaks");
      close(values, expected, 1e-5, `rollout, ${registers} registers`);
      assert.ok(Math.min(...values) >= 0 && Math.max(...values) <= 1 + 1e-6);
      // the last visited attention is lastAttention()
      let last: Float32Array | Int32Array | Uint8Array | undefined;
      vit.forEachAttention(x, (a, i) => {
        if (i === vit.blocks.length - 1) last = a.dataSync();
      });
      close(last!, tf.tidy(() => vit.lastAttention(x).dataSync()), 1e-6, "last block");
    } finally {
      x.dispose();
      vit.dispose();
      store.dispose();
    }
  }
});

// ---- registers ------------------------------------------------------------------------------

Deno.test("registers: N tokens after CLS inside the blocks, dropped from every output and from the map", () => {
  const store = new ParamStore(1);
  const vit = new VisionTransformer(store, { ...SHAPE, registers: 2 }, "encoder");
  const x = randomPatches3d(2, 7);
  try {
    assert.equal(vit.prefixTokens, 3);
    const reg = store.params.get("encoder.registers")!;
    assert.deepEqual(reg.variable.shape, [1, 2, 16]);
    assert.equal(reg.group, "tokens");
    tf.tidy(() => {
      const e = vit.embed(x.reshape([2 * L, PPC]), null, null, 2);
      assert.deepEqual(e.shape, [2, 1 + 2 + L, 16]); // [CLS | registers | patches]
      // the registers sit at positions 1..2, the same learned rows for every image
      const regs = e.slice([0, 1, 0], [2, 2, 16]);
      close(regs.dataSync(), tf.concat([reg.variable, reg.variable]).dataSync(), 0, "registers");
      const f = vit.forwardFeatures(x, true);
      assert.deepEqual(f.tokens.shape, [2, 1 + L, 16]); // registers dropped
      assert.deepEqual(f.attention!.shape, [2, 2, 3 + L, 3 + L]); // attention keeps them
      // by hand: the blocks and the norm on all 19 tokens, then positions 1..2 removed
      let h = e;
      for (const block of vit.blocks) h = block.apply(h).out;
      const full = vit.norm.apply(h) as tf.Tensor3D; // [2, 19, 16]
      const kept = tf.concat(
        [full.slice([0, 0, 0], [2, 1, 16]), full.slice([0, 3, 0], [2, L, 16])],
        1,
      );
      close(f.tokens.dataSync(), kept.dataSync(), 1e-5, "tokens");
      close(f.cls.dataSync(), full.slice([0, 0, 0], [2, 1, 16]).dataSync(), 1e-5, "cls");
      // the map: CLS row over the patch columns; the registers' columns never count
      const sal = saliencyFromAttention(f.attention!, vit.prefixTokens);
      assert.deepEqual(sal.shape, [2, L]);
    });
    // fine-tuning trains them with the CLS token's layer (0 of layer-wise lr decay)
    assert.ok(encoderParams(vit).some((p) => p.name === "encoder.registers"));
    assert.equal(layerId("encoder.registers", 2), 0);
    // a hand-built attention: CLS row [CLS .1 | registers .5 .2 | patches .05 .1 .05]
    const T = 6;
    const a = new Float32Array(T * T).fill(1 / T);
    a.set([0.1, 0.5, 0.2, 0.05, 0.1, 0.05], 0);
    const s = tf.tidy(() => saliencyFromAttention(tf.tensor4d(a, [1, 1, T, T]), 3).dataSync());
    close(s, [0, 1, 0], 1e-6, "registers left out of the min-max");
  } finally {
    x.dispose();
    vit.dispose();
    store.dispose();
  }
});

Deno.test("MAE and SimMIM with registers: encoder outputs drop them, losses see only patches", () => {
  const shape = { ...SHAPE, registers: 3 };
  const mae = new MaskedAutoencoder({ shape, normPixLoss: true, seed: 0 });
  const simmim = new SimMim({ shape, seed: 0 });
  const patches = tf.tidy(() => randomPatches3d(2, 11).reshape([2 * L, PPC]) as tf.Tensor2D);
  const plan = randomMaskPlan(2, L, 0.75, makeRng(0, "plan"), "floor"); // 12 masked, 4 visible
  try {
    assert.equal(mae.store.params.get("encoder.registers")!.decay, true); // MAE decays tokens
    assert.equal(simmim.store.params.get("encoder.registers")!.decay, false); // SimMIM does not
    tf.tidy(() => {
      const idx = {
        visibleFlat: tf.tensor1d(plan.visible.map((v, i) => Math.floor(i / 4) * L + v), "int32"),
        visiblePos: tf.tensor1d(plan.visible, "int32"),
        maskedFlat: tf.tensor1d(plan.masked.map((v, i) => Math.floor(i / 12) * L + v), "int32"),
        maskedPos: tf.tensor1d(plan.masked, "int32"),
      };
      assert.deepEqual(mae.encode(patches, plan, idx).shape, [2, 1 + 4, 16]); // [CLS | visible]
      assert.deepEqual(simmim.encode(patches, plan, idx).shape, [2, 1 + 4 + 12, 16]);
      // the losses are those of the masked patches' predictions against their own targets
      const host = patches.dataSync();
      const target = (b: number, k: number, per: number, norm: boolean) => {
        const p = plan.masked[b * per + k];
        const row = Array.from(host.subarray((b * L + p) * PPC, (b * L + p + 1) * PPC));
        if (!norm) return row;
        const mean = row.reduce((s, v) => s + v, 0) / PPC;
        const v = row.reduce((s, x) => s + (x - mean) ** 2, 0) / (PPC - 1);
        return row.map((x) => (x - mean) / Math.sqrt(v + 1e-6));
      };
      const score = (m: MimModel, norm: boolean, f: (d: number) => number) => {
        const pred = m.predict(patches, plan).dataSync();
        assert.equal(pred.length, 2 * 12 * PPC); // masked patches only
        let s = 0;
        for (let b = 0; b < 2; b++) {
          for (let k = 0; k < 12; k++) {
            const t = target(b, k, 12, norm);
            for (let q = 0; q < PPC; q++) s += f(pred[(b * 12 + k) * PPC + q] - t[q]);
          }
        }
        return s / (2 * 12 * PPC);
      };
      const maeLoss = mae.lossFn(patches, plan).dataSync()[0];
      const simLoss = simmim.lossFn(patches, plan).dataSync()[0];
      assert.ok(Math.abs(maeLoss - score(mae, true, (d) => d * d)) < 1e-5, `MAE ${maeLoss}`);
      assert.ok(Math.abs(simLoss - score(simmim, false, Math.abs)) < 1e-5, `SimMIM ${simLoss}`);
    });
    // the registers are trained: they get a gradient through the attention
    const reg = mae.store.params.get("encoder.registers")!.variable;
    const { value, grads } = tf.variableGrads(() => mae.lossFn(patches, plan), [reg]);
    const g = grads[reg.name].dataSync();
    assert.ok(g.some((v) => v !== 0) && g.every(Number.isFinite));
    value.dispose();
    tf.dispose(Object.values(grads));
  } finally {
    patches.dispose();
    mae.dispose();
    simmim.dispose();
  }
});

Deno.test("config: amt.saliency = registers needs model.registers > 0 (both keys named); emaMomentum and noDecay are checked", () => {
  const bad = (argv: string[], ...words: string[]) => {
    try {
      resolveConfig({ argv });
    } catch (e) {
      assert.ok(e instanceof ConfigError, String(e));
      for (const w of words) assert.ok(e.message.includes(w), `"${w}" not in: ${e.message}`);
      return;
    }
    assert.fail(`accepted ${argv.join(" ")}`);
  };
  bad(["--amt.saliency=registers"], "amt.saliency", "model.registers");
  bad(["--amt.saliency=rolout"], "amt.saliency", "rollout");
  bad(["--amt.emaMomentum=1"], "amt.emaMomentum");
  bad(["--train.noDecay=bias,tokes"], "train.noDecay", "tokes", "bias, norm, tokens");
  bad(["--model.registers=-1"], "model.registers");
  bad(["--data.normalize=none"], "data.normalize", "standard, unit");
  const ok = resolveConfig({ argv: ["--amt.saliency=registers", "--model.registers=4"] }).config;
  assert.equal(ok.model.registers, 4);
  const d = resolveConfig({ argv: [] }).config;
  assert.deepEqual(
    [d.amt.saliency, d.amt.invert, d.amt.emaMomentum, d.model.registers, d.data.normalize],
    ["cls-last", false, 0.996, 0, "standard"],
  );
  assert.equal(d.train.noDecay, "auto");
});

// ---- ema-teacher ----------------------------------------------------------------------------

Deno.test("EmaTeacher: each update is θ_t = m θ_t + (1 - m) θ_s; its state round-trips", () => {
  const store = new ParamStore(0);
  const student = new VisionTransformer(store, SHAPE, "encoder");
  const teacher = new EmaTeacher(student, 0.9);
  const other = new EmaTeacher(student, 0.9);
  try {
    const names = ["encoder.cls_token", "encoder.blocks.1.attn.qkv.weight", "encoder.norm.bias"];
    const s = (n: string) => store.params.get(n)!.variable;
    const t = (e: EmaTeacher, n: string) => e.store.params.get(n)!.variable.dataSync();
    const s0 = names.map((n) => s(n).dataSync());
    for (const [i, n] of names.entries()) close(t(teacher, n), s0[i], 0, `copy ${n}`);
    // step 1: the student moves by +1; the teacher by a tenth of the gap
    for (const n of names) tf.tidy(() => s(n).assign(tf.add(s(n), 1)));
    teacher.update();
    const t1 = names.map((_n, i) => s0[i].map((v) => 0.9 * v + 0.1 * (v + 1)));
    for (const [i, n] of names.entries()) close(t(teacher, n), t1[i], 1e-6, `step 1 ${n}`);
    // step 2: the student doubles
    for (const n of names) tf.tidy(() => s(n).assign(tf.mul(s(n), 2)));
    teacher.update();
    const t2 = names.map((_n, i) => t1[i].map((v, j) => 0.9 * v + 0.1 * 2 * (s0[i][j] + 1)));
    for (const [i, n] of names.entries()) close(t(teacher, n), t2[i], 1e-6, `step 2 ${n}`);
    assert.equal(teacher.updates, 2);
    // checkpoint round trip into a teacher that followed nothing
    const state = teacher.saveState();
    assert.ok(state.has("ema/encoder.cls_token") && state.has("ema_updates"));
    assert.equal(other.loadState(state), true);
    for (const [i, n] of names.entries()) close(t(other, n), t2[i], 1e-6, `restored ${n}`);
    assert.equal(other.updates, 2);
    assert.equal(other.loadState(new Map()), false, "no teacher in the checkpoint");
    assert.throws(() => new EmaTeacher(student, 1), /emaMomentum/);
  } finally {
    teacher.dispose();
    other.dispose();
    student.dispose();
    store.dispose();
  }
});

Deno.test("AmtPlanner ema-teacher: afterStep updates the teacher, its maps are the teacher's, and its state is checkpointed", async () => {
  const ds = new SyntheticDataset({ count: 4, size: 16, channels: 1, seed: 5 });
  const mae = new MaskedAutoencoder({ shape: SHAPE, normPixLoss: true, seed: 0 });
  const opts = plannerOptions({ saliency: "ema-teacher", emaMomentum: 0.5 });
  const planner = new AmtPlanner(opts, mae, ds, 16, new RandomMaskPlanner(0.75), () => {});
  const fresh = new AmtPlanner(opts, mae, ds, 16, new RandomMaskPlanner(0.75), () => {});
  try {
    const cls = mae.store.params.get("encoder.cls_token")!.variable;
    const q = mae.store.params.get("encoder.blocks.1.attn.qkv.weight")!.variable;
    const before = cls.dataSync();
    tf.tidy(() => {
      cls.assign(tf.add(cls, 2));
      q.assign(tf.mul(q, 3));
    });
    planner.afterStep();
    const tCls = planner.teacher!.store.params.get("encoder.cls_token")!.variable.dataSync();
    close(tCls, before.map((v) => 0.5 * v + 0.5 * (v + 2)), 1e-6, "teacher cls");
    // the pass reads the teacher, not the student
    const pass = await planner.saliencyPass(1);
    const teacherMaps = await computeSaliency(planner.teacher!.encoder, ds, {
      imageSize: 16,
      batchSize: 4,
    });
    const studentMaps = await computeSaliency(mae.encoder, ds, { imageSize: 16, batchSize: 4 });
    close(pass.maps, teacherMaps.maps, 1e-6, "maps");
    assert.ok(pass.maps.some((v, i) => Math.abs(v - studentMaps.maps[i]) > 1e-3));
    const stats = await planner.afterEpoch(0);
    assert.equal(stats && stats.saliencySource, "ema-teacher");
    // checkpoint: maps and teacher into a fresh planner (whose teacher is the current student)
    const saved = planner.saveState();
    assert.ok(saved.has("ema/encoder.blocks.1.attn.qkv.weight"));
    fresh.loadState(saved as never);
    for (const [name, p] of planner.teacher!.store.params) {
      close(
        fresh.teacher!.store.params.get(name)!.variable.dataSync(),
        p.variable.dataSync(),
        0,
        name,
      );
    }
    close(fresh.store.maps, planner.store.maps, 0, "maps restored");
    // a checkpoint without a teacher: the average restarts from the (restored) student
    fresh.loadState(new Map([...saved].filter(([k]) => !k.startsWith("ema")) as never));
    close(
      fresh.teacher!.store.params.get("encoder.cls_token")!.variable.dataSync(),
      cls.dataSync(),
      0,
      "restart",
    );
  } finally {
    planner.dispose();
    fresh.dispose();
    mae.dispose();
  }
});

Deno.test("pretrain() with amt.saliency = ema-teacher: one EMA step per optimiser step, source recorded, exact resume", async () => {
  const args = (dir: string) => [
    ...TINY_MODEL_ARGS,
    "--data.limit=64",
    "--train.epochs=3",
    "--train.baseLr=1e-3",
    "--train.logEvery=1",
    "--train.ckptEvery=0",
    "--run.vizImages=0",
    "--amt.strategy=amt",
    "--amt.warmup=1",
    "--amt.interval=1",
    "--amt.batchSize=32",
    "--amt.saliency=ema-teacher",
    "--amt.emaMomentum=0.9",
    `--run.dir=${dir}`,
  ];
  const straightDir = await Deno.makeTempDir();
  const dir = await Deno.makeTempDir();
  try {
    const straight: number[] = [];
    await pretrain(resolveConfig({ argv: args(straightDir) }).config, {
      quiet: true,
      figures: false,
      onStep: (_s, l) => straight.push(l),
    });
    const epochs = (await readMetrics(`${straightDir}/metrics.jsonl`)).filter((m) =>
      m.type === "epoch"
    );
    assert.deepEqual(epochs.map((e) => e.saliencySource), [
      "ema-teacher",
      "ema-teacher",
      undefined,
    ]);
    assert.deepEqual(epochs.map((e) => e.saliencyInverted), [0, 0, undefined]);
    const ckpt = (await loadCheckpoint(`${straightDir}/checkpoints/checkpoint.ckpt`))!.ckpt;
    assert.equal((ckpt.arrays.get("planner/ema_updates")!.data as Int32Array)[0], 12);
    assert.ok(ckpt.arrays.has("planner/ema/encoder.cls_token"));

    const cfg = resolveConfig({ argv: args(dir) }).config;
    const resumed: number[] = [];
    const onStep = (_s: number, l: number) => resumed.push(l);
    await pretrain(cfg, { quiet: true, figures: false, stopAfterSteps: 6, onStep });
    await pretrain(cfg, { quiet: true, figures: false, onStep });
    assert.equal(resumed.length, straight.length);
    for (let i = 0; i < straight.length; i++) {
      assert.ok(
        Math.abs(resumed[i] - straight[i]) <= 1e-5 * Math.abs(straight[i]),
        `step ${i + 1}: ${resumed[i]} vs ${straight[i]}`,
      );
    }
    const again = (await loadCheckpoint(`${dir}/checkpoints/checkpoint.ckpt`))!.ckpt;
    const a = again.arrays.get("planner/ema/encoder.blocks.1.attn.qkv.weight")!.data;
    const b = ckpt.arrays.get("planner/ema/encoder.blocks.1.attn.qkv.weight")!.data;
    close(a, b, 1e-5, "teacher after resume");
  } finally {
    await Deno.remove(straightDir, { recursive: true });
    await Deno.remove(dir, { recursive: true });
  }
});

// ---- loss -----------------------------------------------------------------------------------

Deno.test("loss saliency: per-patch errors for a fixed plan equal a hand computation; the map is their min-max", async () => {
  const ds = new SyntheticDataset({ count: 2, size: 16, channels: 1, seed: 9 });
  const host = await datasetPatches(ds, 2); // [2*16, 16]
  // a fixed plan: image 0 masks the diagonal, image 1 the first row (4 of 16 each)
  const masked = Int32Array.of(0, 5, 10, 15, 0, 1, 2, 3);
  const visible = new Int32Array(24);
  for (let b = 0, v = 0; b < 2; b++) {
    for (let i = 0; i < L; i++) {
      if (!masked.subarray(b * 4, b * 4 + 4).includes(i)) visible[v++] = i;
    }
  }
  const plan: MaskPlan = {
    batch: 2,
    numPatches: L,
    numMasked: 4,
    numThrown: 0,
    numVisible: 12,
    masked,
    thrown: new Int32Array(0),
    visible,
  };
  for (const normPix of [true, false]) {
    const model: MimModel = normPix
      ? new MaskedAutoencoder({ shape: SHAPE, normPixLoss: true, seed: 1 })
      : new SimMim({ shape: SHAPE, seed: 1 });
    const x = tf.tensor2d(host, [2 * L, PPC]);
    try {
      const pred = tf.tidy(() => model.predict(x, plan).dataSync()); // [2*4, 16]
      // by hand: the target of each masked patch (normalised per patch for MAE, unbiased var)
      const expected = new Float32Array(2 * L);
      for (let b = 0; b < 2; b++) {
        let sum = 0;
        for (let k = 0; k < 4; k++) {
          const p = masked[b * 4 + k];
          let t = Array.from(host.subarray((b * L + p) * PPC, (b * L + p + 1) * PPC));
          if (normPix) {
            const mean = t.reduce((s, v) => s + v, 0) / PPC;
            const variance = t.reduce((s, v) => s + (v - mean) ** 2, 0) / (PPC - 1);
            t = t.map((v) => (v - mean) / Math.sqrt(variance + 1e-6));
          }
          let e = 0;
          for (let q = 0; q < PPC; q++) e += (pred[(b * 4 + k) * PPC + q] - t[q]) ** 2;
          expected[b * L + p] = e / PPC;
          sum += e / PPC;
        }
        // patches the plan leaves visible get the image's mean error (neutral)
        for (let i = 0; i < L; i++) {
          if (!masked.subarray(b * 4, b * 4 + 4).includes(i)) expected[b * L + i] = sum / 4;
        }
      }
      const before = tf.memory().numTensors;
      const errors = await lossErrorMap(model, x, [plan]);
      assert.equal(tf.memory().numTensors, before, "lossErrorMap() leaks");
      close(errors, expected, 1e-5, `errors (${model.method})`);
      const pass = await computeLossSaliency(model, ds, {
        imageSize: 16,
        batchSize: 2,
        plans: () => [plan],
      });
      close(pass.maps, minMaxHost(expected, L), 1e-4, `map (${model.method})`);
      assert.equal(Math.min(...pass.maps), 0);
      assert.ok(Math.abs(Math.max(...pass.maps) - 1) < 1e-6);
      // two plans masking a patch: its error is the mean of both
      const twice = await lossErrorMap(model, x, [plan, plan]);
      close(twice, expected, 1e-5, "same plan twice");
    } finally {
      x.dispose();
      model.dispose();
    }
  }
});

Deno.test("coveringPlans() masks every unit at least once per image, K per round; coveringPatchPlans() expands units", () => {
  const plans = coveringPlans(3, 16, 5, makeRng(1, "cover"));
  assert.equal(plans.length, 4); // ceil(16 / 5)
  for (let b = 0; b < 3; b++) {
    const seen = new Uint8Array(16);
    for (const p of plans) {
      assert.deepEqual([p.numMasked, p.numThrown, p.numVisible], [5, 0, 11]);
      const m = [...p.masked.subarray(b * 5, b * 5 + 5)];
      const v = [...p.visible.subarray(b * 11, b * 11 + 11)];
      assert.deepEqual([...m, ...v].sort((x, y) => x - y), Array.from({ length: 16 }, (_, i) => i));
      assert.deepEqual(m, [...m].sort((x, y) => x - y));
      for (const u of m) seen[u] = 1;
    }
    assert.ok(seen.every((s) => s === 1), `image ${b} not covered`);
  }
  // SimMIM-style units of 2 x 2 patches on a 4 x 4 grid: 4 units, 1 masked per round
  const units = coveringPatchPlans(1, 16, 2, 1, makeRng(2));
  assert.equal(units.length, 4);
  const blocks = units.map((p) => [...p.masked].join()).sort();
  assert.deepEqual(blocks, ["0,1,4,5", "10,11,14,15", "2,3,6,7", "8,9,12,13"]);
  assert.throws(() => coveringPlans(1, 4, 4, makeRng(0)), /masked < units/);
});

Deno.test("AmtPlanner loss source: maps in [0, 1], the same for the same epoch, recorded as the source", async () => {
  const ds = new SyntheticDataset({ count: 4, size: 16, channels: 1, seed: 3 });
  const mae = new MaskedAutoencoder({ shape: SHAPE, normPixLoss: true, seed: 0 });
  const planner = new AmtPlanner(
    plannerOptions({ saliency: "loss", lossMaskRatio: 0.75 }),
    mae,
    ds,
    16,
    new RandomMaskPlanner(0.75),
    () => {},
  );
  try {
    const before = tf.memory().numTensors;
    const a = await planner.saliencyPass(1);
    assert.equal(tf.memory().numTensors, before, "loss pass leaks");
    const b = await planner.saliencyPass(1);
    assert.equal(a.maps.length, 4 * L);
    close(a.maps, b.maps, 0, "seeded by (seed, epoch, batch)");
    assert.ok(Math.min(...a.maps) >= 0 && Math.max(...a.maps) <= 1);
    for (let i = 0; i < 4; i++) {
      const row = a.maps.subarray(i * L, (i + 1) * L);
      assert.ok(Math.min(...row) === 0 && Math.abs(Math.max(...row) - 1) < 1e-6, `image ${i}`);
    }
    const stats = await planner.afterEpoch(0);
    assert.deepEqual([stats && stats.saliencySource, stats && stats.saliencyInverted], ["loss", 0]);
  } finally {
    planner.dispose();
    mae.dispose();
  }
});

// ---- invert ---------------------------------------------------------------------------------

Deno.test("amt.invert stores 1 - map, for the attention sources and through the planner", async () => {
  const ds = new SyntheticDataset({ count: 4, size: 16, channels: 1, seed: 4 });
  const mae = new MaskedAutoencoder({ shape: SHAPE, normPixLoss: true, seed: 0 });
  try {
    for (const source of ["cls-last", "rollout"] as const) {
      const plain = await computeSaliency(mae.encoder, ds, { imageSize: 16, batchSize: 3, source });
      const inv = await computeSaliency(mae.encoder, ds, {
        imageSize: 16,
        batchSize: 3,
        source,
        invert: true,
      });
      close(inv.maps, plain.maps.map((v) => 1 - v), 1e-6, source);
    }
    const planner = new AmtPlanner(
      plannerOptions({ saliency: "rollout", invert: true }),
      mae,
      ds,
      16,
      new RandomMaskPlanner(0.75),
      () => {},
    );
    const stats = await planner.afterEpoch(0);
    assert.deepEqual([stats && stats.saliencySource, stats && stats.saliencyInverted], [
      "rollout",
      1,
    ]);
    const rollout = await computeSaliency(mae.encoder, ds, {
      imageSize: 16,
      batchSize: 4,
      source: "rollout",
    });
    close(planner.store.maps, rollout.maps.map((v) => 1 - v), 1e-6, "stored");
    await assert.rejects(
      computeSaliency(mae.encoder, ds, { imageSize: 16, batchSize: 4, source: "registers" }),
      /model.registers/,
    );
  } finally {
    mae.dispose();
  }
});

// ---- data.normalize and train.noDecay ------------------------------------------------------

/** Set a tiny run up (no training) with `extra` keys; the caller closes it. */
async function tinyRun(extra: string[]) {
  const dir = await Deno.makeTempDir();
  const { config } = resolveConfig({
    argv: [...TINY_MODEL_ARGS, "--amt.strategy=amt", `--run.dir=${dir}`, ...extra],
  });
  const dataset = new SyntheticDataset({ count: 32, size: 16, channels: 3, seed: 2 });
  const run = await setupPretrain(config, { quiet: true, figures: false, dataset });
  return {
    run,
    dataset,
    config,
    async close() {
      closeRun(run);
      await run.lock.release();
      await Deno.remove(dir, { recursive: true });
    },
  };
}

Deno.test("data.normalize = unit: the run's batches hold pixels / 255, and so do its saliency pass, run.json and evaluations", async () => {
  const unit = await tinyRun(["--data.normalize=unit"]);
  const standard = await tinyRun([]);
  try {
    const { run, dataset } = unit;
    assert.deepEqual([...run.dataset.mean], [0, 0, 0]);
    assert.deepEqual([...run.dataset.std], [1, 1, 1]);
    const batch = await loadBatch(run.dataset, [0, 1], {
      imageSize: 16,
      augment: false,
      rng: makeRng(0),
    });
    for (let b = 0; b < 2; b++) {
      const raw = applyCrop((await dataset.get(b)).image, FULL_BOX, 16, 16).data; // 0..255
      close(
        batch.images.subarray(b * raw.length, (b + 1) * raw.length),
        [...raw].map((v) => v / 255),
        1e-6,
        `image ${b}`,
      );
    }
    assert.ok(Math.max(...batch.images) <= 1 && Math.min(...batch.images) >= 0);
    // the saliency pass reads the same dataset view; run.json records the rule's constants
    assert.ok(run.planner instanceof AmtPlanner && run.planner.dataset === run.dataset);
    const info = JSON.parse(await Deno.readTextFile(`${run.paths.dir}/run.json`));
    assert.deepEqual([info.mean, info.std], [[0, 0, 0], [1, 1, 1]]);
    // evaluations open their splits with the run's data section
    const test = await openEvalSplit(unit.config.data, "test", 4);
    assert.deepEqual([...test.mean], [0, 0, 0]);
    // standard keeps the dataset's statistics (today's behaviour)
    assert.deepEqual([...standard.run.dataset.mean], [...dataset.mean]);
    const s = await loadBatch(standard.run.dataset, [0], {
      imageSize: 16,
      augment: false,
      rng: makeRng(0),
    });
    const c = 1; // channel 1 of pixel 0: (x / 255 - mean) / std
    const x = batch.images[c];
    assert.ok(Math.abs(s.images[c] - (x - dataset.mean[c]) / dataset.std[c]) < 1e-5);
    // a view keeps the reader's own methods
    assert.equal(typeof normalizedDataset(dataset, "unit").get, "function");
    assert.throws(() => normalizedDataset(dataset, "z-score"), /standard, unit/);
  } finally {
    await unit.close();
    await standard.close();
  }
});

Deno.test("train.noDecay reaches AdamW's parameter groups: auto keeps the method's, a list turns groups off", async () => {
  const groupsOf = (run: Awaited<ReturnType<typeof tinyRun>>["run"]) => {
    const out: Record<string, boolean> = {};
    for (const p of run.opt.params) out[p.name] = p.decay;
    return out;
  };
  for (
    const [spec, tokens, bias, norm] of [
      ["auto", true, false, false], // MAE's groups: tokens decay, biases and norms do not
      ["tokens", false, true, true],
      ["bias,norm,tokens", false, false, false],
      ["none", true, true, true],
    ] as const
  ) {
    const t = await tinyRun([`--train.noDecay=${spec}`, "--model.registers=2"]);
    try {
      const d = groupsOf(t.run);
      assert.equal(d["encoder.cls_token"], tokens, `${spec}: cls`);
      assert.equal(d["decoder.mask_token"], tokens, `${spec}: mask token`);
      assert.equal(d["encoder.registers"], tokens, `${spec}: registers`);
      assert.equal(d["encoder.blocks.0.attn.qkv.bias"], bias, `${spec}: bias`);
      assert.equal(d["encoder.blocks.0.norm1.weight"], norm, `${spec}: norm`);
      assert.equal(d["encoder.blocks.0.attn.qkv.weight"], true, `${spec}: matrices always`);
    } finally {
      await t.close();
    }
  }
  // and AdamW applies exactly those flags: with zero gradients only decay moves a weight
  const store = new ParamStore(0);
  const w = store.create("w", [2, 2], { kind: "ones" }, true);
  const b = store.create("b", [2], { kind: "ones" }, false);
  const tok = store.create("t_token", [1, 1, 2], { kind: "ones" }, true);
  store.setNoDecay(new Set(["tokens"]));
  assert.deepEqual([...store.params.values()].map((p) => [p.group, p.decay]), [
    ["weight", true],
    ["bias", true],
    ["tokens", false],
  ]);
  const opt = new AdamW([...store.params.values()], {
    beta1: 0.9,
    beta2: 0.95,
    eps: 1e-8,
    weightDecay: 0.5,
    clipGrad: 0,
  });
  const { loss, gradNorm } = opt.minimize(
    () => tf.mul(tf.addN([tf.sum(w), tf.sum(b), tf.sum(tok)]), 0) as tf.Scalar,
    0.1,
  );
  tf.dispose([loss, gradNorm]);
  close(w.dataSync(), [0.95, 0.95, 0.95, 0.95], 1e-6, "weight decays: 1 - lr * wd");
  close(b.dataSync(), [0.95, 0.95], 1e-6, "bias decays");
  close(tok.dataSync(), [1, 1], 1e-6, "token does not");
  opt.dispose();
  store.dispose();
});

Deno.test("configHash() leaves the new keys out at their defaults (old run folders keep their names) and names a run that sets one", async () => {
  const { configHash, HASHED_WHEN_SET } = await import("../lib/run/folder.ts");
  const { flattenConfig, RESUMABLE_KEYS } = await import("../lib/config/mod.ts");
  const { createHash } = await import("node:crypto");
  const base = resolveConfig({ argv: [] }).config;
  // the hash as it was computed before these keys existed: every non-resumable key but them
  const flat = flattenConfig(base);
  const old = Object.keys(flat)
    .filter((k) => k === "train.epochs" || !RESUMABLE_KEYS.includes(k))
    .filter((k) => !HASHED_WHEN_SET.includes(k))
    .sort()
    .map((k) => `${k}=${JSON.stringify(flat[k])}`).join("\n");
  assert.equal(configHash(base), createHash("sha256").update(old).digest("hex").slice(0, 8));
  const hashes = new Set([configHash(base)]);
  for (
    const arg of [
      "--amt.saliency=rollout",
      "--amt.invert=true",
      "--amt.emaMomentum=0.99",
      "--data.normalize=unit",
      "--model.registers=4",
      "--train.noDecay=none",
    ]
  ) hashes.add(configHash(resolveConfig({ argv: [arg] }).config));
  assert.equal(hashes.size, 7, "every key, once set, names its own folder");
});

Deno.test("patchErrors() scores a feature method against its feature targets (model.features)", async () => {
  const { patchErrors } = await import("../lib/amt/loss_map.ts");
  // a stub feature method: targets are (patch sum, patch max); it predicts (1, 0) everywhere
  const stub = {
    method: "stub",
    normPixLoss: false,
    features: {
      compute: (p: tf.Tensor2D) => tf.stack([tf.sum(p, 1), tf.max(p, 1)], 1) as tf.Tensor2D,
    },
    predict: (_p: tf.Tensor2D, plan: MaskPlan) =>
      tf.tile(tf.tensor2d([[1, 0]]), [plan.batch * plan.numMasked, 1]) as tf.Tensor2D,
  } as unknown as MimModel;
  const host = Float32Array.from({ length: 4 * 2 }, (_, i) => i % 3); // 4 patches of 2 values
  const plan: MaskPlan = {
    batch: 1,
    numPatches: 4,
    numMasked: 2,
    numThrown: 0,
    numVisible: 2,
    masked: Int32Array.of(1, 3),
    thrown: new Int32Array(0),
    visible: Int32Array.of(0, 2),
  };
  const e = tf.tidy(() => patchErrors(stub, tf.tensor2d(host, [4, 2]), plan).dataSync());
  // patch 1 = [2, 0]: target (2, 2), error ((1-2)^2 + (0-2)^2) / 2 = 2.5
  // patch 3 = [0, 1]: target (1, 1), error (0 + 1) / 2 = 0.5
  close(e, [2.5, 0.5], 1e-6, "feature errors");
});
