/**
 * One writer per run folder: `<run>/.lock`, created atomically
 * (`Deno.open(..., { createNew: true })`) and holding
 * `{pid, host, started, command}` of the process that writes the run.
 *
 * A second process on the same folder fails at once with
 * {@linkcode RunLockedError}, which names the holder and what to do. A lock
 * whose process is gone (same host, pid not running: `/proc/<pid>` on Linux,
 * `ps -p` / `tasklist` elsewhere) is taken over with a warning, so a run
 * killed with SIGKILL resumes with the same command. The holder removes the
 * file when it is done (`release()` in a `finally`, `releaseSync()` on the
 * signal exit path).
 *
 * @module
 */
import { runPaths } from "./folder.ts";

/** The content of a `.lock` file. */
export interface LockOwner {
  pid: number;
  host: string;
  /** ISO time the lock was taken. */
  started: string;
  command: string;
}

/** Another live process holds the run folder's lock. */
export class RunLockedError extends Error {
  constructor(message: string, readonly owner: LockOwner | null) {
    super(message);
    this.name = "RunLockedError";
  }
}

/** Options of {@linkcode RunLock.acquire}. */
export interface RunLockOptions {
  /** What the lock records as the command (default `deno <args>`). */
  command?: string;
  /** Where the take-over warning goes (default `console.warn`). */
  warn?: (line: string) => void;
}

function hostname(): string {
  try {
    return Deno.hostname();
  } catch {
    return "unknown";
  }
}

function parseOwner(text: string): LockOwner | null {
  try {
    const o = JSON.parse(text);
    if (typeof o?.pid === "number" && Number.isInteger(o.pid) && o.pid > 0) {
      return {
        pid: o.pid,
        host: String(o.host ?? "unknown"),
        started: String(o.started ?? "?"),
        command: String(o.command ?? ""),
      };
    }
  } catch {
    // torn or foreign content
  }
  return null;
}

async function readText(path: string): Promise<string | null> {
  try {
    return await Deno.readTextFile(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return null;
    throw e;
  }
}

async function commandOutput(cmd: string, args: string[]): Promise<Deno.CommandOutput | null> {
  try {
    return await new Deno.Command(cmd, { args, stdout: "piped", stderr: "null" }).output();
  } catch {
    return null;
  }
}

/**
 * Whether process `pid` of this host is running: true, false, or null when
 * it cannot be told (then the lock is treated as held).
 */
export async function processAlive(pid: number): Promise<boolean | null> {
  if (Deno.build.os === "linux") {
    try {
      const stat = await Deno.readTextFile(`/proc/${pid}/stat`);
      // "<pid> (<comm>) <state> ...": a zombie (Z) or dead (X) process is gone
      const state = stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3);
      return state !== "Z" && state !== "X";
    } catch (e) {
      if (e instanceof Deno.errors.NotFound) return false;
      // no /proc access: fall through to ps
    }
  }
  if (Deno.build.os === "windows") {
    const out = await commandOutput("tasklist", ["/FI", `PID eq ${pid}`, "/NH"]);
    if (!out?.success) return null;
    return new RegExp(`\\b${pid}\\b`).test(new TextDecoder().decode(out.stdout));
  }
  // ps -p exits 0 when the process exists, whoever owns it (kill -0 says EPERM for others')
  const out = await commandOutput("ps", ["-p", String(pid), "-o", "pid="]);
  if (!out) return null;
  return out.success && new TextDecoder().decode(out.stdout).trim() !== "";
}

function describe(owner: LockOwner, host: string): string {
  const where = owner.host === host ? "" : ` on host ${owner.host}`;
  const what = owner.command ? `: ${owner.command}` : "";
  return `pid ${owner.pid}${where}, started ${owner.started}${what}`;
}

/** The lock of a run folder, held by this process until {@linkcode release}. */
export class RunLock {
  #released = false;

  private constructor(readonly path: string, readonly owner: LockOwner, readonly text: string) {}

  /**
   * Take `<dir>/.lock` (creating `dir`), or throw {@linkcode RunLockedError}
   * when a live process holds it. A lock left by a process that is no longer
   * running is taken over, with a warning that names it.
   *
   * @example
   * ```ts ignore
   * const lock = await RunLock.acquire("runs/mae/1a2b3c4d");
   * try { ... } finally { await lock.release(); }
   * ```
   */
  static async acquire(dir: string, opts: RunLockOptions = {}): Promise<RunLock> {
    const path = runPaths(dir).lock;
    const host = hostname();
    const warn = opts.warn ?? ((s: string) => console.warn(s));
    await Deno.mkdir(dir, { recursive: true });
    for (let attempt = 0; attempt < 5; attempt++) {
      const owner: LockOwner = {
        pid: Deno.pid,
        host,
        started: new Date().toISOString(),
        command: opts.command ?? ["deno", ...Deno.args].join(" "),
      };
      const text = JSON.stringify(owner) + "\n";
      try {
        const f = await Deno.open(path, { write: true, createNew: true });
        try {
          const bytes = new TextEncoder().encode(text);
          for (let n = 0; n < bytes.length;) n += await f.write(bytes.subarray(n));
          await f.sync();
        } finally {
          f.close();
        }
        return new RunLock(path, owner, text);
      } catch (e) {
        if (!(e instanceof Deno.errors.AlreadyExists)) throw e;
      }
      let seen = await readText(path);
      if (seen === null) continue; // released meanwhile
      let other = parseOwner(seen);
      if (!other) {
        // created but not yet written by a process starting right now: look again
        await new Promise((r) => setTimeout(r, 250));
        seen = await readText(path);
        if (seen === null) continue;
        other = parseOwner(seen);
      }
      if (!other) {
        throw new RunLockedError(
          `${path} exists but does not say which process holds it; if no other process is ` +
            `writing ${dir}, delete ${path}`,
          null,
        );
      }
      const alive = other.host === host ? await processAlive(other.pid) : null;
      if (alive !== false) {
        const who = other.pid === Deno.pid && other.host === host
          ? `this process (${describe(other, host)}) is already writing ${dir}`
          : `another process (${describe(other, host)}) is writing ${dir}`;
        throw new RunLockedError(
          `${who}; wait for it or stop it; if it is gone, delete ${path}`,
          other,
        );
      }
      // dead holder: remove its file only if it is still the one judged stale
      if ((await readText(path)) !== seen) continue;
      await Deno.remove(path).catch((e) => {
        if (!(e instanceof Deno.errors.NotFound)) throw e;
      });
      warn(
        `warning: ${path} was left by ${
          describe(other, host)
        }, which is no longer running; taking the run over`,
      );
    }
    throw new RunLockedError(
      `${path}: could not take the lock (other processes keep taking it); try again`,
      null,
    );
  }

  /** Whether {@linkcode release} has run. */
  get released(): boolean {
    return this.#released;
  }

  /** Remove the lock file, if it is still this lock's. Safe to call twice. */
  async release(): Promise<void> {
    if (this.#released) return;
    this.#released = true;
    if ((await readText(this.path).catch(() => null)) !== this.text) return;
    await Deno.remove(this.path).catch(() => {});
  }

  /** {@linkcode release} for synchronous exit paths (a second Ctrl-C). */
  releaseSync(): void {
    if (this.#released) return;
    this.#released = true;
    try {
      if (Deno.readTextFileSync(this.path) === this.text) Deno.removeSync(this.path);
    } catch {
      // already gone
    }
  }
}
