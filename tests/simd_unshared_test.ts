/**
 * The SIMD kernels on tfjs-backend-wasm's single-threaded build (`threads: 1`), whose heap is an
 * unshared memory: each `simd/*.wat` module is linked with its memory import rewritten as
 * unshared (`unshareMemoryImport` in `lib/backend/_simd.ts`). Until then every SIMD kernel
 * (AdamW, LayerNorm, GELU, the bf16 copies) fell back to its scalar loop there.
 *
 * - The rewrite: each module links against an unshared memory only after it, and computes
 *   there what it computes on a shared one.
 * - In a fresh single-threaded process: the SIMD paths are taken (AdamW, the bf16
 *   conversion); an MAE loss and its gradients match SIMD off to 1e-5 of each tensor's largest
 *   magnitude (SIMD LayerNorm sums in another order, so not bit for bit), three AdamW steps on
 *   the same gradients to 1e-6.
 */
import assert from "node:assert/strict";
import { unshareMemoryImport } from "../lib/backend/_simd.ts";
import { decodeBase64 } from "../lib/util/base64.ts";
import { WASM_BASE64 as ADAMW } from "../lib/backend/simd/adamw_wasm.ts";
import { WASM_BASE64 as BF16 } from "../lib/backend/simd/bf16_wasm.ts";
import { WASM_BASE64 as GELU } from "../lib/backend/simd/gelu_wasm.ts";
import { WASM_BASE64 as LAYERNORM } from "../lib/backend/simd/layernorm_wasm.ts";

/** max |a - b| / max |b| */
function relDiff(a: number[], b: number[]): number {
  assert.equal(a.length, b.length);
  let scale = 1e-12, d = 0;
  for (let i = 0; i < a.length; i++) {
    scale = Math.max(scale, Math.abs(b[i]));
    d = Math.max(d, Math.abs(a[i] - b[i]));
  }
  return d / scale;
}

/** What the child process reports for one run. */
interface Run {
  model: number[][];
  adamw: number[];
  simdConversions: number;
  simdSteps: number;
  inPlace: number;
}

const MODULES = { adamw: ADAMW, bf16: BF16, gelu: GELU, layernorm: LAYERNORM };

Deno.test("unshareMemoryImport: every SIMD module links to an unshared memory only after it", () => {
  for (const [name, b64] of Object.entries(MODULES)) {
    const bytes = decodeBase64(b64);
    const unshared = new WebAssembly.Memory({ initial: 2 });
    const shared = new WebAssembly.Memory({ initial: 2, maximum: 65536, shared: true });
    const original = new WebAssembly.Module(bytes as BufferSource);
    assert.throws(
      () => new WebAssembly.Instance(original, { env: { memory: unshared } }),
      WebAssembly.LinkError,
      `${name}: the original should need a shared memory`,
    );
    const patched = new WebAssembly.Module(unshareMemoryImport(bytes) as BufferSource);
    new WebAssembly.Instance(patched, { env: { memory: unshared } });
    // the rest of the module is unchanged: same exports, same code size
    assert.deepEqual(
      WebAssembly.Module.exports(patched),
      WebAssembly.Module.exports(original),
      name,
    );
    assert.ok(Math.abs(unshareMemoryImport(bytes).length - bytes.length) <= 4, name);
    new WebAssembly.Instance(original, { env: { memory: shared } });
  }
  const none = Uint8Array.from([0, 0x61, 0x73, 0x6d, 1, 0, 0, 0]); // an empty module
  assert.deepEqual(unshareMemoryImport(none), none);
});

Deno.test("unshared GELU module computes what the shared one does", () => {
  const bytes = decodeBase64(GELU);
  const n = 1024;
  const run = (memory: WebAssembly.Memory, mod: WebAssembly.Module) => {
    const ex = new WebAssembly.Instance(mod, { env: { memory } }).exports as {
      gelu(x: number, y: number, d: number, n: number): void;
    };
    const f = new Float32Array(memory.buffer);
    for (let i = 0; i < n; i++) f[i] = Math.sin(i * 0.37) * 4;
    ex.gelu(0, 4 * n, 8 * n, n);
    return Float32Array.from(f.subarray(n, 3 * n));
  };
  const a = run(
    new WebAssembly.Memory({ initial: 1, maximum: 65536, shared: true }),
    new WebAssembly.Module(bytes as BufferSource),
  );
  const b = run(
    new WebAssembly.Memory({ initial: 1 }),
    new WebAssembly.Module(unshareMemoryImport(bytes) as BufferSource),
  );
  assert.deepEqual(b, a);
  assert.ok(a.some((v) => v !== 0));
});

Deno.test("single-threaded wasm: SIMD AdamW and bf16 copies run, MAE gradients and AdamW match SIMD off", async () => {
  const code = `
    const tf = await import("@tensorflow/tfjs");
    const be = await import(${
    JSON.stringify(new URL("../lib/backend/mod.ts", import.meta.url).href)
  });
    const fused = await import(${
    JSON.stringify(new URL("../lib/backend/fused.ts", import.meta.url).href)
  });
    const { MaskedAutoencoder } = await import(${
    JSON.stringify(new URL("../lib/mim/mae.ts", import.meta.url).href)
  });
    const { randomMaskPlan } = await import(${
    JSON.stringify(new URL("../lib/mim/random.ts", import.meta.url).href)
  });
    const { AdamW } = await import(${
    JSON.stringify(new URL("../lib/optim/mod.ts", import.meta.url).href)
  });
    const { makeRng } = await import(${
    JSON.stringify(new URL("../lib/util/rng.ts", import.meta.url).href)
  });
    const info = await be.initBackend({ backend: "wasm", threads: 1, quiet: true });
    const shape = { imageSize: 16, patchSize: 4, channels: 3, dim: 48, depth: 2, heads: 3,
      mlpRatio: 4, decoderDim: 32, decoderDepth: 1, decoderHeads: 4 };
    const rng = makeRng(1, "unshared");
    const patches = tf.tensor2d(Float32Array.from({ length: 4 * 16 * 48 }, () => rng() * 2 - 1), [64, 48]);
    const run = (simd, precision) => {
      fused.setSimdEnabled(simd);
      be.setMatmulPrecision(precision);
      be.resetBf16Stats();
      // an MAE loss and every gradient (LayerNorm, GELU, the bf16 copies)
      const mae = new MaskedAutoencoder({ shape, normPixLoss: true, seed: 3 });
      const vars = mae.store.variables();
      const plan = randomMaskPlan(4, 16, 0.75, makeRng(2, "plan"));
      const { value, grads } = tf.variableGrads(() => mae.lossFn(patches, plan), vars);
      const model = [Array.from(value.dataSync()), ...vars.map((v) => Array.from(grads[v.name].dataSync()))];
      tf.dispose([value, ...Object.values(grads)]);
      mae.dispose();
      const simdConversions = be.bf16Stats().simdConversions;
      // three AdamW steps on a fixed quadratic (the same gradients on both paths)
      const init = tf.tensor2d(Float32Array.from({ length: 999 }, (_, i) => Math.sin(i)), [27, 37]);
      const p = tf.variable(init);
      init.dispose(); // the variable alone holds its data: AdamW may write it in place
      const target = tf.tensor2d(Float32Array.from({ length: 999 }, (_, i) => Math.cos(i * 0.3)), [27, 37]);
      const opt = new AdamW([{ variable: p, decay: true, name: "p.weight", group: "weight" }], { beta1: 0.9, beta2: 0.95,
        eps: 1e-8, weightDecay: 0.05, clipGrad: 1 });
      const simdBefore = fused.adamWInPlaceSimdSteps(), inPlaceBefore = fused.adamWInPlaceSteps();
      for (let s = 0; s < 3; s++) {
        const { loss, gradNorm } = opt.minimize(() => tf.sum(tf.square(tf.sub(p, target))), 1e-2);
        tf.dispose([loss, gradNorm]);
      }
      const out = { model, adamw: Array.from(p.dataSync()), simdConversions,
        simdSteps: fused.adamWInPlaceSimdSteps() - simdBefore, inPlace: fused.adamWInPlaceSteps() - inPlaceBefore };
      opt.dispose();
      tf.dispose([p, target]);
      return out;
    };
    const precisions = be.backendSummary().dnnl ? ["fp32", "bf16"] : ["fp32"];
    const result = { threads: info.threads, runs: {} };
    for (const p of precisions) result.runs[p] = { simd: run(true, p), scalar: run(false, p) };
    console.log(JSON.stringify(result));`;
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["eval", "--config", new URL("../deno.json", import.meta.url).pathname, code],
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
  const result = JSON.parse(new TextDecoder().decode(out.stdout).trim().split("\n").at(-1)!);
  assert.equal(result.threads, 1);
  for (
    const [precision, { simd, scalar }] of Object.entries(result.runs) as [
      string,
      { simd: Run; scalar: Run },
    ][]
  ) {
    assert.equal(simd.inPlace, 3, `${precision}: AdamW in place`);
    assert.equal(simd.simdSteps, 3, `${precision}: AdamW took the SIMD pass on the unshared heap`);
    assert.equal(scalar.simdSteps, 0, `${precision}: SIMD off ran the scalar loop`);
    if (precision === "bf16") {
      assert.ok(simd.simdConversions > 0, "bf16 copies took the SIMD conversion");
      assert.equal(scalar.simdConversions, 0);
    }
    for (const [i, v] of (simd.model as number[][]).entries()) {
      const what = i === 0 ? "the loss" : `gradient ${i - 1}`;
      assert.ok(relDiff(v, scalar.model[i]) < 1e-5, `${precision}: ${what}`);
    }
    assert.ok(relDiff(simd.adamw, scalar.adamw) < 1e-6, `${precision}: AdamW after 3 steps`);
    // they are different computations (else the comparison shows nothing)
    assert.ok(
      (simd.model as number[][]).some((v, i) => v.some((x, j) => x !== scalar.model[i][j])),
      precision,
    );
  }
});
