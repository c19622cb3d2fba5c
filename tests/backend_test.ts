import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import * as wasm from "@tensorflow/tfjs-backend-wasm";
import { type BackendInfo, backendSummary, initBackend } from "../lib/backend/mod.ts";
import { findNativePackage, NATIVE_PACKAGES } from "../lib/backend/_native.ts";

const ROOT = new URL("../", import.meta.url);
const MOD_URL = new URL("../lib/backend/mod.ts", import.meta.url).href;

/** Seeded inputs: x [M, K], w [K, N]. */
function inputs(m: number, k: number, n: number): { x: Float32Array; w: Float32Array } {
  let s = 12345;
  const next = () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32 - 0.5;
  };
  const x = Float32Array.from({ length: m * k }, next);
  const w = Float32Array.from({ length: k * n }, next);
  return { x, w };
}

/** matMul then softmax over the last axis, on the active backend. */
async function matMulSoftmax(
  x: Float32Array,
  w: Float32Array,
  m: number,
  k: number,
  n: number,
): Promise<{ mm: Float32Array; sm: Float32Array }> {
  const [mm, sm] = tf.tidy(() => {
    const y = tf.matMul(tf.tensor2d(x, [m, k]), tf.tensor2d(w, [k, n])); // [M, N]
    return [y, tf.softmax(y)];
  });
  const out = { mm: (await mm.data()) as Float32Array, sm: (await sm.data()) as Float32Array };
  tf.dispose([mm, sm]);
  return out;
}

function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  assert.equal(a.length, b.length);
  let d = 0;
  for (let i = 0; i < a.length; i++) d = Math.max(d, Math.abs(a[i] - b[i]));
  return d;
}

/** Same computation on `backend` (already started) and on cpu; returns both diffs. */
async function compareWithCpu(m: number, k: number, n: number) {
  const { x, w } = inputs(m, k, n);
  const backend = tf.getBackend();
  const got = await matMulSoftmax(x, w, m, k, n);
  await initBackend({ backend: "cpu", quiet: true });
  const ref = await matMulSoftmax(x, w, m, k, n);
  assert.ok(await tf.setBackend(backend), `could not switch back to ${backend}`);
  return { mm: maxAbsDiff(got.mm, ref.mm), sm: maxAbsDiff(got.sm, ref.sm) };
}

/** Runs `code` (an async module body with `mod` = lib/backend/mod.ts) in a fresh Deno. */
async function runFresh(
  code: string,
  env: Record<string, string> = {},
): Promise<{ code: number; out: string; err: string }> {
  const script = `const mod = await import(${JSON.stringify(MOD_URL)});\n${code}`;
  const cmd = new Deno.Command(Deno.execPath(), {
    args: ["eval", "--config", new URL("deno.json", ROOT).pathname, script],
    cwd: ROOT.pathname,
    env,
    stdout: "piped",
    stderr: "piped",
  });
  const res = await cmd.output();
  const dec = new TextDecoder();
  return { code: res.code, out: dec.decode(res.stdout), err: dec.decode(res.stderr) };
}

/** Calls `fn` with console.log captured; returns what it printed. */
async function captureLog<T>(fn: () => Promise<T>): Promise<{ value: T; lines: string[] }> {
  const lines: string[] = [];
  const orig = console.log;
  console.log = (...args: unknown[]) => lines.push(args.map(String).join(" "));
  try {
    return { value: await fn(), lines };
  } finally {
    console.log = orig;
  }
}

Deno.test("initBackend() rejects an unknown backend and bad thread counts", async () => {
  await assert.rejects(
    initBackend({ backend: "tpu" as "cpu" }),
    /backend must be one of auto, wasm, cpu, webgpu, tensorflow; got "tpu"/,
  );
  await assert.rejects(initBackend({ backend: "wasm", threads: -1 }), /threads must be .* got -1/);
  await assert.rejects(initBackend({ backend: "wasm", threads: 1.5 }), /got 1.5/);
});

Deno.test("initBackend('cpu') starts cpu, prints one line, and is idempotent", async () => {
  const first = await captureLog(() => initBackend({ backend: "cpu" }));
  assert.deepEqual(first.value, { backend: "cpu", threads: 1, simd: false, note: "" });
  assert.deepEqual(first.lines, ["backend: cpu (pure JS, 1 thread)"]);
  assert.equal(tf.getBackend(), "cpu");
  const again = await captureLog(() => initBackend({ backend: "cpu" }));
  assert.equal(again.value, first.value, "same choice returns the same info object");
  assert.deepEqual(again.lines, [], "a no-op call prints nothing");
});

Deno.test({
  name: "initBackend('wasm') reports SIMD and threads, and matches cpu on matMul + softmax",
  fn: async () => {
    const { value: info, lines } = await captureLog(() => initBackend({ backend: "wasm" }));
    assert.equal(info.backend, "wasm");
    assert.equal(tf.getBackend(), "wasm");
    assert.equal(info.simd, true, "Deno's V8 has wasm SIMD");
    assert.ok(info.threads >= 1);
    assert.equal(lines.length, 1);
    const t = info.threads === 1 ? "1 thread" : `${info.threads} threads`;
    assert.ok(lines[0].startsWith(`backend: wasm (SIMD, ${t}`), lines[0]);
    // Small case: 32 rows x 48 inner x 40 cols; fp32 tolerances.
    const d = await compareWithCpu(32, 48, 40);
    assert.ok(d.mm < 1e-4, `matMul max |wasm - cpu| = ${d.mm}`);
    assert.ok(d.sm < 1e-6, `softmax max |wasm - cpu| = ${d.sm}`);
  },
});

Deno.test({
  name: "initBackend('wasm') threads > 1 are real pool threads and compute the cpu result",
  fn: async () => {
    const info: BackendInfo = await initBackend({ backend: "wasm", quiet: true });
    const cores = navigator.hardwareConcurrency;
    if (info.threads === 1) {
      // A single thread is only acceptable with a stated reason (or a 1-core machine).
      assert.ok(cores === 1 || info.note !== "", `1 thread on ${cores} cores without a reason`);
      return;
    }
    assert.equal(info.threads, Math.min(cores, 8), "auto = one thread per logical core, max 8");
    // XNNPACK's pool size, as the wasm module itself reports it.
    assert.equal(wasm.getThreadsCount(), info.threads);
    const s = backendSummary();
    assert.ok(s.wasm !== undefined);
    assert.equal(s.wasm.poolThreads, info.threads);
    // The caller thread plus (threads - 1) pthreads, each of which checked in when it started.
    assert.ok(
      s.wasm.pthreadsStarted >= info.threads - 1,
      `only ${s.wasm.pthreadsStarted} pthreads started for ${info.threads} threads`,
    );
    assert.equal(s.wasm.workers, info.threads - 1, "one live worker per pool pthread");
    // Big enough for XNNPACK to split the work across threads: [256, 192] x [192, 384].
    const d = await compareWithCpu(256, 192, 384);
    assert.ok(d.mm < 1e-3, `threaded matMul max |wasm - cpu| = ${d.mm}`);
    assert.ok(d.sm < 1e-5, `threaded softmax max |wasm - cpu| = ${d.sm}`);
  },
});

Deno.test({
  name: "initBackend('wasm') keeps the first thread count and says so",
  fn: async () => {
    const first = await initBackend({ backend: "wasm", quiet: true });
    const other = first.threads === 1 ? 2 : 1;
    const info = await initBackend({ backend: "wasm", threads: other, quiet: true });
    assert.equal(info.threads, first.threads);
    if (first.note === "") assert.match(info.note, /fixed once wasm started/);
    assert.equal(tf.getBackend(), "wasm");
  },
});

Deno.test({
  name: "initBackend('auto') picks tfjs-node when installed, else wasm",
  fn: async () => {
    const info = await initBackend({ backend: "auto", quiet: true });
    const native = NATIVE_PACKAGES.some((p) => findNativePackage(p) !== null);
    if (!native) {
      assert.equal(info.backend, "wasm");
    } else {
      // Installed but maybe unloadable here: then wasm with the reason in the note.
      assert.ok(info.backend === "tensorflow" || /tfjs-node/.test(info.note), info.note);
    }
    const s = backendSummary();
    assert.equal(s.requested, "auto");
    assert.equal(s.backend, info.backend);
    assert.equal(s.tfjs, "4.22.0");
    assert.deepEqual(JSON.parse(JSON.stringify(s)), s, "summary is plain JSON");
  },
});

Deno.test({
  name: "initBackend('tensorflow') without tfjs-node fails with install instructions",
  fn: async () => {
    const installed = NATIVE_PACKAGES.filter((p) => findNativePackage(p) !== null);
    if (installed.length > 0) {
      // Where tfjs-node exists it must either work or say why it failed.
      try {
        const info = await initBackend({ backend: "tensorflow", quiet: true });
        assert.equal(info.backend, "tensorflow");
      } catch (e) {
        assert.match(String(e), /backend tensorflow: .*tfjs-node/);
      }
      return;
    }
    await assert.rejects(initBackend({ backend: "tensorflow", quiet: true }), (e: Error) => {
      assert.match(e.message, /^backend tensorflow: @tensorflow\/tfjs-node is not installed/);
      assert.match(e.message, /deno add npm:@tensorflow\/tfjs-node@4\.22\.0/);
      assert.match(e.message, /npm i @tensorflow\/tfjs-node@4\.22\.0/);
      assert.match(e.message, /--backend=wasm/);
      return true;
    });
  },
});

/** Runs initBackend("webgpu") in a fresh process; reports adapter presence and the outcome. */
async function webgpuInFreshProcess(env: Record<string, string>) {
  // A fresh process keeps wgpu out of the test runner: with a software (lavapipe) device alive,
  // the test process occasionally aborted at exit with a glibc heap-corruption message.
  const r = await runFresh(
    `const tf = await import("@tensorflow/tfjs");
     const gpu = navigator.gpu;
     const adapter = gpu ? await gpu.requestAdapter() : null;
     let error = null, info = null, diff = null;
     try { info = await mod.initBackend({ backend: "webgpu", quiet: true }); }
     catch (e) { error = e.message; }
     if (info !== null) {
       const run = async () => {
         const x = tf.tensor2d(Array.from({ length: 16 * 24 }, (_, i) => Math.sin(i)), [16, 24]);
         const w = tf.tensor2d(Array.from({ length: 24 * 20 }, (_, i) => Math.cos(i)), [24, 20]);
         return await tf.softmax(tf.matMul(x, w)).data(); // [16, 20]
       };
       const got = await run();
       await mod.initBackend({ backend: "cpu", quiet: true });
       const ref = await run();
       diff = Math.max(...got.map((v, i) => Math.abs(v - ref[i])));
     }
     console.log(JSON.stringify({ adapter: adapter !== null, backend: info?.backend, error, diff }));`,
    env,
  );
  assert.equal(r.code, 0, r.err);
  return JSON.parse(r.out.trim().split("\n").at(-1)!);
}

Deno.test("initBackend('webgpu') starts when an adapter exists, else says --backend=wasm", async () => {
  const res = await webgpuInFreshProcess({});
  if (res.adapter) {
    assert.equal(res.error, null, "an adapter exists, so webgpu must start");
    assert.equal(res.backend, "webgpu");
    assert.ok(res.diff < 1e-5, `webgpu matMul + softmax max |diff vs cpu| = ${res.diff}`);
  } else {
    assert.match(res.error, /^backend webgpu: .*--backend=wasm/);
  }
});

Deno.test("initBackend('webgpu') with no adapter gives a clear error", async () => {
  // DENO_WEBGPU_BACKEND=dx12 selects a graphics API Linux lacks, so Deno finds no adapter.
  const res = await webgpuInFreshProcess({
    DENO_WEBGPU_BACKEND: Deno.build.os === "windows" ? "metal" : "dx12",
  });
  if (res.adapter) {
    assert.equal(res.error, null, "an adapter exists, so webgpu must start");
  } else {
    assert.match(res.error, /^backend webgpu: .*no GPU adapter.*--backend=wasm/);
  }
});

Deno.test("initBackend('wasm') falls back to 1 SIMD thread with the reason when workers fail", async () => {
  // Make every pthread worker fail to start; the backend must still come up, single-threaded.
  const r = await runFresh(
    `const wt = (await import("node:worker_threads")).default;
     wt.Worker = class { constructor() { throw new Error("workers disabled by test"); } };
     const tf = await import("@tensorflow/tfjs");
     const info = await mod.initBackend({ backend: "wasm", threads: 2 });
     const a = tf.tensor2d([[1, 2], [3, 4]]);
     const y = Array.from(await tf.softmax(tf.matMul(a, a)).data());
     console.log(JSON.stringify({ info, y, backend: tf.getBackend() }));`,
  );
  assert.equal(r.code, 0, r.err);
  const lines = r.out.trim().split("\n");
  // then the matmul: a native BLAS on 1 thread, or why there is none
  assert.match(
    lines[0],
    /^backend: wasm \(SIMD, 1 thread: threaded wasm failed \(workers disabled by test\); (matmul: .*, 1 thread|no native BLAS found .*)\)$/,
  );
  const res = JSON.parse(lines.at(-1)!);
  assert.equal(res.backend, "wasm");
  assert.equal(res.info.threads, 1);
  // softmax([[7, 10], [15, 22]]) row-wise.
  const e3 = 1 / (1 + Math.exp(3)), e7 = 1 / (1 + Math.exp(7));
  const want = [e3, 1 - e3, e7, 1 - e7];
  for (let i = 0; i < 4; i++) assert.ok(Math.abs(res.y[i] - want[i]) < 1e-6, `y[${i}]`);
});

Deno.test("initBackend('wasm', threads: 2) in a fresh process runs 2 threads and exits", async () => {
  // The pool threads never finish; the process must still exit when the script ends.
  const r = await runFresh(
    `const info = await mod.initBackend({ backend: "wasm", threads: 2, quiet: true });
     console.log(JSON.stringify({ info, s: mod.backendSummary().wasm }));`,
  );
  assert.equal(r.code, 0, r.err);
  const res = JSON.parse(r.out.trim().split("\n").at(-1)!);
  assert.equal(res.info.threads, 2, res.info.note);
  assert.equal(res.s.poolThreads, 2);
  assert.equal(res.s.pthreadsStarted, 1);
  assert.equal(res.s.workers, 1, "only the pool slot XNNPACK uses gets a real worker");
});

Deno.test("a MAE training step runs on webgpu (when an adapter exists) and matches cpu", async () => {
  const r = await runFresh(
    `const tf = await import("@tensorflow/tfjs");
     const { MaskedAutoencoder } = await import(${
      JSON.stringify(new URL("../lib/mim/mae.ts", import.meta.url).href)
    });
     const { randomMaskPlan } = await import(${
      JSON.stringify(new URL("../lib/mim/random.ts", import.meta.url).href)
    });
     const { makeRng } = await import(${
      JSON.stringify(new URL("../lib/util/rng.ts", import.meta.url).href)
    });
     const { AdamW } = await import(${
      JSON.stringify(new URL("../lib/optim/adamw.ts", import.meta.url).href)
    });
     const shape = { imageSize: 16, patchSize: 4, channels: 3, dim: 24, depth: 2, heads: 3,
       mlpRatio: 4, decoderDim: 16, decoderDepth: 1, decoderHeads: 2 };
     const adapter = navigator.gpu ? await navigator.gpu.requestAdapter() : null;
     const run = async () => {
       const model = new MaskedAutoencoder({ shape, normPixLoss: true, seed: 1 });
       const opt = new AdamW([...model.store.params.values()],
         { beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: 0.05, clipGrad: 1 });
       const rng = makeRng(2, "p");
       const patches = tf.tensor2d(Float32Array.from({ length: 4 * 16 * 48 }, () => rng() - 0.5), [64, 48]);
       const losses = [];
       for (let s = 0; s < 2; s++) {
         const { loss, gradNorm } = opt.minimize(() => model.lossFn(patches, randomMaskPlan(4, 16, 0.75, makeRng(3, s))), 1e-3);
         losses.push((await loss.data())[0]);
         tf.dispose([loss, gradNorm]);
       }
       return losses;
     };
     let error = null, got = null;
     try { await mod.initBackend({ backend: "webgpu", quiet: true }); got = await run(); }
     catch (e) { error = e.message; }
     await mod.initBackend({ backend: "cpu", quiet: true });
     const ref = await run();
     console.log(JSON.stringify({ adapter: adapter !== null, error, got, ref }));`,
  );
  assert.equal(r.code, 0, r.err);
  const res = JSON.parse(r.out.trim().split("\n").at(-1)!);
  if (!res.adapter) {
    assert.match(res.error, /^backend webgpu: .*--backend=wasm/);
    return;
  }
  assert.equal(res.error, null);
  for (let s = 0; s < 2; s++) {
    assert.ok(
      Math.abs(res.got[s] - res.ref[s]) < 1e-3 * res.ref[s],
      `step ${s}: ${res.got[s]} vs ${res.ref[s]}`,
    );
  }
});

Deno.test("oneDNN's OpenMP threads spin a bounded while unless the environment sets a wait policy", async () => {
  const code = `await mod.initBackend({ backend: "wasm", quiet: true });
     console.log(JSON.stringify({ dnnl: mod.backendSummary().dnnl ?? null,
       spin: Deno.env.get("GOMP_SPINCOUNT") ?? null }));`;
  const inherited = ["OMP_WAIT_POLICY", "GOMP_SPINCOUNT"].some((v) =>
    Deno.env.get(v) !== undefined
  );
  const plain = await runFresh(code);
  assert.equal(plain.code, 0, plain.err);
  const a = JSON.parse(plain.out.trim().split("\n").at(-1)!);
  assert.ok(a.dnnl !== null, "CI requires oneDNN (libdnnl2)");
  if (a.dnnl.runtime === "OpenMP") {
    if (inherited) assert.match(a.dnnl.waitPolicy, /^from the environment/);
    else {
      assert.equal(a.dnnl.waitPolicy, "spin 3000");
      assert.equal(a.spin, null, "the variable is put back after oneDNN loads");
    }
  }
  const chosen = await runFresh(code, { GOMP_SPINCOUNT: "5" });
  assert.equal(chosen.code, 0, chosen.err);
  const b = JSON.parse(chosen.out.trim().split("\n").at(-1)!);
  if (b.dnnl.runtime === "OpenMP") {
    assert.match(b.dnnl.waitPolicy, /^from the environment \(.*GOMP_SPINCOUNT=5/);
    assert.equal(b.spin, "5", "the user's value is left alone");
  }
});
