/**
 * The fast paths of the wasm backend against tfjs's own cpu backend: the native BLAS matMul
 * (when a CBLAS is installed; CI installs OpenBLAS and sets AMT_REQUIRE_BLAS=1), the pure-JS
 * kernel replacements (`Identity`, `Slice`, `SplitV`, `GatherV2`) and the fused LayerNorm /
 * GELU / AdamW / attention-heads kernels, down to a full MAE and SimMIM training step.
 */
import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { initBackend } from "../lib/backend/mod.ts";
import { blasActive } from "../lib/backend/_blas.ts";
import { setFusedEnabled } from "../lib/backend/fused.ts";
import { MaskedAutoencoder } from "../lib/mim/mae.ts";
import { SimMim } from "../lib/mim/simmim.ts";
import { randomMaskPlan, unitRandomMaskPlan } from "../lib/mim/random.ts";
import type { MimModel } from "../lib/mim/types.ts";
import { AdamW } from "../lib/optim/mod.ts";
import { makeRng } from "../lib/util/rng.ts";
import type { VitShape } from "../lib/vit/presets.ts";

const wasmInfo = await initBackend({ backend: "wasm", quiet: true });
const haveBlas = wasmInfo.nativeMatmul === true;
const requireBlas = Deno.env.get("AMT_REQUIRE_BLAS") === "1";

function maxRelDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length);
  let scale = 1e-6, d = 0;
  for (let i = 0; i < b.length; i++) scale = Math.max(scale, Math.abs(b[i]));
  for (let i = 0; i < a.length; i++) d = Math.max(d, Math.abs(a[i] - b[i]));
  return d / scale;
}

function values(n: number, seed: number): Float32Array {
  const rng = makeRng(seed, "fast-kernels");
  return Float32Array.from({ length: n }, () => rng() * 2 - 1);
}

/** Runs `fn` on wasm and on cpu (composite ops: fused kernels off) and returns both outputs. */
async function onBoth(
  fn: () => tf.Tensor | tf.Tensor[],
): Promise<[Float32Array[], Float32Array[]]> {
  const read = async () => {
    const out = tf.tidy(() => {
      const r = fn();
      return Array.isArray(r) ? r : [r];
    });
    const data = await Promise.all(out.map((t) => t.data() as Promise<Float32Array>));
    tf.dispose(out);
    return data;
  };
  await initBackend({ backend: "wasm", quiet: true });
  const got = await read();
  await initBackend({ backend: "cpu", quiet: true });
  setFusedEnabled(false);
  try {
    return [got, await read()];
  } finally {
    setFusedEnabled(true);
    await initBackend({ backend: "wasm", quiet: true });
  }
}

Deno.test("wasm reports its matmul: a native BLAS, or why there is none", () => {
  assert.ok(wasmInfo.matmul !== undefined && wasmInfo.matmul !== "", "report names the matmul");
  if (requireBlas) assert.ok(haveBlas, `AMT_REQUIRE_BLAS=1 but: ${wasmInfo.matmul}`);
  if (haveBlas) {
    assert.match(wasmInfo.matmul!, /OpenBLAS|BLIS|blis|mkl|MKL|Accelerate/);
    assert.equal(blasActive(), true);
  } else {
    assert.match(wasmInfo.matmul!, /no native BLAS found|off|did not load|needs/);
    assert.equal(blasActive(), false);
  }
});

Deno.test("AMT_BLAS=off and a bad path keep tfjs's matmul and say why", async () => {
  const code = `const m = await import(${
    JSON.stringify(new URL("../lib/backend/mod.ts", import.meta.url).href)
  });
    const i = await m.initBackend({ backend: "wasm", threads: 1, quiet: true });
    console.log(JSON.stringify(i));`;
  for (
    const [env, want] of [["off", /native BLAS off/], [
      "/nonexistent/libblas.so",
      /did not load/,
    ]] as const
  ) {
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["eval", "--config", new URL("../deno.json", import.meta.url).pathname, code],
      env: { AMT_BLAS: env },
      stdout: "piped",
      stderr: "piped",
    }).output();
    assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
    const info = JSON.parse(new TextDecoder().decode(out.stdout).trim().split("\n").at(-1)!);
    assert.equal(info.nativeMatmul, false);
    assert.match(info.matmul, want);
  }
});

Deno.test({
  name: "native BLAS matMul matches cpu: transposes, batches, broadcasting, dense with bias",
  ignore: !haveBlas,
  fn: async () => {
    const cases: [number[], number[], boolean, boolean][] = [
      [[33, 20], [20, 17], false, false],
      [[20, 33], [20, 17], true, false],
      [[33, 20], [17, 20], false, true],
      [[20, 33], [17, 20], true, true],
      [[3, 2, 9, 8], [3, 2, 8, 5], false, false],
      [[3, 2, 9, 8], [3, 2, 5, 8], false, true],
      [[4, 9, 8], [8, 6], false, false], // b broadcast over the batch
      [[1, 9, 8], [4, 8, 6], false, false], // a broadcast
      [[5, 0], [0, 3], false, false], // K = 0: zeros
    ];
    for (const [sa, sb, ta, tb] of cases) {
      const va = values(sa.reduce((p, q) => p * q, 1), 1),
        vb = values(sb.reduce((p, q) => p * q, 1), 2);
      const [[got], [ref]] = await onBoth(() =>
        tf.matMul(tf.tensor(va, sa), tf.tensor(vb, sb), ta, tb)
      );
      assert.ok(
        maxRelDiff(got, ref) < 1e-5,
        `${sa} x ${sb} (${ta}, ${tb}): ${maxRelDiff(got, ref)}`,
      );
    }
    const { denseOp } = await import("../lib/vit/layers.ts");
    const x = values(37 * 24, 3), w = values(24 * 19, 4), b = values(19, 5);
    const [got, ref] = await onBoth(() => {
      const [xt, wt, bt] = [tf.tensor2d(x, [37, 24]), tf.tensor2d(w, [24, 19]), tf.tensor1d(b)];
      const f = (xx: tf.Tensor2D, ww: tf.Tensor2D, bb: tf.Tensor1D) =>
        tf.sum(tf.square(denseOp(xx, ww, bb))) as tf.Scalar;
      const g = tf.grads(f as (...a: tf.Tensor[]) => tf.Tensor)([xt, wt, bt]);
      return [denseOp(xt, wt, bt), ...g];
    });
    for (let i = 0; i < 4; i++) assert.ok(maxRelDiff(got[i], ref[i]) < 1e-5, `dense output ${i}`);
  },
});

Deno.test("wasm Identity/Slice/SplitV/GatherV2/PadV2 replacements match cpu", async () => {
  const v = values(4 * 5 * 6, 7);
  const idx = [3, 0, 3, 1];
  const [got, ref] = await onBoth(() => {
    const x = tf.tensor3d(v, [4, 5, 6]);
    return [
      x.clone(),
      tf.slice(x, [1, 2, 0], [2, 3, 6]),
      tf.slice(x, [0, 1, 2], [4, 2, 3]),
      tf.slice(x, [3, 0, 0], [1, -1, -1]),
      ...tf.split(x, [1, 3, 1], 1),
      ...tf.split(x, 2, 2),
      tf.gather(x, tf.tensor1d(idx, "int32")),
      tf.gather(x.reshape([20, 6]), tf.tensor2d([[0, 19], [7, 7]], [2, 2], "int32")),
      tf.gather(x, tf.tensor1d([4, 1], "int32"), 1), // another axis: the original kernel
      // int32 and bool tables (4 and 1 bytes per element)
      tf.gather(tf.tensor2d([1, 2, 3, 4, 5, 6], [3, 2], "int32"), [2, 0, 2]),
      tf.gather(tf.tensor2d([1, 0, 0, 1, 1, 1], [3, 2], "bool"), [1, 2, 1, 0]),
      tf.pad(x, [[0, 0], [1, 2], [0, 0]]), // one run per outer index
      tf.pad(x, [[1, 0], [0, 0], [2, 3]], -1.5), // innermost padded, a constant
      tf.pad(x, [[2, 1], [0, 0], [0, 0]]), // whole slabs
      tf.pad(x, [[0, 0], [0, 0], [0, 0]]), // a copy
      tf.pad(tf.tensor2d([], [0, 3]), [[1, 1], [0, 1]], 7), // empty input: all constant
      tf.pad(tf.tensor1d([1, 2, 3], "int32"), [[2, 0]]),
      // the gradient of a slice is a pad
      tf.grad((t: tf.Tensor) => tf.sum(tf.mul(tf.slice(t, [1, 1, 2], [2, 3, 3]), 2)))(x),
    ];
  });
  assert.equal(got.length, ref.length);
  for (let i = 0; i < got.length; i++) {
    assert.deepEqual(Array.from(got[i]), Array.from(ref[i]), `output ${i}`);
  }
  // a shared Identity stays valid after its source is disposed
  const a = tf.tensor1d([1, 2, 3]);
  const c = a.clone();
  a.dispose();
  assert.deepEqual(Array.from(await c.data()), [1, 2, 3]);
  c.dispose();
  assert.throws(
    () => tf.gather(tf.tensor2d([1, 2, 3, 4], [2, 2]), tf.tensor1d([2], "int32")),
    /index 2/,
  );
});

Deno.test("fused LayerNorm, GELU and heads split: values and gradients match the composite ops", async () => {
  const { LayerNorm, gelu, Attention } = await import("../lib/vit/layers.ts");
  const { ParamStore } = await import("../lib/vit/params.ts");
  const xv = values(2 * 7 * 12, 11).map((t) => t * 3);
  const [got, ref] = await onBoth(() => {
    const store = new ParamStore(0);
    const ln = new LayerNorm(store, "ln", 12);
    const attn = new Attention(store, "attn", 12, 3);
    // non-trivial gamma/beta
    ln.gamma.assign(tf.add(1, tf.tensor1d(values(12, 12))));
    ln.beta.assign(tf.tensor1d(values(12, 13)));
    const x = tf.tensor3d(xv, [2, 7, 12]);
    const f = (xx: tf.Tensor) => {
      const h = gelu(ln.apply(xx));
      const { out, attention } = attn.apply(h as tf.Tensor3D, true);
      return tf.add(
        tf.sum(tf.mul(out, out)),
        tf.sum(tf.mul(attention!, tf.range(0, 49).reshape([7, 7]))),
      );
    };
    const { value, grads } = tf.variableGrads(() => f(x) as tf.Scalar, store.variables());
    const dx = tf.grad(f)(x);
    const outs = [value, dx, ...store.variables().map((v) => grads[v.name])];
    store.dispose();
    return outs;
  });
  for (let i = 0; i < got.length; i++) {
    assert.ok(maxRelDiff(got[i], ref[i]) < 2e-5, `output ${i}: ${maxRelDiff(got[i], ref[i])}`);
  }
});

const SHAPE: VitShape = {
  imageSize: 16,
  patchSize: 4,
  channels: 3,
  dim: 24,
  depth: 2,
  heads: 3,
  mlpRatio: 4,
  decoderDim: 16,
  decoderDepth: 1,
  decoderHeads: 2,
};

/** Three AdamW steps of a small MAE / SimMIM from the same seed: losses and weights after. */
async function threeSteps(kind: "mae" | "simmim") {
  return await onBoth(() => {
    const model: MimModel = kind === "mae"
      ? new MaskedAutoencoder({ shape: SHAPE, normPixLoss: true, seed: 3 })
      : new SimMim({ shape: SHAPE, seed: 3 });
    const opt = new AdamW([...model.store.params.values()], {
      beta1: 0.9,
      beta2: 0.95,
      eps: 1e-8,
      weightDecay: 0.05,
      clipGrad: 1,
    });
    const B = 4, L = 16;
    const patches = tf.tensor2d(values(B * L * 48, 21), [B * L, 48]);
    const out: tf.Tensor[] = [];
    for (let s = 0; s < 3; s++) {
      const rng = makeRng(5, "plan", s);
      const plan = kind === "mae"
        ? randomMaskPlan(B, L, 0.75, rng)
        : unitRandomMaskPlan(B, L, 2, 0.6, rng);
      const { loss, gradNorm } = opt.minimize(() => model.lossFn(patches, plan), 1e-3);
      out.push(loss, gradNorm);
    }
    out.push(...model.store.variables().map((v) => v.clone()));
    opt.dispose();
    model.dispose();
    return out;
  });
}

for (const kind of ["mae", "simmim"] as const) {
  Deno.test(`a ${kind} training step on wasm (fast kernels) matches cpu (tfjs ops) over 3 AdamW steps`, async () => {
    const { adamWInPlaceSteps } = await import("../lib/backend/fused.ts");
    const before = adamWInPlaceSteps();
    const [got, ref] = await threeSteps(kind);
    // every wasm step updated the model's parameters in place (the cpu ones cannot)
    assert.equal(adamWInPlaceSteps() - before, 3);
    for (let s = 0; s < 3; s++) {
      assert.ok(
        Math.abs(got[2 * s][0] - ref[2 * s][0]) < 1e-4 * Math.abs(ref[2 * s][0]),
        `loss at step ${s}`,
      );
      assert.ok(
        Math.abs(got[2 * s + 1][0] - ref[2 * s + 1][0]) < 1e-3 * ref[2 * s + 1][0],
        `grad norm ${s}`,
      );
    }
    for (let i = 6; i < got.length; i++) {
      // Adam normalises tiny gradients, so compare weights after 3 steps of lr 1e-3 absolutely
      let d = 0;
      for (let j = 0; j < got[i].length; j++) d = Math.max(d, Math.abs(got[i][j] - ref[i][j]));
      assert.ok(d < 5e-4, `weights ${i - 6}: max |diff| ${d}`);
    }
  });
}

/** erf to ~1e-15 by its Maclaurin series (|x| < 3) or the continued fraction of erfc. */
function erfRef(x: number): number {
  const a = Math.abs(x);
  let r: number;
  if (a < 3) {
    let term = a, sum = a;
    for (let n = 1; n < 200; n++) {
      term *= -a * a / n;
      sum += term / (2 * n + 1);
    }
    r = 2 / Math.sqrt(Math.PI) * sum;
  } else {
    let f = 0;
    for (let n = 60; n >= 1; n--) f = n / 2 / (a + f);
    r = 1 - Math.exp(-a * a) / Math.sqrt(Math.PI) / (a + f);
  }
  return x < 0 ? -r : r;
}

Deno.test("GELU kernels (SIMD and scalar) are within 3e-7 of exact GELU and its derivative", async () => {
  const { loadSimdGelu, setSimdEnabled } = await import("../lib/backend/fused.ts");
  assert.ok(loadSimdGelu() !== null, "Deno's V8 has wasm SIMD, so the SIMD kernel must load");
  // deno-lint-ignore no-explicit-any
  const heap = (tf.backend() as any).wasm.wasmMemory as WebAssembly.Memory;
  assert.ok(loadSimdGelu(heap) !== null, "and it binds to the wasm backend's heap");
  const xs = Float32Array.from({ length: 40001 }, (_, i) => (i - 20000) / 1600); // [-12.5, 12.5]
  xs[0] = -200;
  xs[1] = 200;
  xs[2] = -0;
  // wasm + SIMD in place, cpu + SIMD on the copy path, wasm scalar
  for (const [backend, simd] of [["wasm", true], ["cpu", true], ["wasm", false]] as const) {
    await initBackend({ backend, quiet: true });
    setSimdEnabled(simd);
    try {
      const x = tf.tensor1d(xs);
      const y = await tf.tidy(() => geluOf(x)).data();
      const d = await tf.grad(geluOf)(x).data();
      x.dispose();
      let ey = 0, ed = 0;
      for (let i = 0; i < xs.length; i++) {
        const v = xs[i];
        const cdf = 0.5 * (1 + erfRef(v / Math.SQRT2));
        const pdf = Math.exp(-v * v / 2) / Math.sqrt(2 * Math.PI);
        ey = Math.max(ey, Math.abs(y[i] - v * cdf) / Math.max(1, Math.abs(v)));
        ed = Math.max(ed, Math.abs(d[i] - (cdf + v * pdf)));
      }
      const what = `${backend} ${simd ? "SIMD" : "scalar"}`;
      assert.ok(ey < 3e-7, `${what} GELU: max error ${ey}`);
      assert.ok(ed < 3e-7, `${what} GELU': max error ${ed}`);
    } finally {
      setSimdEnabled(true);
      await initBackend({ backend: "wasm", quiet: true });
    }
  }
});

const { gelu: geluOf } = await import("../lib/vit/layers.ts");

Deno.test("the embedded SIMD binaries match their .wat sources (deno task build:simd)", async () => {
  const { assemble, moduleText } = await import("../tools/build_simd.ts");
  const dir = new URL("../lib/backend/simd/", import.meta.url);
  let n = 0;
  for await (const e of Deno.readDir(dir)) {
    if (!e.name.endsWith(".wat")) continue;
    const name = e.name.slice(0, -4);
    const want = moduleText(name, await assemble(new URL(e.name, dir)));
    const have = await Deno.readTextFile(new URL(`${name}_wasm.ts`, dir));
    assert.equal(have, want, `${name}_wasm.ts is stale: run deno task build:simd`);
    n++;
  }
  assert.ok(n >= 1);
});

Deno.test("lastAttention() equals the full forward's last attention, on wasm and cpu", async () => {
  const { VisionTransformer } = await import("../lib/vit/vit.ts");
  const { ParamStore } = await import("../lib/vit/params.ts");
  const pv = values(3 * 16 * 48, 31);
  const [got, ref] = await onBoth(() => {
    const store = new ParamStore(4);
    const vit = new VisionTransformer(store, SHAPE, "encoder");
    const x = tf.tensor3d(pv, [3, 16, 48]);
    const outs = [vit.lastAttention(x), vit.forwardFeatures(x, true).attention!];
    vit.dispose();
    store.dispose();
    return outs;
  });
  for (const r of [got, ref]) assert.ok(maxRelDiff(r[0], r[1]) < 1e-6, "same backend: equal");
  assert.ok(maxRelDiff(got[0], ref[1]) < 1e-5, "wasm fast path vs cpu composite");
});

Deno.test("LayerNorm kernels (wasm SIMD, wasm scalar, cpu) match the composite ops with gradients", async () => {
  const { LayerNorm } = await import("../lib/vit/layers.ts");
  const { ParamStore } = await import("../lib/vit/params.ts");
  const { setSimdEnabled } = await import("../lib/backend/fused.ts");
  const run = (D: number) => {
    const store = new ParamStore(0);
    const ln = new LayerNorm(store, "ln", D);
    ln.gamma.assign(tf.add(1, tf.tensor1d(values(D, 41))));
    ln.beta.assign(tf.tensor1d(values(D, 42)));
    const x = tf.tensor3d(values(3 * 5 * D, 43).map((v, i) => v * 4 + (i % 7)), [3, 5, D]);
    const w = tf.tensor3d(values(3 * 5 * D, 44), [3, 5, D]);
    const f = (xx: tf.Tensor) => tf.sum(tf.mul(ln.apply(xx), w)) as tf.Scalar;
    const { grads } = tf.variableGrads(() => f(x), store.variables());
    const out = [ln.apply(x), tf.grad(f)(x), grads[ln.gamma.name], grads[ln.beta.name]];
    store.dispose();
    return out;
  };
  for (const D of [12, 10]) { // 12: the SIMD kernel on wasm; 10: the scalar loop
    const [got, ref] = await onBoth(() => run(D));
    for (let i = 0; i < 4; i++) {
      assert.ok(
        maxRelDiff(got[i], ref[i]) < 1e-5,
        `D ${D} output ${i}: ${maxRelDiff(got[i], ref[i])}`,
      );
    }
  }
  // the fused kernels on cpu, and wasm with SIMD off, against the same composite reference
  for (const [backend, simd] of [["cpu", true], ["wasm", false]] as const) {
    await initBackend({ backend: "cpu", quiet: true });
    setFusedEnabled(false);
    const ref = await Promise.all(tf.tidy(() => run(12)).map((t) => t.data()));
    setFusedEnabled(true);
    await initBackend({ backend, quiet: true });
    setSimdEnabled(simd);
    const got = await Promise.all(tf.tidy(() => run(12)).map((t) => t.data()));
    setSimdEnabled(true);
    for (let i = 0; i < 4; i++) {
      assert.ok(maxRelDiff(got[i], ref[i]) < 1e-5, `${backend} output ${i}`);
    }
  }
  await initBackend({ backend: "wasm", quiet: true });
});

for (const clipGrad of [0.5, 0]) {
  Deno.test(`AdamW (wasm in place, SIMD and scalar; cpu kernel) matches the composite update, clipGrad ${clipGrad}`, async () => {
    const { adamWInPlaceSteps, setSimdEnabled } = await import("../lib/backend/fused.ts");
    const { ParamStore } = await import("../lib/vit/params.ts");
    const steps = () => {
      const store = new ParamStore(9);
      // 21 and 7 elements: the SIMD pass and its scalar tail (1 and 3 elements)
      const a = store.create("a.weight", [3, 7], { kind: "xavier", fanIn: 3, fanOut: 7 }, true);
      const b = store.create("b.bias", [7], { kind: "normal", std: 0.5 }, false);
      const opt = new AdamW([...store.params.values()], {
        beta1: 0.9,
        beta2: 0.95,
        eps: 1e-8,
        weightDecay: 0.05,
        clipGrad,
        lrScales: [1, 0.5],
      });
      const target = tf.tensor2d(values(21, 51), [3, 7]);
      const norms: tf.Tensor[] = [];
      for (let s = 0; s < 3; s++) {
        const { loss, gradNorm } = opt.minimize(
          () => tf.sum(tf.square(tf.sub(tf.add(a, b), target))) as tf.Scalar,
          1e-2,
        );
        norms.push(loss, gradNorm);
      }
      const out = [...norms, a.clone(), b.clone(), opt.m[0].clone(), opt.v[1].clone()];
      opt.dispose();
      store.dispose();
      return out;
    };
    await initBackend({ backend: "cpu", quiet: true });
    setFusedEnabled(false);
    const ref = await Promise.all(tf.tidy(steps).map((t) => t.data()));
    setFusedEnabled(true);
    for (const [backend, simd] of [["wasm", true], ["wasm", false], ["cpu", true]] as const) {
      await initBackend({ backend, quiet: true });
      setSimdEnabled(simd);
      const before = adamWInPlaceSteps();
      const got = await Promise.all(tf.tidy(steps).map((t) => t.data()));
      setSimdEnabled(true);
      // the wasm steps ran in place, the cpu ones through the per-parameter kernel
      assert.equal(adamWInPlaceSteps() - before, backend === "wasm" ? 3 : 0, backend);
      for (let i = 0; i < got.length; i++) {
        assert.ok(maxRelDiff(got[i], ref[i]) < 1e-5, `${backend} simd=${simd} output ${i}`);
      }
    }
    await initBackend({ backend: "wasm", quiet: true });
  });
}

Deno.test("AdamW in place: a parameter whose memory another tensor shares is updated out of place", async () => {
  const { adamWInPlaceSteps } = await import("../lib/backend/fused.ts");
  await initBackend({ backend: "wasm", quiet: true });
  const w = tf.variable(tf.tensor1d(values(10, 3)));
  const alias = tf.reshape(w, [2, 5]); // shares w's data (wasm reshape)
  const was = await alias.data();
  const opt = new AdamW([{ name: "w", variable: w, decay: true } as never], {
    beta1: 0.9,
    beta2: 0.95,
    eps: 1e-8,
    weightDecay: 0.05,
    clipGrad: 0,
  });
  const before = adamWInPlaceSteps();
  const { loss, gradNorm } = opt.minimize(() => tf.sum(tf.square(w)) as tf.Scalar, 0.1);
  assert.equal(adamWInPlaceSteps(), before, "not in place while the data is shared");
  assert.deepEqual(await alias.data(), was, "the other tensor kept its values");
  assert.ok(maxRelDiff(await w.data(), was) > 1e-3, "and the parameter moved");
  // grad of sum(w^2) is 2w: the reported norm is |2w|
  const want = 2 * Math.hypot(...was);
  assert.ok(Math.abs((await gradNorm.data())[0] - want) < 1e-5 * want);
  alias.dispose();
  tf.dispose([loss, gradNorm]);
  // with the alias gone, the next step writes in place
  const next = opt.minimize(() => tf.sum(tf.square(w)) as tf.Scalar, 0.1);
  assert.equal(adamWInPlaceSteps(), before + 1);
  tf.dispose([next.loss, next.gradNorm]);
  opt.dispose();
  w.dispose();
});

Deno.test("AdamW in place refreshes the bf16 copies of the weights it wrote", async () => {
  const { setMatmulPrecision } = await import("../lib/backend/mod.ts");
  const { adamWInPlaceSteps } = await import("../lib/backend/fused.ts");
  await initBackend({ backend: "wasm", quiet: true });
  setMatmulPrecision("bf16");
  try {
    const x = tf.tensor2d(values(64 * 32, 5), [64, 32]);
    const w0 = tf.tensor2d(values(32 * 48, 6), [32, 48]);
    const w = tf.variable(w0);
    w0.dispose(); // w's data is its own: the step can write in place
    const opt = new AdamW([{ name: "w", variable: w, decay: true } as never], {
      beta1: 0.9,
      beta2: 0.95,
      eps: 1e-8,
      weightDecay: 0,
      clipGrad: 0,
    });
    const old = await tf.matMul(x, w).data(); // caches a bf16 copy of w's data
    const before = adamWInPlaceSteps();
    const { loss, gradNorm } = opt.minimize(() => tf.sum(tf.matMul(x, w)) as tf.Scalar, 0.5);
    tf.dispose([loss, gradNorm]);
    assert.equal(adamWInPlaceSteps(), before + 1);
    // the product with w's own data (a stale cached copy would give the old weights' product)
    // against the product with a fresh tensor of the same values
    const got = await tf.matMul(x, w).data();
    const want = await tf.matMul(x, tf.add(w, 0)).data();
    assert.deepEqual(got, want);
    assert.ok(maxRelDiff(got, old) > 1e-2, "the weights moved");
    opt.dispose();
    w.dispose();
  } finally {
    setMatmulPrecision("fp32");
  }
});

Deno.test("AdamW in place on two threads: the helper's half changes no bit of the step or of the refreshed bf16 copies", async () => {
  const { adamWInPlace } = await import("../lib/backend/fused.ts");
  const { setStepThreads, setWaitForHelper, stepThreadStats } = await import(
    "../lib/backend/_helper.ts"
  );
  const { setMatmulPrecision } = await import("../lib/backend/mod.ts");
  const { bf16Stats } = await import("../lib/backend/_bf16.ts");
  await initBackend({ backend: "wasm", quiet: true });
  // several chunks (65,536 elements each), SIMD tails of 3 and 1, tensors below 4 elements;
  // [3, 1] is only ever a vector product's operand (fp32: no bf16 copy), the others get one
  const shapes = [[391, 512], [7, 10001], [1, 7], [3, 1], [256, 512]];
  const step = (clipGrad: number) => {
    const slots = shapes.map((sh, i) => {
      const n = sh[0] * sh[1];
      return {
        p: tf.tensor2d(values(n, 10 + i), sh as [number, number]),
        g: tf.tensor2d(values(n, 20 + i), sh as [number, number]),
        m: tf.tensor2d(values(n, 30 + i), sh as [number, number]),
        v: tf.tensor2d(values(n, 40 + i).map(Math.abs), sh as [number, number]),
        lr: 1e-2 * (i + 1),
        weightDecay: i % 2 ? 0 : 0.05,
      };
    });
    const xs = slots.map((s) => tf.tensor2d(values(2 * s.p.shape[0], 50), [2, s.p.shape[0]]));
    const product = () => slots.map((s, i) => tf.tidy(() => tf.matMul(xs[i], s.p).dataSync()));
    setMatmulPrecision("bf16");
    product(); // caches the bf16 copies of every p (but the [3, 1] one's)
    const attrs = { beta1: 0.9, beta2: 0.95, eps: 1e-8, c1: 10, c2: 20, clipGrad };
    const refreshed = bf16Stats().refreshed;
    const norms = [adamWInPlace(slots, attrs), adamWInPlace(slots, attrs)];
    assert.equal(bf16Stats().refreshed - refreshed, 2 * 4, "4 copies refreshed per step");
    // the products from the refreshed copies, and from fresh tensors of the same values
    const got = product();
    const fresh = slots.map((s, i) => tf.tidy(() => tf.matMul(xs[i], tf.add(s.p, 0)).dataSync()));
    setMatmulPrecision("fp32");
    got.forEach((a, i) => assert.deepEqual(a, fresh[i], `product ${i} after the steps`));
    const out = slots.flatMap((s) => [s.p, s.m, s.v].map((t) => t.dataSync().slice()));
    out.push(...got.map((a) => Float32Array.from(a)));
    tf.dispose([...xs, ...slots.flatMap((s) => [s.p, s.g, s.m, s.v])]);
    return { norms, out };
  };
  try {
    setStepThreads(2);
    // the helper starts on the first step and is ready a little later
    for (let i = 0; i < 200 && stepThreadStats().helped === 0; i++) {
      setWaitForHelper(i > 0);
      step(0);
      await new Promise((r) => setTimeout(r, 20));
    }
    assert.ok(stepThreadStats().helped > 0, "the helper thread never took a half");
    for (const clipGrad of [0, 0.5]) {
      setWaitForHelper(true);
      const before = stepThreadStats().helped;
      const two = step(clipGrad);
      // two steps, each one job (two with clipping: the norm, then the update)
      assert.equal(stepThreadStats().helped - before, clipGrad > 0 ? 4 : 2);
      setWaitForHelper(false);
      setStepThreads(1);
      const offered = stepThreadStats().jobs;
      const one = step(clipGrad);
      assert.equal(stepThreadStats().jobs, offered, "one thread: nothing offered");
      setStepThreads(2);
      assert.ok(two.norms[0] !== null && two.norms[0] > 0);
      assert.deepEqual(two.norms, one.norms, `clipGrad ${clipGrad}: the norms`);
      two.out.forEach((a, i) => {
        assert.ok(
          a.every((x, j) => Object.is(x, one.out[i][j])),
          `clipGrad ${clipGrad}: array ${i}`,
        );
      });
    }
  } finally {
    setWaitForHelper(false);
    setStepThreads(2);
    setMatmulPrecision("fp32");
  }
});
