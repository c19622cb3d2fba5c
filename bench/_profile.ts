import * as tf from "@tensorflow/tfjs";
import { initBackend } from "/work/main/lib/backend/mod.ts";
import { MaskedAutoencoder } from "/work/main/lib/mim/mae.ts";
import { randomMaskPlan } from "/work/main/lib/mim/random.ts";
import { AdamW } from "/work/main/lib/train/adamw.ts";
import { makeRng } from "/work/main/lib/util/rng.ts";
await initBackend({ backend: (Deno.args[0] ?? "wasm") as "wasm", threads: Number(Deno.args[1] ?? 0) });
const S = 32, p = 4, C = 3;
const shape = { imageSize: S, patchSize: p, channels: C, dim: 192, depth: 6, heads: 3, mlpRatio: 4, decoderDim: 128, decoderDepth: 2, decoderHeads: 4 };
const mae = new MaskedAutoencoder({ shape, normPixLoss: true, seed: 0 });
const opt = new AdamW([...mae.store.params.values()], { beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: 0.05, clipGrad: 0 });
const B = 64, L = (S / p) ** 2, P = p * p * C;
const rng = makeRng(0, "x");
const patches = tf.tensor2d(new Float32Array(B * L * P).map(() => rng() * 2 - 1), [B * L, P]);
const plan = randomMaskPlan(B, L, 0.75, rng);
for (let i = 0; i < 3; i++) { const { loss, gradNorm } = opt.minimize(() => mae.lossFn(patches, plan), 1e-4); await loss.data(); tf.dispose([loss, gradNorm]); }
const times = [];
for (let i = 0; i < 5; i++) { const t0 = performance.now(); const { loss, gradNorm } = opt.minimize(() => mae.lossFn(patches, plan), 1e-4); await loss.data(); tf.dispose([loss, gradNorm]); times.push(performance.now() - t0); }
console.log("step ms", times.map((t) => t.toFixed(0)).join(" "));
const prof = await tf.profile(async () => { const { loss, gradNorm } = opt.minimize(() => mae.lossFn(patches, plan), 1e-4); await loss.data(); tf.dispose([loss, gradNorm]); });
const agg = new Map<string, number>();
for (const k of prof.kernels) { const key = k.name + " " + JSON.stringify(k.inputShapes); agg.set(key, (agg.get(key) ?? 0) + (k.kernelTimeMs as number)); }
const tot = [...agg.values()].reduce((a, b) => a + b, 0);
console.log("profiled total", tot.toFixed(0));
for (const [k, v] of [...agg.entries()].sort((a, b) => b[1] - a[1]).slice(0, 25)) console.log(v.toFixed(1).padStart(8), k);
