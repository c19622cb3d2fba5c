/**
 * Fault injection with real processes: SIGKILL at a random step, SIGTERM,
 * a failing checkpoint write. Slower than the unit suite; `deno task test:faults`.
 */
import assert from "node:assert/strict";
import { loadCheckpoint, readMetrics } from "../lib/run/mod.ts";
import { TINY_MODEL_ARGS } from "../tests/_tiny.ts";

const ROOT = new URL("..", import.meta.url).pathname;

function tinyArgs(dir: string, extra: string[] = []): string[] {
  return [
    ...TINY_MODEL_ARGS,
    "--data.limit=96",
    "--train.epochs=4",
    "--train.logEvery=1",
    "--train.ckptEvery=1",
    "--amt.strategy=amt",
    "--amt.warmup=1",
    "--amt.interval=1",
    "--amt.batchSize=48",
    "--run.vizImages=0",
    `--run.dir=${dir}`,
    ...extra,
  ];
}

function spawn(args: string[]): Deno.ChildProcess {
  return new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "tasks/pretrain.ts", ...args],
    cwd: ROOT,
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1" },
  }).spawn();
}

async function finish(child: Deno.ChildProcess): Promise<{ code: number; out: string }> {
  const r = await child.output();
  const dec = new TextDecoder();
  return { code: r.code, out: dec.decode(r.stdout) + dec.decode(r.stderr) };
}

/** Wait until the run folder's metrics hold at least `steps` step records. */
async function waitForSteps(dir: string, steps: number, timeoutMs = 120_000): Promise<void> {
  const t0 = Date.now();
  while (Date.now() - t0 < timeoutMs) {
    const n = (await readMetrics(`${dir}/metrics.jsonl`)).filter((r) => r.type === "step").length;
    if (n >= steps) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`timed out waiting for ${steps} steps in ${dir}`);
}

async function finalLoss(dir: string): Promise<number> {
  const steps = (await readMetrics(`${dir}/metrics.jsonl`)).filter((r) => r.type === "step");
  return steps[steps.length - 1].loss as number;
}

async function straightRun(): Promise<{ dir: string; loss: number }> {
  const dir = await Deno.makeTempDir();
  const r = await finish(spawn(tinyArgs(dir)));
  assert.equal(r.code, 0, r.out);
  return { dir, loss: await finalLoss(dir) };
}

const straight = straightRun();

Deno.test("SIGKILL at a random step, then the same command: ends exactly where an uninterrupted run ends", async () => {
  const ref = await straight;
  const dir = await Deno.makeTempDir();
  const killAt = 3 + Math.floor(Math.random() * 16); // of 24 steps, warm-up and AMT phases
  const child = spawn(tinyArgs(dir));
  await waitForSteps(dir, killAt);
  child.kill("SIGKILL");
  const killed = await finish(child);
  assert.notEqual(killed.code, 0);
  const again = await finish(spawn(tinyArgs(dir)));
  assert.equal(again.code, 0, again.out);
  assert.match(again.out, /resuming/);
  const loss = await finalLoss(dir);
  assert.ok(
    Math.abs(loss - ref.loss) <= 1e-5 * Math.abs(ref.loss),
    `killed at ${killAt}: ${loss} vs ${ref.loss}`,
  );
  const steps = (await readMetrics(`${dir}/metrics.jsonl`)).filter((r) => r.type === "step").map((
    r,
  ) => r.step);
  assert.deepEqual(steps, Array.from({ length: 24 }, (_, i) => i + 1), `killed at ${killAt}`);
});

Deno.test("SIGTERM finishes the step, writes a checkpoint, exits 0 and says how to resume", async () => {
  const ref = await straight;
  const dir = await Deno.makeTempDir();
  const child = spawn(tinyArgs(dir));
  await waitForSteps(dir, 5);
  child.kill("SIGTERM");
  const r = await finish(child);
  assert.equal(r.code, 0, r.out);
  assert.match(r.out, /run the same command again to resume/);
  const ck = await loadCheckpoint(`${dir}/checkpoints/checkpoint.ckpt`);
  assert.ok((ck!.ckpt.meta.globalStep as number) >= 5);
  const again = await finish(spawn(tinyArgs(dir)));
  assert.equal(again.code, 0, again.out);
  const loss = await finalLoss(dir);
  assert.ok(Math.abs(loss - ref.loss) <= 1e-5 * Math.abs(ref.loss), `${loss} vs ${ref.loss}`);
});

Deno.test("a failing checkpoint write gives a clear error and leaves the previous checkpoint as the newest", async () => {
  const dir = await Deno.makeTempDir();
  const first = await finish(spawn(tinyArgs(dir, ["--train.maxSteps=3"])));
  assert.equal(first.code, 0, first.out);
  // make the next save fail: the old checkpoint cannot be moved aside to .prev
  await Deno.remove(`${dir}/checkpoints/checkpoint.ckpt.prev`).catch(() => {});
  await Deno.mkdir(`${dir}/checkpoints/checkpoint.ckpt.prev/blocker`, { recursive: true });
  const r = await finish(spawn(tinyArgs(dir, ["--train.maxSteps=6"])));
  assert.notEqual(r.code, 0);
  assert.match(r.out, /cannot write checkpoint .*checkpoint\.ckpt.*previous checkpoint is kept/s);
  const ck = await loadCheckpoint(`${dir}/checkpoints/checkpoint.ckpt`);
  assert.equal(ck!.ckpt.meta.globalStep, 3);
  for await (const e of Deno.readDir(`${dir}/checkpoints`)) {
    assert.ok(!e.name.endsWith(".tmp"), e.name);
  }
});

Deno.test("repro killed mid-run continues with the unfinished work only", async () => {
  const dir = await Deno.makeTempDir();
  const args = [
    "run",
    "-A",
    "tasks/repro.ts",
    "--budget=smoke",
    "--only=mae-random-75",
    `--run.dir=${dir}`,
    `--results=${dir}/results`, // not the checkout's results/smoke
    "--run.backend=cpu",
  ];
  const cmd = () =>
    new Deno.Command(Deno.execPath(), {
      args,
      cwd: ROOT,
      stdout: "piped",
      stderr: "piped",
      env: { NO_COLOR: "1" },
    })
      .spawn();
  const child = cmd();
  // kill once the first checkpoint (end of epoch 1 of 2) is on disk
  const ckpt = `${dir}/runs/mae-random-75-s0/checkpoints/checkpoint.ckpt`;
  const deadline = Date.now() + 300_000;
  while (Date.now() < deadline) {
    if (await Deno.stat(ckpt).then(() => true, () => false)) break;
    await new Promise((r) => setTimeout(r, 50));
  }
  child.kill("SIGKILL");
  await finish(child);
  const second = await finish(cmd());
  assert.equal(second.code, 0, second.out);
  assert.match(second.out, /resuming/);
  const results = JSON.parse(await Deno.readTextFile(`${dir}/results.json`));
  assert.equal(results.runs.length, 1);
  assert.ok(await Deno.stat(`${dir}/tables.md`));
  // the smoke budget monitors attention every epoch: one point per epoch across the resume
  const record = JSON.parse(
    await Deno.readTextFile(`${dir}/results/records/mae-random-75-s0.json`),
  );
  assert.deepEqual(record.attnCurve.map((p: { epoch: number }) => p.epoch), [1, 2]);
  assert.equal(typeof record.attnCurve[1].attnOnObjectRollout, "number");
  const third = await finish(cmd());
  assert.equal(third.code, 0, third.out);
  assert.match(third.out, /already finished/);
  assert.match(third.out, /exists for checkpoint step/);
  const again = JSON.parse(await Deno.readTextFile(`${dir}/results.json`));
  assert.equal(again.runs[0].linprobe, results.runs[0].linprobe);
  assert.equal(again.runs[0].finetune, results.runs[0].finetune);
});
