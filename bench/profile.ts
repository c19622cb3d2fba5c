/**
 * `deno run -A bench/profile.ts [--case=mae|simmim|saliency] [--threads=N]`
 *
 * One vit-tiny-32 training step under `tf.profile`: kernel time by kernel name.
 */
import { parseArgs } from "node:util";
import * as tf from "@tensorflow/tfjs";
import {
  initBackend,
  makeRng,
  MaskedAutoencoder,
  randomMaskPlan,
  SimMim,
  unitRandomMaskPlan,
} from "../mod.ts";
import { AdamW } from "../lib/train/adamw.ts";
import { PRESETS } from "../lib/vit/presets.ts";

const { values } = parseArgs({
  options: { case: { type: "string", default: "mae" }, threads: { type: "string", default: "2" } },
});
await initBackend({ backend: "wasm", threads: Number(values.threads) });
const s = { ...PRESETS["vit-tiny-32"], channels: 3 };
const B = 64, L = 64, P = 48;
const rng = makeRng(0, "prof");
const patches = tf.tensor2d(Float32Array.from({ length: B * L * P }, () => rng() * 2 - 1), [
  B * L,
  P,
]);
const model = values.case === "simmim"
  ? new SimMim({ shape: s, seed: 0 })
  : new MaskedAutoencoder({ shape: s, normPixLoss: true, seed: 0 });
const opt = new AdamW([...model.store.params.values()], {
  beta1: 0.9,
  beta2: 0.95,
  eps: 1e-8,
  weightDecay: 0.05,
  clipGrad: 0,
});
const plan = () =>
  values.case === "simmim"
    ? unitRandomMaskPlan(B, L, 2, 0.6, rng)
    : randomMaskPlan(B, L, 0.75, rng);
const step = async () => {
  const { loss, gradNorm } = opt.minimize(() => model.lossFn(patches, plan()), 1e-4);
  await loss.data();
  tf.dispose([loss, gradNorm]);
};
await step();
await step();
const t0 = performance.now();
const info = await tf.profile(step);
const wall = performance.now() - t0;
const by = new Map<string, { ms: number; n: number; shapes: Map<string, number> }>();
for (const k of info.kernels) {
  const e = by.get(k.name) ?? { ms: 0, n: 0, shapes: new Map() };
  const ms = await k.kernelTimeMs as number;
  e.ms += ms;
  e.n++;
  const sh = JSON.stringify(k.inputShapes);
  e.shapes.set(sh, (e.shapes.get(sh) ?? 0) + ms);
  by.set(k.name, e);
}
const rows = [...by.entries()].sort((a, b) => b[1].ms - a[1].ms);
const total = rows.reduce((a, r) => a + r[1].ms, 0);
console.log(
  `wall ${wall.toFixed(0)} ms, kernel sum ${total.toFixed(0)} ms, ${info.kernels.length} kernels`,
);
for (const [name, e] of rows.slice(0, 25)) {
  const top = [...e.shapes.entries()].sort((a, b) => b[1] - a[1]).slice(0, 3).map(([s, ms]) =>
    `${s}:${ms.toFixed(0)}`
  ).join("  ");
  console.log(
    `${name.padEnd(22)} ${e.ms.toFixed(1).padStart(8)} ms ${String(e.n).padStart(5)}x  ${top}`,
  );
}
const mm = by.get("BatchMatMul");
if (mm) {
  let d2 = 0, bat = 0;
  for (const [sh, ms] of mm.shapes) JSON.parse(sh)[0].length === 2 ? (d2 += ms) : (bat += ms);
  console.log(`BatchMatMul: 2-D ${d2.toFixed(0)} ms, batched ${bat.toFixed(0)} ms`);
  for (const [sh, ms] of [...mm.shapes.entries()].sort((a, b) => b[1] - a[1])) {
    console.log(`  ${sh} ${ms.toFixed(1)}`);
  }
}
