import assert from "node:assert/strict";
import { processAlive, RunLock, RunLockedError, runPaths } from "../lib/run/mod.ts";
import { TINY_MODEL_ARGS } from "./_tiny.ts";

const ROOT = new URL("..", import.meta.url).pathname;
const dec = new TextDecoder();

function deno(args: string[]): Deno.ChildProcess {
  return new Deno.Command(Deno.execPath(), {
    args,
    cwd: ROOT,
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1" },
  }).spawn();
}

async function finish(child: Deno.ChildProcess): Promise<{ code: number; out: string }> {
  const r = await child.output();
  return { code: r.code, out: dec.decode(r.stdout) + dec.decode(r.stderr) };
}

/** A process that takes the lock of `dir` and holds it; resolves once the lock file names it. */
async function holdLock(dir: string): Promise<Deno.ChildProcess> {
  const child = deno(["run", "-A", "tests/_lock_holder.ts", dir]);
  const status = child.status.then((s) => s);
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline) {
    const text = await Deno.readTextFile(runPaths(dir).lock).catch(() => "");
    if (text && JSON.parse(text).pid === child.pid) return child;
    const exited = await Promise.race([status, new Promise((r) => setTimeout(r, 50, null))]);
    if (exited) throw new Error(`lock holder exited early: ${(await finish(child)).out}`);
  }
  throw new Error("lock holder did not take the lock within 60 s");
}

/** The pid of a process that has exited. */
async function deadPid(): Promise<number> {
  const child = deno(["eval", ""]);
  await finish(child);
  return child.pid;
}

async function exists(path: string): Promise<boolean> {
  return await Deno.stat(path).then(() => true, () => false);
}

Deno.test("RunLock: a second process on the same run folder exits at once naming the first", async () => {
  const dir = await Deno.makeTempDir();
  const holder = await holdLock(dir);
  try {
    // the pre-training task itself: refused before it writes anything
    const t0 = performance.now();
    const r = await finish(
      deno(["run", "-A", "tasks/pretrain.ts", ...TINY_MODEL_ARGS, `--run.dir=${dir}`]),
    );
    const seconds = (performance.now() - t0) / 1000;
    assert.equal(r.code, 2, r.out);
    assert.match(
      r.out,
      new RegExp(`another process \\(pid ${holder.pid}, started [^)]*\\) is writing`),
    );
    assert.ok(
      r.out.includes(
        `is writing ${dir}; wait for it or stop it; if it is gone, delete ${dir}/.lock`,
      ),
      r.out,
    );
    assert.ok(seconds < 30, `took ${seconds.toFixed(1)} s to refuse`);
    assert.equal(await exists(runPaths(dir).config), false, "the refused run wrote config.json");
    // a second holder too
    const again = await finish(deno(["run", "-A", "tests/_lock_holder.ts", dir]));
    assert.equal(again.code, 3, again.out);
    assert.match(again.out, new RegExp(`pid ${holder.pid}`));
  } finally {
    holder.kill("SIGTERM");
  }
  const end = await finish(holder);
  assert.equal(end.code, 0, end.out);
  assert.equal(await exists(runPaths(dir).lock), false, "SIGTERM released the lock");
});

Deno.test("RunLock: a lock left by a killed process is taken over, and released when the run ends", async () => {
  const dir = await Deno.makeTempDir();
  const holder = await holdLock(dir);
  holder.kill("SIGKILL");
  await finish(holder);
  assert.equal(JSON.parse(await Deno.readTextFile(runPaths(dir).lock)).pid, holder.pid);
  const r = await finish(deno([
    "run",
    "-A",
    "tasks/pretrain.ts",
    ...TINY_MODEL_ARGS,
    "--data.limit=32",
    "--train.epochs=1",
    "--train.maxSteps=1",
    "--eval.knnEvery=0",
    "--run.vizImages=0",
    `--run.dir=${dir}`,
  ]));
  assert.equal(r.code, 0, r.out);
  assert.match(r.out, new RegExp(`\\.lock was left by pid ${holder.pid}, .*taking the run over`));
  assert.ok(await exists(runPaths(dir).summary));
  assert.equal(await exists(runPaths(dir).lock), false, "the finished run released the lock");
});

Deno.test("RunLock.acquire() refuses a folder this process holds; release() frees it", async () => {
  const dir = await Deno.makeTempDir();
  const lock = await RunLock.acquire(dir, { command: "test" });
  const owner = JSON.parse(await Deno.readTextFile(runPaths(dir).lock));
  assert.deepEqual(Object.keys(owner), ["pid", "host", "started", "command"]);
  assert.equal(owner.pid, Deno.pid);
  assert.equal(owner.command, "test");
  await assert.rejects(
    () => RunLock.acquire(dir),
    (e: Error) =>
      e instanceof RunLockedError && e.owner?.pid === Deno.pid &&
      /this process \(pid \d+, started .*\) is already writing/.test(e.message),
  );
  await lock.release();
  await lock.release(); // twice is fine
  assert.equal(await exists(runPaths(dir).lock), false);
  const again = await RunLock.acquire(dir);
  again.releaseSync();
  assert.equal(await exists(runPaths(dir).lock), false);
});

Deno.test("RunLock.acquire() takes over a dead pid's lock and refuses an unknown or foreign one", async () => {
  const dir = await Deno.makeTempDir();
  const path = runPaths(dir).lock;
  const pid = await deadPid();
  assert.equal(await processAlive(pid), false);
  assert.equal(await processAlive(Deno.pid), true);
  const host = JSON.parse(
    await RunLock.acquire(dir).then(async (l) => {
      const t = await Deno.readTextFile(path);
      await l.release();
      return t;
    }),
  ).host;
  const stale = { pid, host, started: "2020-01-01T00:00:00.000Z", command: "deno old" };
  await Deno.writeTextFile(path, JSON.stringify(stale));
  const warnings: string[] = [];
  const lock = await RunLock.acquire(dir, { warn: (s) => warnings.push(s) });
  assert.equal(warnings.length, 1);
  assert.match(warnings[0], new RegExp(`was left by pid ${pid}, started 2020-01-01.*deno old`));
  assert.match(warnings[0], /no longer running; taking the run over/);
  assert.equal(JSON.parse(await Deno.readTextFile(path)).pid, Deno.pid);

  // a lock that is no longer ours is left alone
  await Deno.writeTextFile(path, JSON.stringify({ ...stale, pid: Deno.pid, started: "other" }));
  await lock.release();
  assert.ok(await exists(path));

  await Deno.writeTextFile(path, JSON.stringify({ ...stale, host: "elsewhere" }));
  await assert.rejects(
    () => RunLock.acquire(dir),
    /\(pid \d+ on host elsewhere, .*delete .*\.lock/,
  );
  await Deno.writeTextFile(path, "not json");
  await assert.rejects(() => RunLock.acquire(dir), /does not say which process holds it; .*delete/);
});
