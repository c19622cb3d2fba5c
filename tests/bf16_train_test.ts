/**
 * bf16 training tracks fp32 training (not timed): short MAE and SimMIM runs on the wasm backend
 * with oneDNN's bf16 matmuls end within 3 % of the same runs in fp32 with no NaN, run.json
 * records the precision, and a checkpoint is precision-independent (a bf16 run resumed in fp32
 * and an fp32 run resumed in bf16 both finish).
 *
 * Where the CPU or oneDNN cannot run bf16, the comparisons are not run (the test names say so)
 * and the explicit `bf16` request is checked to fail with a clear message instead.
 */
import assert from "node:assert/strict";
import { bf16Missing, initBackend } from "../lib/backend/mod.ts";
import { resolveConfig } from "../lib/config/mod.ts";
import { pretrain } from "../lib/pretrain/mod.ts";
import { readMetrics, readRunInfo, readRunSummary } from "../lib/run/mod.ts";
import { TINY_MODEL_ARGS } from "./_tiny.ts";

await initBackend({ backend: "wasm", quiet: true });
const missing = bf16Missing();
const notRun = missing === null ? "" : ` (NOT RUN: ${missing})`;

function args(dir: string, method: "mae" | "simmim", precision: string, extra: string[] = []) {
  return [
    ...TINY_MODEL_ARGS,
    "--run.backend=wasm",
    `--mim.method=${method}`,
    `--mim.maskRatio=${method === "mae" ? 0.75 : 0.6}`,
    `--mim.normPixLoss=${method === "mae"}`,
    "--data.limit=128",
    "--train.epochs=3",
    "--train.baseLr=2e-3",
    "--train.logEvery=4",
    "--train.ckptEvery=0",
    "--run.vizImages=0",
    `--train.precision=${precision}`,
    `--run.dir=${dir}`,
    ...extra,
  ];
}

async function run(method: "mae" | "simmim", precision: string) {
  const dir = await Deno.makeTempDir();
  await pretrain(resolveConfig({ argv: args(dir, method, precision) }).config, { quiet: true });
  const summary = await readRunSummary(dir);
  const losses = (await readMetrics(`${dir}/metrics.jsonl`))
    .filter((m) => m.type === "step").map((m) => m.loss as number);
  return { dir, summary: summary!, losses, info: await readRunInfo(dir) };
}

for (const method of ["mae", "simmim"] as const) {
  Deno.test({
    name: `${method}: a bf16 run tracks the fp32 run (final loss within 3 %, no NaN)${notRun}`,
    ignore: missing !== null,
    fn: async () => {
      const fp32 = await run(method, "fp32");
      const bf16 = await run(method, "bf16");
      assert.equal(fp32.info?.precision, "fp32");
      assert.equal(bf16.info?.precision, "bf16");
      assert.ok(bf16.losses.length > 3 && bf16.losses.every(Number.isFinite), `${bf16.losses}`);
      // the loss falls in both, and bf16 ends where fp32 ends
      assert.ok(fp32.summary.finalLoss < fp32.summary.firstLoss, `${fp32.losses}`);
      assert.ok(bf16.summary.finalLoss < bf16.summary.firstLoss, `${bf16.losses}`);
      const rel = Math.abs(bf16.summary.finalLoss - fp32.summary.finalLoss) /
        fp32.summary.finalLoss;
      assert.ok(
        rel < 0.03,
        `final loss bf16 ${bf16.summary.finalLoss} vs fp32 ${fp32.summary.finalLoss}: ${rel}`,
      );
      // the first logged window (same init, same data) is close too, before any drift
      assert.ok(Math.abs(bf16.losses[0] - fp32.losses[0]) / fp32.losses[0] < 0.01);
    },
  });
}

Deno.test({
  name: `a checkpoint is precision-independent: bf16 -> fp32 and fp32 -> bf16 resumes${notRun}`,
  ignore: missing !== null,
  fn: async () => {
    for (const [first, second] of [["bf16", "fp32"], ["fp32", "bf16"]]) {
      const dir = await Deno.makeTempDir();
      const part = resolveConfig({ argv: args(dir, "mae", first) }).config;
      await pretrain(part, { quiet: true, stopAfterSteps: 10 });
      assert.equal((await readRunInfo(dir))?.precision, first);
      const rest = resolveConfig({ argv: args(dir, "mae", second) }).config;
      const r = await pretrain(rest, { quiet: true });
      assert.equal(r.steps, 24, `${first} -> ${second}`);
      assert.equal((await readRunInfo(dir))?.precision, second);
      const s = await readRunSummary(dir);
      assert.ok(s && Number.isFinite(s.finalLoss) && s.finalLoss < s.firstLoss);
    }
  },
});

Deno.test("without oneDNN (AMT_DNNL=off): auto trains in fp32 and says why; bf16 fails with what to do", async () => {
  // a fresh process of the real task, so the backend starts without oneDNN
  const task = async (dir: string, precision: string) => {
    const out = await new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "-A",
        "tasks/pretrain.ts",
        ...args(dir, "mae", precision, ["--train.maxSteps=2"]),
      ],
      env: { AMT_DNNL: "off" },
      stdout: "piped",
      stderr: "piped",
    }).output();
    const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
    return { code: out.code, text };
  };
  const dir = await Deno.makeTempDir();
  const auto = await task(dir, "auto");
  assert.equal(auto.code, 0, auto.text);
  assert.match(auto.text, /precision: fp32 \(auto: fp32/);
  const info = await readRunInfo(dir);
  assert.equal(info?.precision, "fp32");
  assert.match(info?.precisionReason ?? "", /oneDNN/);
  const bf16 = await task(await Deno.makeTempDir(), "bf16");
  assert.equal(bf16.code, 2, bf16.text);
  assert.match(bf16.text, /error: precision bf16 is not available: .*oneDNN/);
});
