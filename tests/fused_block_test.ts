/**
 * The transformer block as one kernel forward and one backward (`lib/backend/_block.ts`)
 * against the composite block it replaces (`setFusedBlockEnabled(false)`): the same output, d/dx
 * and every parameter's gradient, bit for bit, in fp32 and bf16, at shapes where GELU runs on
 * wasm and where it runs on oneDNN; the same for a whole MAE and SimMIM loss; no tensor or heap
 * buffer left behind; drop-path's branches scaled as the composite block scales them; and the
 * paths that must stay composite (kept attention, textbook layers) do. Needs the native matmul
 * (CI: AMT_REQUIRE_BLAS=1, AMT_REQUIRE_DNNL=1).
 */
import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import {
  backendSummary,
  fusedBlockAvailable,
  fusedBlockStats,
  initBackend,
  ops,
  resetFusedBlockStats,
  setFusedBlockEnabled,
  setMatmulPrecision,
} from "../lib/backend/mod.ts";
import type { BlockParams } from "../lib/backend/ops.ts";
import { MaskedAutoencoder } from "../lib/mim/mae.ts";
import { SimMim } from "../lib/mim/simmim.ts";
import { randomMaskPlan, unitRandomMaskPlan } from "../lib/mim/random.ts";
import { makeRng } from "../lib/util/rng.ts";
import { Block, setTextbookLayers } from "../lib/vit/layers.ts";
import { ParamStore } from "../lib/vit/params.ts";
import type { VitShape } from "../lib/vit/presets.ts";

const info = await initBackend({ backend: "wasm", quiet: true });
const haveBlas = info.nativeMatmul === true;
const haveDnnl = backendSummary().dnnl !== undefined;
const PRECISIONS = haveDnnl ? ["fp32", "bf16"] as const : ["fp32"] as const;

function values(n: number, seed: number, scale = 1): Float32Array {
  const rng = makeRng(seed, "fused-block");
  return Float32Array.from({ length: n }, () => (rng() * 2 - 1) * scale);
}

/** Indices where two arrays differ in any bit (NaN against NaN counts as equal). */
function bitDiffs(a: Float32Array, b: Float32Array): number {
  assert.equal(a.length, b.length);
  const ua = new Uint32Array(a.buffer, a.byteOffset, a.length);
  const ub = new Uint32Array(b.buffer, b.byteOffset, b.length);
  let n = 0;
  for (let i = 0; i < ua.length; i++) if (ua[i] !== ub[i]) n++;
  return n;
}

/** Runs `fn` with the one-kernel block off, then on; returns both read back, and the kernel counts. */
function bothPaths(fn: () => tf.Tensor[]) {
  const read = (on: boolean) => {
    setFusedBlockEnabled(on);
    resetFusedBlockStats();
    try {
      const out = tf.tidy(fn);
      const data = out.map((t) => t.dataSync() as Float32Array);
      tf.dispose(out);
      return { data, stats: fusedBlockStats() };
    } finally {
      setFusedBlockEnabled(true);
    }
  };
  return { composite: read(false), fused: read(true) };
}

function assertSame(what: string, names: string[], r: ReturnType<typeof bothPaths>): void {
  assert.equal(r.composite.data.length, names.length);
  for (const [i, name] of names.entries()) {
    const a = r.composite.data[i], b = r.fused.data[i];
    assert.ok(a.every(Number.isFinite), `${what}: ${name} is not finite`);
    assert.equal(bitDiffs(a, b), 0, `${what}: ${name} differs in ${bitDiffs(a, b)} of ${a.length}`);
  }
}

/**
 * A block with non-trivial norms and biases: output, d/dx and the 12 parameter gradients
 * (with drop-path at `rate`: each sample's branches kept or dropped, seeded).
 */
function blockCase(B: number, T: number, D: number, H: number, seed: number, rate = 0) {
  return () => {
    const store = new ParamStore(seed);
    const block = new Block(store, "block", D, H, 4);
    for (const [i, v] of store.variables().entries()) {
      v.assign(tf.add(v, tf.tensor(values(v.size, 100 + i, 0.2), v.shape)));
    }
    const x = tf.tensor3d(values(B * T * D, seed, 2), [B, T, D]);
    const probe = tf.tensor3d(values(B * T * D, seed + 1), [B, T, D]);
    const call = { dropPath: rate, seed: 11 };
    const f = (xx: tf.Tensor) => tf.sum(tf.mul(block.apply(xx as tf.Tensor3D, call).out, probe));
    const out = block.apply(x, call).out;
    const vars = store.variables();
    const { grads } = tf.variableGrads(() => f(x) as tf.Scalar, vars);
    const dx = tf.grad(f)(x);
    const tensors = [out, dx, ...vars.map((v) => grads[v.name])];
    store.dispose();
    return tensors;
  };
}

Deno.test({
  name:
    "one-kernel block = composite block, bit for bit: output, d/dx, all 12 gradients, drop-path",
  ignore: !haveBlas,
  fn: () => {
    assert.equal(fusedBlockAvailable(), true);
    // [B, T, D, heads, drop-path]: GELU on wasm (2*5*96 values), on oneDNN (64*17*768),
    // decoder-like; drop-path 0.5 over 8 and 64 samples drops some branches and keeps others
    const shapes = [
      [2, 5, 24, 3, 0],
      [64, 17, 192, 3, 0],
      [8, 50, 128, 4, 0],
      [8, 50, 128, 4, 0.5],
      [64, 17, 192, 3, 0.5],
    ] as const;
    const names = ["out", "dx", ...Array.from({ length: 12 }, (_, i) => `param ${i}`)];
    try {
      for (const precision of PRECISIONS) {
        setMatmulPrecision(precision);
        for (const [B, T, D, H, rate] of shapes) {
          const what = `${precision} [${B}, ${T}, ${D}] ${H} heads, drop-path ${rate}`;
          const r = bothPaths(blockCase(B, T, D, H, 7, rate));
          assertSame(what, names, r);
          // the paths really differ: composite launched no block kernel, fused did (3 forwards,
          // 2 backwards: the output, then one pass per gradient call)
          assert.deepEqual(r.composite.stats, { forward: 0, backward: 0 }, what);
          assert.deepEqual(r.fused.stats, { forward: 3, backward: 2 }, what);
        }
      }
    } finally {
      setMatmulPrecision("fp32");
    }
  },
});

const SHAPE: VitShape = {
  imageSize: 16,
  patchSize: 4,
  channels: 3,
  dim: 48,
  depth: 2,
  heads: 3,
  mlpRatio: 4,
  decoderDim: 32,
  decoderDepth: 1,
  decoderHeads: 4,
};

Deno.test({
  name: "one-kernel blocks: MAE and SimMIM losses and every gradient unchanged, bit for bit",
  ignore: !haveBlas,
  fn: () => {
    const B = 4, L = 16, P = 48;
    const patches = tf.tensor2d(values(B * L * P, 5), [B * L, P]);
    try {
      for (const precision of PRECISIONS) {
        setMatmulPrecision(precision);
        const mae = new MaskedAutoencoder({ shape: SHAPE, normPixLoss: true, seed: 3 });
        const plan = randomMaskPlan(B, L, 0.75, makeRng(6, "plan"));
        const maeVars = mae.store.variables();
        const r = bothPaths(() => {
          const { value, grads } = tf.variableGrads(() => mae.lossFn(patches, plan), maeVars);
          return [value, ...maeVars.map((v) => grads[v.name])];
        });
        assertSame(`${precision} MAE`, ["loss", ...maeVars.map((v) => v.name)], r);
        // encoder (2 blocks) and decoder (1) each ran as one kernel, forward and backward
        assert.deepEqual(r.fused.stats, { forward: 3, backward: 3 }, `${precision} MAE`);
        mae.dispose();

        // SimMIM pre-trains with stochastic depth: drop-path 0.1 at the last block
        const simmim = new SimMim({ shape: SHAPE, seed: 4 });
        const splan = unitRandomMaskPlan(B, L, 2, 0.6, makeRng(8, "plan"));
        const simVars = simmim.store.variables();
        const train = { dropPath: 0.1, seed: 5 };
        const s = bothPaths(() => {
          const { value, grads } = tf.variableGrads(
            () => simmim.lossFn(patches, splan, train),
            simVars,
          );
          return [value, ...simVars.map((v) => grads[v.name])];
        });
        assertSame(`${precision} SimMIM`, ["loss", ...simVars.map((v) => v.name)], s);
        assert.deepEqual(s.fused.stats, { forward: 2, backward: 2 }, `${precision} SimMIM`);
        simmim.dispose();
      }
    } finally {
      setMatmulPrecision("fp32");
      patches.dispose();
    }
  },
});

Deno.test({
  name: "one-kernel block leaves no tensor and no heap buffer behind",
  ignore: !haveBlas,
  fn: () => {
    const backend = tf.backend() as unknown as { numDataIds(): number };
    const run = blockCase(8, 50, 128, 4, 9);
    tf.dispose(tf.tidy(run)); // warm-up: kernels registered, caches filled
    const tensors = tf.memory().numTensors, dataIds = backend.numDataIds();
    resetFusedBlockStats();
    for (let i = 0; i < 3; i++) tf.dispose(tf.tidy(run));
    assert.deepEqual(fusedBlockStats(), { forward: 9, backward: 6 });
    assert.equal(tf.memory().numTensors, tensors, "tensor count grew");
    assert.equal(backend.numDataIds(), dataIds, "wasm heap buffers leaked");
    // no tape (inference): the forward's saved tensors are dropped with it
    const store = new ParamStore(2);
    const block = new Block(store, "b", 48, 3, 4);
    const x = tf.tensor3d(values(2 * 7 * 48, 3), [2, 7, 48]);
    const before = tf.memory().numTensors;
    tf.dispose(block.apply(x).out);
    assert.equal(tf.memory().numTensors, before, "inference leaked");
    x.dispose();
    store.dispose();
  },
});

Deno.test({
  name: "one-kernel block that throws midway frees what it allocated",
  ignore: !haveBlas,
  fn: () => {
    const backend = tf.backend() as unknown as { numDataIds(): number };
    const D = 24, B = 2, T = 5;
    const t = (shape: number[], seed: number) =>
      tf.tensor(values(shape.reduce((a, b) => a * b, 1), seed), shape);
    const p: BlockParams = {
      norm1Gamma: t([D], 1),
      norm1Beta: t([D], 2),
      qkvW: t([D, 3 * D], 3),
      qkvB: t([3 * D], 4),
      projW: t([D + 1, D], 5), // wrong: the output projection throws after attention ran
      projB: t([D], 6),
      norm2Gamma: t([D], 7),
      norm2Beta: t([D], 8),
      fc1W: t([D, 4 * D], 9),
      fc1B: t([4 * D], 10),
      fc2W: t([4 * D, D], 11),
      fc2B: t([D], 12),
    };
    const x = t([B, T, D], 13) as tf.Tensor3D;
    const tensors = tf.memory().numTensors, dataIds = backend.numDataIds();
    assert.throws(() => ops.block(x, p, 3, 1e-6, 1e-6), /shapes x 10,24, w 25,24/);
    assert.equal(backend.numDataIds(), dataIds, "buffers of the failed block leaked");
    assert.equal(tf.memory().numTensors, tensors);
    tf.dispose([x, ...Object.values(p)]);
  },
});

Deno.test({
  name: "kept attention and textbook layers stay on the composite block; drop-path does not",
  ignore: !haveBlas,
  fn: () => {
    const store = new ParamStore(5);
    const block = new Block(store, "b", 24, 3, 4);
    const x = tf.tensor3d(values(2 * 5 * 24, 4), [2, 5, 24]);
    const count = (f: () => tf.Tensor | undefined) => {
      resetFusedBlockStats();
      tf.dispose(tf.tidy(() => f()!));
      return fusedBlockStats().forward;
    };
    try {
      assert.equal(count(() => block.apply(x).out), 1);
      assert.equal(count(() => block.apply(x, { dropPath: 0.1, seed: 1 }).out), 1);
      assert.equal(count(() => block.apply(x, { keepAttention: true }).attention), 0);
      setTextbookLayers(true);
      assert.equal(count(() => block.apply(x).out), 0);
      setTextbookLayers(false);
      setFusedBlockEnabled(false);
      assert.equal(fusedBlockAvailable(), false);
      assert.equal(count(() => block.apply(x).out), 0);
    } finally {
      setTextbookLayers(false);
      setFusedBlockEnabled(true);
      x.dispose();
      store.dispose();
    }
  },
});
