/**
 * Atomic file writes: a unique temporary file beside the target, flushed to
 * disk, then renamed over it; optionally the old file is kept as `.prev`.
 *
 * @module
 */
import { dirname } from "node:path";

/** Options of {@link writeFileAtomic}. */
export interface AtomicWriteOptions {
  /** Move an existing target to `<path>.prev` first (the previous good copy). */
  keepPrev?: boolean;
  /** fsync before the rename (default true). */
  sync?: boolean;
}

/** Write bytes or text to `path` atomically, creating the parent folder. */
export async function writeFileAtomic(
  path: string,
  content: Uint8Array | string,
  opts: AtomicWriteOptions = {},
): Promise<void> {
  await Deno.mkdir(dirname(path), { recursive: true });
  const bytes = typeof content === "string" ? new TextEncoder().encode(content) : content;
  const tmp = `${path}.${Deno.pid}.${Math.random().toString(36).slice(2, 10)}.tmp`;
  try {
    const f = await Deno.open(tmp, { write: true, create: true, truncate: true });
    try {
      let written = 0;
      while (written < bytes.length) written += await f.write(bytes.subarray(written));
      if (opts.sync !== false) await f.sync();
    } finally {
      f.close();
    }
    if (opts.keepPrev) {
      try {
        await Deno.rename(path, `${path}.prev`);
      } catch (e) {
        if (!(e instanceof Deno.errors.NotFound)) throw e;
      }
    }
    await Deno.rename(tmp, path);
  } catch (err) {
    await Deno.remove(tmp).catch(() => {});
    throw err;
  }
}

/**
 * The parsed JSON object in `path`, or null when the file is missing, unreadable or not JSON
 * (for optional result files: a half-written or absent one reads as "not there yet").
 */
export async function readJsonOrNull(path: string): Promise<Record<string, unknown> | null> {
  try {
    return JSON.parse(await Deno.readTextFile(path));
  } catch {
    return null;
  }
}
