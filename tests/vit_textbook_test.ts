/**
 * The textbook layers of `lib/vit/layers.ts` (plain tf ops, `setTextbookLayers(true)`) against
 * the fast ones (`lib/backend/ops.ts`): a Block, a ViT encoder and a whole small MAE loss give
 * the same forward (1e-5) and the same gradients (1e-4) on cpu (fused kernels, and tfjs ops with
 * the fused kernels off) and on wasm (with the native BLAS when one loads, and without it in a
 * fresh process); neither path leaks tensors; lib/vit reaches lib/backend only through mod.ts.
 *
 * Tolerances are relative to the largest magnitude of the reference (the fast path):
 * `max |textbook - fast| / max |fast|`.
 */
import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { type BackendInfo, initBackend } from "../lib/backend/mod.ts";
import { setFusedEnabled } from "../lib/backend/fused.ts";
import { MaskedAutoencoder } from "../lib/mim/mae.ts";
import { randomMaskPlan } from "../lib/mim/random.ts";
import { makeRng } from "../lib/util/rng.ts";
import { Block, setTextbookLayers, textbookLayers } from "../lib/vit/layers.ts";
import { ParamStore } from "../lib/vit/params.ts";
import type { VitShape } from "../lib/vit/presets.ts";
import { VisionTransformer } from "../lib/vit/vit.ts";

const FORWARD_TOL = 1e-5;
const GRAD_TOL = 1e-4;

const wasmInfo: BackendInfo | null = await initBackend({ backend: "wasm", quiet: true })
  .catch(() => null);
await initBackend({ backend: "cpu", quiet: true });

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

function values(n: number, seed: number): Float32Array {
  const rng = makeRng(seed, "vit-textbook");
  return Float32Array.from({ length: n }, () => rng() * 2 - 1);
}

function maxRelDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length);
  let scale = 1e-6, d = 0;
  for (let i = 0; i < b.length; i++) scale = Math.max(scale, Math.abs(b[i]));
  for (let i = 0; i < a.length; i++) d = Math.max(d, Math.abs(a[i] - b[i]));
  return d / scale;
}

/** Outputs of one computation: the first `forward` are values, the rest gradients. */
interface Outputs {
  tensors: tf.Tensor[];
  forward: number;
  names: string[];
}

/** Runs `fn` with the textbook layers on, then off (the fast path); returns both read back. */
async function bothPaths(fn: () => Outputs) {
  const read = async (on: boolean) => {
    setTextbookLayers(on);
    try {
      let forward = 0, names: string[] = [];
      const out = tf.tidy(() => {
        const r = fn();
        forward = r.forward;
        names = r.names;
        return r.tensors;
      });
      const data = await Promise.all(out.map((t) => t.data() as Promise<Float32Array>));
      tf.dispose(out);
      return { data, forward, names };
    } finally {
      setTextbookLayers(false);
    }
  };
  const textbook = await read(true);
  const fast = await read(false);
  return { textbook: textbook.data, fast: fast.data, forward: fast.forward, names: fast.names };
}

function assertSame(what: string, r: Awaited<ReturnType<typeof bothPaths>>): void {
  assert.equal(r.textbook.length, r.fast.length);
  for (let i = 0; i < r.fast.length; i++) {
    const tol = i < r.forward ? FORWARD_TOL : GRAD_TOL;
    const d = maxRelDiff(r.textbook[i], r.fast[i]);
    assert.ok(d <= tol, `${what}: ${r.names[i]} differs by ${d} (relative; tolerance ${tol})`);
  }
}

/** A Block with non-trivial norms: output, attention, then d/dx and every weight's gradient. */
function blockCase(): Outputs {
  const D = SHAPE.dim, B = 2, T = 9;
  const store = new ParamStore(7);
  const block = new Block(store, "block", D, SHAPE.heads, SHAPE.mlpRatio);
  for (const [i, ln] of [block.norm1, block.norm2].entries()) {
    ln.gamma.assign(tf.add(1, tf.mul(0.5, tf.tensor1d(values(D, 10 + i)))));
    ln.beta.assign(tf.mul(0.5, tf.tensor1d(values(D, 20 + i))));
  }
  const x = tf.tensor3d(values(B * T * D, 1).map((v) => 2 * v), [B, T, D]);
  const probe = tf.tensor3d(values(B * T * D, 2), [B, T, D]);
  const attnProbe = tf.range(0, T * T).reshape([T, T]);
  const f = (xx: tf.Tensor) => {
    const { out, attention } = block.apply(xx as tf.Tensor3D, { keepAttention: true });
    return tf.add(tf.sum(tf.mul(out, probe)), tf.sum(tf.mul(attention!, attnProbe))) as tf.Scalar;
  };
  const { out, attention } = block.apply(x, { keepAttention: true });
  const { grads } = tf.variableGrads(() => f(x), store.variables());
  const dx = tf.grad(f)(x);
  const vars = store.variables();
  const tensors = [out, attention!, dx, ...vars.map((v) => grads[v.name])];
  const names = ["out", "attention", "dx", ...vars.map((v) => `d ${v.name}`)];
  store.dispose();
  return { tensors, forward: 2, names };
}

/** A ViT encoder on all patches: tokens and the last attention (forward only). */
function vitCase(): Outputs {
  const B = 2, L = 16, P = 48;
  const store = new ParamStore(4);
  const vit = new VisionTransformer(store, SHAPE, "encoder");
  const x = tf.tensor3d(values(B * L * P, 3), [B, L, P]);
  const { tokens, attention } = vit.forwardFeatures(x, true);
  vit.dispose();
  store.dispose();
  return { tensors: [tokens, attention!], forward: 2, names: ["tokens", "attention"] };
}

/** A small MAE (norm-pix loss): its loss, then every parameter's gradient. */
function maeCase(): Outputs {
  const B = 3, L = 16, P = 48;
  const mae = new MaskedAutoencoder({ shape: SHAPE, normPixLoss: true, seed: 3 });
  const patches = tf.tensor2d(values(B * L * P, 5), [B * L, P]);
  const plan = randomMaskPlan(B, L, 0.75, makeRng(6, "plan"));
  const vars = mae.store.variables();
  const { value, grads } = tf.variableGrads(() => mae.lossFn(patches, plan), vars);
  const tensors = [value, ...vars.map((v) => grads[v.name])];
  const names = ["loss", ...vars.map((v) => `d ${v.name}`)];
  mae.dispose();
  return { tensors, forward: 1, names };
}

const CASES = { "a Block": blockCase, "a ViT encoder": vitCase, "a small MAE loss": maeCase };

/** Counts tensors around three MAE forward + backward passes and Block calls on one path. */
function assertNoLeak(what: string, textbook: boolean): void {
  setTextbookLayers(textbook);
  try {
    const mae = new MaskedAutoencoder({ shape: SHAPE, normPixLoss: true, seed: 3 });
    const block = new Block(mae.store, "extra", SHAPE.dim, SHAPE.heads, SHAPE.mlpRatio);
    const patches = tf.tensor2d(values(3 * 16 * 48, 5), [3 * 16, 48]);
    const x = tf.tensor3d(values(2 * 5 * SHAPE.dim, 1), [2, 5, SHAPE.dim]);
    const plan = randomMaskPlan(3, 16, 0.75, makeRng(6, "plan"));
    const vars = mae.store.variables().filter((v) => !v.name.startsWith("extra."));
    const before = tf.memory().numTensors;
    const counts: number[] = [];
    for (let i = 0; i < 3; i++) {
      const { value, grads } = tf.variableGrads(() => mae.lossFn(patches, plan), vars);
      tf.dispose([value, ...Object.values(grads)]);
      const attn = tf.tidy(() => block.apply(x, { keepAttention: true }).attention!);
      const w = tf.tidy(() => block.attentionWeights(x));
      tf.dispose([attn, w]);
      counts.push(tf.memory().numTensors);
    }
    assert.deepEqual(counts, [before, before, before], `${what}: tensor count grew`);
    tf.dispose([patches, x]);
    mae.dispose();
    assert.equal(textbookLayers(), textbook);
  } finally {
    setTextbookLayers(false);
  }
}

Deno.test("setTextbookLayers() switches the layers between plain tf ops and the fast ops", async () => {
  await initBackend({ backend: "cpu", quiet: true });
  assert.equal(textbookLayers(), false, "the fast path is the default");
  const kernels = async (on: boolean) => {
    setTextbookLayers(on);
    try {
      const info = await tf.profile(() => tf.tidy(() => blockCase().tensors));
      return new Set(info.kernelNames);
    } finally {
      setTextbookLayers(false);
    }
  };
  const textbook = await kernels(true), fast = await kernels(false);
  const fused = (s: Set<string>) => [...s].filter((k) => k.startsWith("Amt")).sort();
  assert.deepEqual(fused(textbook), [], "the textbook path runs no fused kernel");
  for (const k of ["Erf", "Softmax", "Transpose", "BatchMatMul", "Sqrt"]) {
    assert.ok(textbook.has(k), `the textbook path runs ${k}`);
  }
  for (const k of ["AmtLayerNormFwd", "AmtGeluFwd", "AmtSplitHeads"]) {
    assert.ok(fast.has(k), `the fast path on cpu runs ${k}`);
  }
});

for (const [what, fn] of Object.entries(CASES)) {
  Deno.test(`textbook and fast layers agree on cpu for ${what}: forward 1e-5, gradients 1e-4`, async () => {
    await initBackend({ backend: "cpu", quiet: true });
    assertSame(`${what}, cpu fused kernels`, await bothPaths(fn));
    setFusedEnabled(false); // the fast ops' own tfjs fallback (webgpu, tensorflow)
    try {
      assertSame(`${what}, cpu tfjs ops`, await bothPaths(fn));
    } finally {
      setFusedEnabled(true);
    }
  });
}

const wasmKind = wasmInfo?.nativeMatmul ? "fused kernels + native BLAS" : "fused kernels, no BLAS";
for (const [what, fn] of Object.entries(CASES)) {
  Deno.test({
    name: `textbook and fast layers agree on wasm (${wasmKind}) for ${what}`,
    ignore: wasmInfo === null,
    fn: async () => {
      await initBackend({ backend: "wasm", quiet: true });
      try {
        assertSame(`${what}, wasm ${wasmKind}`, await bothPaths(fn));
      } finally {
        await initBackend({ backend: "cpu", quiet: true });
      }
    },
  });
}

Deno.test({
  name:
    "textbook and fast layers agree on wasm without a native BLAS (AMT_BLAS=off, fresh process)",
  // the child runs the wasm tests above with no BLAS; it does not start another one
  ignore: wasmInfo?.nativeMatmul !== true || Deno.env.get("AMT_BLAS") === "off",
  fn: async () => {
    const out = await new Deno.Command(Deno.execPath(), {
      args: [
        "test",
        "-A",
        "--no-check",
        "--config",
        new URL("../deno.json", import.meta.url).pathname,
        "--filter",
        "on wasm (fused kernels, no BLAS)",
        new URL(import.meta.url).pathname,
      ],
      env: { AMT_BLAS: "off", NO_COLOR: "1" },
      stdout: "piped",
      stderr: "piped",
    }).output();
    const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
    assert.equal(out.code, 0, text);
    assert.match(text, /ok \| 3 passed/, text);
  },
});

Deno.test("textbook and fast layers leak no tensors over MAE steps and Block calls", async () => {
  const backends = wasmInfo === null ? ["cpu"] as const : ["cpu", "wasm"] as const;
  for (const backend of backends) {
    await initBackend({ backend, quiet: true });
    try {
      assertNoLeak(`${backend} textbook`, true);
      assertNoLeak(`${backend} fast`, false);
    } finally {
      await initBackend({ backend: "cpu", quiet: true });
    }
  }
});

Deno.test("lib/vit reaches lib/backend only through its mod.ts", async () => {
  const dir = new URL("../lib/vit/", import.meta.url);
  let files = 0;
  for await (const e of Deno.readDir(dir)) {
    if (!e.name.endsWith(".ts")) continue;
    files++;
    const text = await Deno.readTextFile(new URL(e.name, dir));
    for (const m of text.matchAll(/from\s+"([^"]*\/backend\/[^"]*)"/g)) {
      assert.equal(m[1], "../backend/mod.ts", `lib/vit/${e.name} imports ${m[1]}`);
    }
  }
  assert.ok(files > 0);
});
